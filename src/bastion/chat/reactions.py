"""Reactions: one of each emoji per user per message, counted per emoji."""

from __future__ import annotations

from bastion.chat.access import ChannelAccess
from bastion.chat.channels import acting_user
from bastion.chat.context import ChatContext, Outbox
from bastion.chat.denials import reports
from bastion.chat.messages import MessageEntry, locked_message
from bastion.chat.privileged import record_read
from bastion.core.errors import Conflict, LimitExceeded, NotFound
from bastion.security import scopes
from bastion.security.acl import Level
from bastion.security.principal import Principal
from bastion.store.db import Connection
from bastion.store.repos import messages as repo


class Reactions:
    """Add and remove reactions."""

    def __init__(self, ctx: ChatContext) -> None:
        self._ctx = ctx

    @reports("reaction:write")
    async def add(self, caller: Principal, message_id: str, emoji: str) -> MessageEntry:
        """React to a message; reacting twice with the same emoji changes nothing."""
        user_id = acting_user(caller, scopes.CHAT_WRITE)
        outbox = Outbox()
        async with self._ctx.db.write() as conn:
            access = await self._load(conn, caller, user_id, message_id)
            if await repo.distinct_emoji_count(conn, caller.app_id, message_id) >= (
                self._ctx.limits.reactions_per_message_max
            ):
                await self._require_existing_emoji(conn, caller, message_id, emoji)
            added = await repo.add_reaction(
                conn,
                caller.app_id,
                message_id=message_id,
                user_id=user_id,
                emoji=emoji,
                now=self._ctx.clock.now(),
            )
            entry = await self._entry(conn, caller, message_id)
        if added:
            outbox.add(
                caller.app_id,
                "reaction.added",
                _payload(entry, user_id, emoji),
                channel_id=access.channel.id,
            )
        await outbox.publish(self._ctx.broker)
        await record_read(self._ctx, caller, access, [entry.message])
        return entry

    @reports("reaction:write")
    async def remove(self, caller: Principal, message_id: str, emoji: str) -> None:
        """Take a reaction back; removing one that is not there changes nothing."""
        user_id = acting_user(caller, scopes.CHAT_WRITE)
        outbox = Outbox()
        async with self._ctx.db.write() as conn:
            access = await self._load(conn, caller, user_id, message_id)
            removed = await repo.remove_reaction(
                conn, caller.app_id, message_id=message_id, user_id=user_id, emoji=emoji
            )
            entry = await self._entry(conn, caller, message_id)
        if removed:
            outbox.add(
                caller.app_id,
                "reaction.removed",
                _payload(entry, user_id, emoji),
                channel_id=access.channel.id,
            )
        await outbox.publish(self._ctx.broker)

    async def _load(
        self, conn: Connection, caller: Principal, user_id: str, message_id: str
    ) -> ChannelAccess:
        """The caller's access to a live message of a writable channel, the message's row
        locked: the distinct-emoji count and the deletion check hold until commit."""
        message, access = await locked_message(self._ctx, conn, caller, user_id, message_id)
        if not access.may_react():
            raise access.refusal(Level.WRITE, "Read-only members cannot do this.")
        if access.channel.archived:
            raise Conflict("The channel is archived.")
        if message.deleted_at is not None:
            raise Conflict("The message has been deleted.")
        return access

    async def _require_existing_emoji(
        self, conn: Connection, caller: Principal, message_id: str, emoji: str
    ) -> None:
        entry = await self._entry(conn, caller, message_id)
        if emoji not in entry.reactions:
            limit = self._ctx.limits.reactions_per_message_max
            raise LimitExceeded("path.emoji", f"A message carries at most {limit} different emoji.")

    @staticmethod
    async def _entry(conn: Connection, caller: Principal, message_id: str) -> MessageEntry:
        message = await repo.get_message(conn, caller.app_id, message_id)
        if message is None:
            raise NotFound("No such message.")
        summary = await repo.reaction_summary(conn, caller.app_id, caller.subject, [message_id])
        counts, own = summary.get(message_id, ({}, set()))
        return MessageEntry(message, counts, own)


def _payload(entry: MessageEntry, user_id: str, emoji: str) -> dict[str, object]:
    return {
        "message_id": entry.message.id,
        "user_id": user_id,
        "emoji": emoji,
        "reactions": dict(sorted(entry.reactions.items())),
    }
