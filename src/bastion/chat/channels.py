"""Channels: create (direct, group, broadcast), read, list mine, update, archive."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bastion.chat.access import (
    ChannelAccess,
    channel_access,
    effective,
    readable_channel_ids,
)
from bastion.chat.context import ChatContext, Outbox, check_name, check_version
from bastion.chat.denials import Denial, Refused, reports
from bastion.chat.paging import one_direction, page_both_ways
from bastion.chat.privileged import record_read
from bastion.chat.roles import ChannelType, Role
from bastion.chat.views import channel_view
from bastion.core.errors import Conflict, FieldError, LimitExceeded, ValidationFailed
from bastion.core.ids import Kind, is_id, new_id
from bastion.security import scopes
from bastion.security.acl import Level
from bastion.security.principal import Principal
from bastion.store.db import Connection
from bastion.store.records import ChannelRecord, DuplicateKeyError, MemberRecord, MessageRecord
from bastion.store.repos import channels as repo
from bastion.store.repos import messages as message_repo
from bastion.store.repos import users as user_repo


@dataclass(frozen=True, slots=True)
class ChannelEntry:
    """A channel as one member sees it: their membership, unread count, last message."""

    channel: ChannelRecord
    member: MemberRecord | None
    unread_count: int
    last_message: MessageRecord | None


@dataclass(frozen=True, slots=True)
class ChannelPage:
    """A page of the caller's channels, with opaque cursors to the pages either side."""

    entries: list[ChannelEntry]
    prev_cursor: str | None
    next_cursor: str | None


_Key = tuple[datetime, str]
"""Where a channel stands in the list: its last activity, then its id."""


def acting_user(caller: Principal, scope: str) -> str:
    """The user a chat call acts for; backend tokens cannot act in chat."""
    caller.require(scope)
    if caller.user_id is None:
        raise Refused("Chat actions need a user's access token.", Denial(None, "not_a_user"))
    return caller.user_id


async def load_access(
    ctx: ChatContext, conn: Connection, caller: Principal, user_id: str, channel_id: str
) -> ChannelAccess:
    """The caller's standing in a channel (membership, role, ban, ACL) at this moment."""
    return await channel_access(conn, caller, user_id, channel_id, ctx.clock.now())


class Channels:
    """Channel commands and queries."""

    def __init__(self, ctx: ChatContext) -> None:
        self._ctx = ctx

    @reports("channel:create")
    async def create(
        self,
        caller: Principal,
        *,
        type_: ChannelType,
        name: str | None,
        description: str | None,
        members: list[str],
    ) -> tuple[ChannelEntry, bool]:
        """Create a channel (or return the existing direct one); tell whether it is new."""
        user_id = acting_user(caller, scopes.CHAT_WRITE)
        check_name(self._ctx, "body.name", name)
        _check_direct_fields(type_, name, description)
        others = sorted(set(members) - {user_id})
        self._check_members(type_, others)
        if type_ is ChannelType.DIRECT:
            existing = await self._existing_direct(caller.app_id, user_id, others[0])
            if existing is not None:
                return existing, False
        outbox = Outbox()
        try:
            async with self._ctx.db.write() as conn:
                await self._require_active(conn, caller.app_id, others)
                channel, member = await self._insert(
                    conn, caller.app_id, user_id, type_, name, description, others, outbox
                )
        except DuplicateKeyError:
            # Two requests opened the same direct channel at once: return the winner's.
            existing = await self._existing_direct(caller.app_id, user_id, others[0])
            if existing is None:
                raise
            return existing, False
        await outbox.publish(self._ctx.broker)
        return ChannelEntry(channel, member, 0, None), True

    def _check_members(self, type_: ChannelType, others: list[str]) -> None:
        limits = self._ctx.limits
        if type_ is ChannelType.DIRECT and len(others) != 1:
            raise ValidationFailed(
                [FieldError("body.members", "A direct channel has exactly one other member.")]
            )
        if len(others) > limits.initial_members_max:
            raise LimitExceeded(
                "body.members", f"At most {limits.initial_members_max} members at creation."
            )
        cap = (
            limits.broadcast_max_members
            if type_ is ChannelType.BROADCAST
            else limits.group_max_members
        )
        if len(others) + 1 > cap:
            raise LimitExceeded(
                "body.members", f"A {type_.value} channel holds at most {cap} members."
            )

    async def _existing_direct(self, app_id: str, user_id: str, other: str) -> ChannelEntry | None:
        async with self._ctx.db.read() as conn:
            channel = await repo.get_direct_channel(conn, app_id, _direct_key(user_id, other))
            if channel is None:
                return None
            member = await repo.get_member(conn, app_id, channel.id, user_id)
            if member is None:
                return None
            return (await self._entries(conn, app_id, user_id, [(channel, member)]))[0]

    @staticmethod
    async def _require_active(conn: Connection, app_id: str, user_ids: list[str]) -> None:
        active = await user_repo.active_user_ids(conn, app_id, user_ids)
        missing = [uid for uid in user_ids if uid not in active]
        if missing:
            raise ValidationFailed(
                [
                    FieldError("body.members", f"Not an active user of this app: {uid}")
                    for uid in missing[:10]
                ]
            )

    async def _insert(
        self,
        conn: Connection,
        app_id: str,
        user_id: str,
        type_: ChannelType,
        name: str | None,
        description: str | None,
        others: list[str],
        outbox: Outbox,
    ) -> tuple[ChannelRecord, MemberRecord]:
        now = self._ctx.clock.now()
        direct = type_ is ChannelType.DIRECT
        channel = ChannelRecord(
            id=new_id(Kind.CHANNEL),
            app_id=app_id,
            type=type_.value,
            name=name,
            description=description,
            created_by=user_id,
            member_count=len(others) + 1,
            last_message_id=None,
            last_message_at=None,
            activity_at=now,
            archived=False,
            created_at=now,
            updated_at=now,
            version=1,
        )
        key = _direct_key(user_id, others[0]) if direct else None
        await repo.insert_channel(conn, app_id, channel, direct_key=key)
        creator_role = Role.MEMBER if direct else Role.OWNER
        owner = new_member(app_id, channel.id, user_id, creator_role, now)
        await repo.insert_member(conn, app_id, owner)
        for other in others:
            await repo.insert_member(
                conn, app_id, new_member(app_id, channel.id, other, Role.MEMBER, now)
            )
        everyone = (user_id, *others)
        outbox.add(
            app_id,
            "channel.created",
            channel_view(channel),
            channel_id=channel.id,
            user_ids=everyone,
            joins=tuple((uid, channel.id) for uid in everyone),
        )
        return channel, owner

    @reports("channel:read")
    async def ids_of_caller(self, caller: Principal) -> set[str]:
        """The ids of every channel the calling user belongs to and may read (for live
        subscriptions): the same ban and ACL checks as reading it over REST."""
        user_id = acting_user(caller, scopes.CHAT_READ)
        async with self._ctx.db.read() as conn:
            now = self._ctx.clock.now()
            return set(await readable_channel_ids(conn, caller, user_id, now))

    @reports("channel:read")
    async def get(self, caller: Principal, channel_id: str) -> ChannelEntry:
        """Return a channel the caller belongs to."""
        user_id = acting_user(caller, scopes.CHAT_READ)
        async with self._ctx.db.read() as conn:
            access = await load_access(self._ctx, conn, caller, user_id, channel_id)
            pair = (access.channel, access.member)
            entry = (await self._entries(conn, caller.app_id, user_id, [pair]))[0]
        await record_read(self._ctx, caller, access, [entry.last_message])
        return entry

    @reports("channel:read")
    async def list_mine(
        self,
        caller: Principal,
        *,
        after: str | None,
        before: str | None = None,
        limit: int,
        include_archived: bool,
    ) -> ChannelPage:
        """Return the caller's channels, most recently active first, with cursors to the
        pages either side (``after`` goes on down the list, ``before`` back up)."""
        user_id = acting_user(caller, scopes.CHAT_READ)
        one_direction(after, before)
        after_key = decode_cursor(after, "query.after") if after is not None else None
        before_key = decode_cursor(before, "query.before") if before is not None else None
        now = self._ctx.clock.now()
        async with self._ctx.db.read() as conn:

            async def fetch(
                after_at: _Key | None, before_at: _Key | None, count: int
            ) -> list[tuple[ChannelRecord, MemberRecord]]:
                return await repo.list_user_channels(
                    conn,
                    caller.app_id,
                    user_id,
                    after=after_at,
                    before=before_at,
                    limit=count,
                    include_archived=include_archived,
                    now=now,
                )

            page = await page_both_ways(
                fetch, _key_of, after=after_key, before=before_key, limit=limit
            )
            entries = await self._entries(conn, caller.app_id, user_id, page.rows)
        return ChannelPage(
            entries,
            encode_cursor(*page.prev) if page.prev else None,
            encode_cursor(*page.next) if page.next else None,
        )

    async def _entries(
        self,
        conn: Connection,
        app_id: str,
        user_id: str,
        rows: Sequence[tuple[ChannelRecord, MemberRecord | None]],
    ) -> list[ChannelEntry]:
        ids = [channel.id for channel, _ in rows]
        unread = await message_repo.unread_counts(conn, app_id, user_id, ids)
        last_ids = [c.last_message_id for c, _ in rows if c.last_message_id]
        last = await message_repo.get_messages(conn, app_id, last_ids)
        now = self._ctx.clock.now()
        return [
            ChannelEntry(
                c,
                effective(m, now) if m else None,
                unread.get(c.id, 0),
                last.get(c.last_message_id or ""),
            )
            for c, m in rows
        ]

    @reports("channel:update")
    async def update(
        self, caller: Principal, channel_id: str, changes: dict[str, Any], if_match: int | None
    ) -> ChannelEntry:
        """Rename, describe, archive or unarchive a channel (owners and moderators)."""
        user_id = acting_user(caller, scopes.CHAT_WRITE)
        check_name(self._ctx, "body.name", changes.get("name"))
        outbox = Outbox()
        async with self._ctx.db.write() as conn:
            # Held to the end, so the version checked is the version changed.
            await repo.lock_channel(conn, caller.app_id, channel_id)
            access = await load_access(self._ctx, conn, caller, user_id, channel_id)
            channel, member = access.channel, access.member
            check_version(channel.version, if_match)
            _check_update(access, changes)
            if changes:
                changes["updated_at"] = self._ctx.clock.now()
                await repo.update_channel(conn, caller.app_id, channel_id, changes)
                access = await load_access(self._ctx, conn, caller, user_id, channel_id)
                channel = access.channel
                outbox.add(
                    caller.app_id, "channel.updated", channel_view(channel), channel_id=channel.id
                )
            entry = (await self._entries(conn, caller.app_id, user_id, [(channel, member)]))[0]
        await outbox.publish(self._ctx.broker)
        await record_read(self._ctx, caller, access, [entry.last_message])
        return entry


def _check_update(access: ChannelAccess, changes: dict[str, Any]) -> None:
    channel = access.channel
    if channel.type == ChannelType.DIRECT and changes:
        # Like leaving one or changing roles in one: the channel's kind forbids it (409).
        raise Conflict("Direct channels have no name or description and cannot be archived.")
    if "archived" in changes:
        access.require(Level.MANAGE, "Only the channel's owners can do this.")
    else:
        access.require(Level.MODERATE, "Only the channel's owners and moderators can do this.")
    if channel.archived and set(changes) - {"archived"}:
        raise Conflict("The channel is archived; unarchive it first.")


def _check_direct_fields(type_: ChannelType, name: str | None, description: str | None) -> None:
    """A direct channel has no name or description: one sent is refused, not dropped."""
    if type_ is not ChannelType.DIRECT:
        return
    message = "A direct channel has no {}."
    errors = [
        FieldError(f"body.{field}", message.format(field))
        for field, value in (("name", name), ("description", description))
        if value is not None
    ]
    if errors:
        raise ValidationFailed(errors)


def _direct_key(a: str, b: str) -> str:
    return ":".join(sorted((a, b)))


def new_member(
    app_id: str, channel_id: str, user_id: str, role: Role, now: datetime
) -> MemberRecord:
    """A fresh membership record with nothing read yet."""
    return MemberRecord(
        channel_id=channel_id,
        user_id=user_id,
        app_id=app_id,
        role=role.value,
        joined_at=now,
        last_read_seq=0,
        last_read_message_id=None,
        last_read_at=None,
    )


def _key_of(row: tuple[ChannelRecord, MemberRecord]) -> _Key:
    return row[0].activity_at, row[0].id


def encode_cursor(at: datetime, channel_id: str) -> str:
    """An opaque cursor for the channel list."""
    raw = json.dumps([at.isoformat(), channel_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, field: str = "query.after") -> tuple[datetime, str]:
    """Read a channel-list cursor back; anything malformed is a validation error."""
    invalid = ValidationFailed([FieldError(field, "Invalid cursor.")])
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, channel_id = json.loads(raw)
        moment = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise invalid from exc
    if (
        moment.tzinfo is None
        or not isinstance(channel_id, str)
        or not is_id(Kind.CHANNEL, channel_id)
    ):
        raise invalid
    return moment, channel_id
