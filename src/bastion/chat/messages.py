"""Messages: send (idempotent by client message id), edit, delete, get, list, threads."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.chat.access import ChannelAccess
from bastion.chat.channels import acting_user, load_access
from bastion.chat.context import ChatContext, Outbox, check_version, record_change
from bastion.chat.denials import Denial, Hidden, Refused, reports
from bastion.chat.privileged import record_read
from bastion.chat.views import message_view
from bastion.core.errors import (
    Conflict,
    FieldError,
    LimitExceeded,
    NotFound,
    ValidationFailed,
)
from bastion.core.ids import Kind, is_id, new_id
from bastion.observe import metrics
from bastion.observe.events import Origin
from bastion.security import scopes
from bastion.security.acl import Level
from bastion.security.principal import Principal
from bastion.store.db import Connection
from bastion.store.records import ChannelRecord, DuplicateKeyError, MessageRecord
from bastion.store.repos import channels as channel_repo
from bastion.store.repos import messages as repo


@dataclass(frozen=True, slots=True)
class MessageEntry:
    """A message with its reaction counts and the viewer's own reactions."""

    message: MessageRecord
    reactions: dict[str, int]
    own_reactions: set[str]
    shown: dict[str, object] | None = None
    """The view, when it was built already (a new message's, for its event)."""

    def view(self) -> dict[str, object]:
        """The message as the API shows it."""
        if self.shown is not None:
            return self.shown
        return message_view(self.message, self.reactions, self.own_reactions)


@dataclass(frozen=True, slots=True)
class MessagePage:
    """A page of messages, oldest first, with cursors to either side."""

    entries: list[MessageEntry]
    prev_cursor: str | None
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Draft:
    """What a client asks to send."""

    text: str
    parent_id: str | None = None
    mentions: tuple[str, ...] = ()
    client_msg_id: str | None = None


class Messages:
    """Message commands and queries."""

    def __init__(self, ctx: ChatContext) -> None:
        self._ctx = ctx

    @reports("message:send")
    async def send(
        self, caller: Principal, channel_id: str, draft: Draft
    ) -> tuple[MessageEntry, bool]:
        """Send a message; a retry with the same client message id returns the original.

        Returns the message and whether it was created now.
        """
        user_id = acting_user(caller, scopes.CHAT_WRITE)
        self._check_draft(draft)
        outbox = Outbox()
        try:
            async with self._ctx.db.write() as conn:
                access = await load_access(self._ctx, conn, caller, user_id, channel_id)
                original = await self._original(conn, caller.app_id, user_id, draft)
                if original is not None:
                    entry = await self._same_send(conn, caller, channel_id, original, draft)
                    return entry, False
                access.require(Level.WRITE, "Your role in this channel does not allow posting.")
                _writable(access.channel)
                await self._check_refs(conn, caller.app_id, channel_id, draft)
                message = await self._insert(conn, caller.app_id, channel_id, user_id, draft)
        except DuplicateKeyError:
            # A concurrent retry won the race for this client message id.
            return await self._retry_lookup(caller, channel_id, user_id, draft), False
        metrics.MESSAGES_SENT.inc()
        self._ctx.indexer.poke()
        view = message_view(message)
        outbox.add(caller.app_id, "message.new", view, channel_id=channel_id)
        await outbox.publish(self._ctx.broker)
        return MessageEntry(message, {}, set(), view), True

    def _check_draft(self, draft: Draft) -> None:
        limits = self._ctx.limits
        if len(draft.text) > limits.message_max_chars:
            raise LimitExceeded(
                "body.text", f"A message has at most {limits.message_max_chars} characters."
            )
        if len(set(draft.mentions)) > limits.mentions_max:
            raise LimitExceeded("body.mentions", f"At most {limits.mentions_max} mentions.")

    @staticmethod
    async def _original(
        conn: Connection, app_id: str, user_id: str, draft: Draft
    ) -> MessageRecord | None:
        if draft.client_msg_id is None:
            return None
        return await repo.get_by_client_msg_id(conn, app_id, user_id, draft.client_msg_id)

    async def _same_send(
        self,
        conn: Connection,
        caller: Principal,
        channel_id: str,
        original: MessageRecord,
        draft: Draft,
    ) -> MessageEntry:
        if original.channel_id != channel_id:
            raise Conflict("This client_msg_id was already used for another channel.")
        if not _same_draft(original, draft):
            message = "This client_msg_id was already used for a different message."
            raise ValidationFailed([FieldError("body.client_msg_id", message)], detail=message)
        return (await self._entries(conn, caller, [original]))[0]

    async def _retry_lookup(
        self, caller: Principal, channel_id: str, user_id: str, draft: Draft
    ) -> MessageEntry:
        async with self._ctx.db.read() as conn:
            original = await self._original(conn, caller.app_id, user_id, draft)
            if original is None:
                raise Conflict("The message could not be stored; retry.")
            return await self._same_send(conn, caller, channel_id, original, draft)

    async def _check_refs(
        self, conn: Connection, app_id: str, channel_id: str, draft: Draft
    ) -> None:
        errors: list[FieldError] = []
        if draft.parent_id is not None:
            parent = await repo.get_message(conn, app_id, draft.parent_id)
            if parent is None or parent.channel_id != channel_id:
                errors.append(FieldError("body.parent_id", "No such message in this channel."))
            elif parent.parent_id is not None:
                errors.append(FieldError("body.parent_id", "Replies go to the thread's root."))
        if draft.mentions:
            members = set(await channel_repo.member_ids(conn, app_id, channel_id))
            errors.extend(
                FieldError("body.mentions", f"Not a member of this channel: {uid}")
                for uid in sorted(set(draft.mentions) - members)[:10]
            )
        if errors:
            raise ValidationFailed(errors)

    async def _insert(
        self, conn: Connection, app_id: str, channel_id: str, user_id: str, draft: Draft
    ) -> MessageRecord:
        now = self._ctx.clock.now()
        message = await repo.insert_message(
            conn,
            app_id,
            message_id=new_id(Kind.MESSAGE),
            channel_id=channel_id,
            author_id=user_id,
            parent_id=draft.parent_id,
            body=draft.text,
            mentions=tuple(dict.fromkeys(draft.mentions)),
            client_msg_id=draft.client_msg_id,
            now=now,
        )
        if draft.parent_id is not None:
            await repo.change_reply_count(conn, app_id, draft.parent_id, 1)
        # The channel's last message and activity time follow by trigger (migration 0001).
        return message

    @reports("message:read")
    async def get(self, caller: Principal, message_id: str) -> MessageEntry:
        """Return a message from a channel the caller belongs to."""
        user_id = acting_user(caller, scopes.CHAT_READ)
        async with self._ctx.db.read() as conn:
            message, access = await visible_message(self._ctx, conn, caller, user_id, message_id)
            entry = (await self._entries(conn, caller, [message]))[0]
        await record_read(self._ctx, caller, access, [message])
        return entry

    @reports("message:read")
    async def page(
        self,
        caller: Principal,
        channel_id: str,
        *,
        before: str | None,
        after: str | None,
        parent_id: str | None,
        limit: int,
        top_level: bool = False,
    ) -> MessagePage:
        """Return a page of a channel's messages (or a thread's replies), oldest first.

        ``top_level`` leaves thread replies out of the channel's messages.
        """
        user_id = acting_user(caller, scopes.CHAT_READ)
        async with self._ctx.db.read() as conn:
            access = await load_access(self._ctx, conn, caller, user_id, channel_id)
            await _check_thread(conn, caller.app_id, channel_id, parent_id)
            before_seq = await self._cursor_seq(conn, caller.app_id, channel_id, "before", before)
            after_seq = await self._cursor_seq(conn, caller.app_id, channel_id, "after", after)
            rows = await repo.list_messages(
                conn,
                caller.app_id,
                channel_id,
                parent_id=parent_id,
                top_level=top_level,
                after_seq=after_seq,
                before_seq=before_seq,
                limit=limit + 1,
            )
            more = len(rows) > limit
            if more:
                rows = rows[:limit] if after_seq is not None else rows[1:]
            entries = await self._entries(conn, caller, rows)
        await record_read(self._ctx, caller, access, rows)
        return _page(
            entries, more=more, forward=after_seq is not None, from_cursor=bool(before or after)
        )

    @staticmethod
    async def _cursor_seq(
        conn: Connection, app_id: str, channel_id: str, name: str, cursor: str | None
    ) -> int | None:
        if cursor is None:
            return None
        seq = None
        if is_id(Kind.MESSAGE, cursor):
            seq = await repo.seq_of(conn, app_id, channel_id, cursor)
        if seq is None:
            raise ValidationFailed([FieldError(f"query.{name}", "Not a message of this channel.")])
        return seq

    @reports("message:edit:own")
    async def edit(
        self, caller: Principal, message_id: str, text: str, if_match: int | None
    ) -> MessageEntry:
        """Change the text of one's own message."""
        user_id = acting_user(caller, scopes.CHAT_WRITE)
        self._check_draft(Draft(text=text))
        outbox = Outbox()
        async with self._ctx.db.write() as conn:
            message, access = await locked_message(self._ctx, conn, caller, user_id, message_id)
            check_version(message.version, if_match)
            if message.author_id != user_id:
                denial = Denial(_resource(message_id), "not_owner")
                raise Refused("Only the author can edit a message.", denial)
            access.require(Level.WRITE, "Your role in this channel does not allow editing.")
            _writable(access.channel)
            if message.deleted_at is not None:
                raise Conflict("The message has been deleted.")
            await repo.update_message(
                conn, caller.app_id, message_id, {"body": text, "edited_at": self._ctx.clock.now()}
            )
            entry = (
                await self._entries(conn, caller, [await self._reload(conn, caller, message_id)])
            )[0]
        self._ctx.indexer.poke()
        outbox.add(
            caller.app_id,
            "message.updated",
            message_view(entry.message),
            channel_id=entry.message.channel_id,
        )
        await outbox.publish(self._ctx.broker)
        return entry

    @reports("message:delete:own")
    async def delete(
        self, caller: Principal, message_id: str, if_match: int | None, origin: Origin
    ) -> None:
        """Delete a message (its author, or the channel's owners and moderators).

        A deletion by anyone but the author is moderation: it is recorded as an
        ``admin.change`` event naming the author. In an archived channel only moderation
        deletes. The message's reactions go with its text; a reply stops counting in its
        root's ``reply_count``.
        """
        user_id = acting_user(caller, scopes.CHAT_WRITE)
        outbox = Outbox()
        async with self._ctx.db.write() as conn:
            message, access = await locked_message(self._ctx, conn, caller, user_id, message_id)
            check_version(message.version, if_match)
            if message.deleted_at is not None:
                return
            own = message.author_id == user_id
            # Moderation rights are looked up only where the deletion needs them.
            moderating = (not own or access.channel.archived) and await self._moderates(
                caller, access
            )
            if not own and not moderating:
                denial = Denial(_resource(message_id), "not_owner", "message:delete:any")
                raise Refused("Only the channel's owners and moderators can do this.", denial)
            if access.channel.archived and not moderating:
                raise Conflict(
                    "The channel is archived: only its owners and moderators delete messages."
                )
            changes = {"body": None, "mentions": "", "deleted_at": self._ctx.clock.now()}
            await repo.update_message(conn, caller.app_id, message_id, changes)
            await repo.clear_reactions(conn, caller.app_id, message_id)
            if message.parent_id is not None:
                # A deleted reply keeps its place in the thread but is no longer counted.
                await repo.change_reply_count(conn, caller.app_id, message.parent_id, -1)
            if message.author_id != user_id:
                details = {
                    "change": "message.delete",
                    "channel_id": message.channel_id,
                    "author_id": message.author_id,
                }
                await record_change(self._ctx, caller, origin, _resource(message_id), details)
            deleted = await self._reload(conn, caller, message_id)
        outbox.add(
            caller.app_id, "message.deleted", message_view(deleted), channel_id=deleted.channel_id
        )
        await outbox.publish(self._ctx.broker)

    async def _moderates(self, caller: Principal, access: ChannelAccess) -> bool:
        """Whether the caller may delete anyone's message in this channel."""
        return access.may(Level.MODERATE) or await self._ctx.authz.holds(
            caller, "message:delete:any"
        )

    @staticmethod
    async def _reload(conn: Connection, caller: Principal, message_id: str) -> MessageRecord:
        message = await repo.get_message(conn, caller.app_id, message_id)
        if message is None:
            raise NotFound("No such message.")
        return message

    @staticmethod
    async def _entries(
        conn: Connection, caller: Principal, messages: list[MessageRecord]
    ) -> list[MessageEntry]:
        summary = await repo.reaction_summary(
            conn, caller.app_id, caller.subject, [m.id for m in messages]
        )
        return [MessageEntry(m, *summary.get(m.id, ({}, set()))) for m in messages]


async def visible_message(
    ctx: ChatContext, conn: Connection, caller: Principal, user_id: str, message_id: str
) -> tuple[MessageRecord, ChannelAccess]:
    """A message with the caller's standing in its channel; for anyone who may not read
    the channel it does not exist (404, like a missing id)."""
    message = await repo.get_message(conn, caller.app_id, message_id)
    if message is None:
        raise Hidden("No such message.", Denial(_resource(message_id), "not_found"))
    try:
        access = await load_access(ctx, conn, caller, user_id, message.channel_id)
    except Hidden as hidden:
        denial = Denial(_resource(message_id), hidden.denial.reason)
        raise Hidden("No such message.", denial) from None
    return message, access


async def locked_message(
    ctx: ChatContext, conn: Connection, caller: Principal, user_id: str, message_id: str
) -> tuple[MessageRecord, ChannelAccess]:
    """:func:`visible_message`, its row locked first: a change that checks the message's
    state (deleted, version, reactions) keeps that state until it commits."""
    await repo.lock_message(conn, caller.app_id, message_id)
    return await visible_message(ctx, conn, caller, user_id, message_id)


def _same_draft(original: MessageRecord, draft: Draft) -> bool:
    """Whether a send repeats the one that stored ``original`` (as far as is still known:
    an edit replaces the text, a deletion the text and mentions)."""
    if original.parent_id != draft.parent_id:
        return False
    if original.deleted_at is not None:
        return True
    if original.mentions != tuple(dict.fromkeys(draft.mentions)):
        return False
    return original.edited_at is not None or original.body == draft.text


async def _check_thread(
    conn: Connection, app_id: str, channel_id: str, parent_id: str | None
) -> None:
    """A thread is listed by its root, a message of this channel (422 otherwise)."""
    if parent_id is None:
        return
    parent = (
        await repo.get_message(conn, app_id, parent_id) if is_id(Kind.MESSAGE, parent_id) else None
    )
    if parent is None or parent.channel_id != channel_id:
        raise ValidationFailed([FieldError("query.parent_id", "Not a message of this channel.")])
    if parent.parent_id is not None:
        message = "A thread is listed by its root message, not by a reply."
        raise ValidationFailed([FieldError("query.parent_id", message)])


def _resource(message_id: str) -> str:
    return f"message:{message_id}"


def _writable(channel: ChannelRecord) -> None:
    if channel.archived:
        raise Conflict("The channel is archived.")


def _page(
    entries: list[MessageEntry], *, more: bool, forward: bool, from_cursor: bool
) -> MessagePage:
    """Cursors: ``prev`` fetches older messages (``before``), ``next`` newer (``after``)."""
    if not entries:
        return MessagePage(entries, None, None)
    first, last = entries[0].message.id, entries[-1].message.id
    older = (more and not forward) or (forward and from_cursor)
    newer = (more and forward) or (not forward and from_cursor)
    return MessagePage(entries, first if older else None, last if newer else None)
