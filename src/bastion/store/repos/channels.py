"""Channels and their memberships."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.records import ChannelRecord, MemberRecord
from bastion.store.repos._sql import insert_row
from bastion.store.sqlite_inline import DirectConnection, Prepared
from bastion.store.tables import acl_entries, app_roles, channel_members, channels

_CHANNEL_COLUMNS = [c for c in channels.c if c.name != "direct_key"]
_MEMBER_LABELS = [c.label(f"m_{c.name}") for c in channel_members.c]


async def insert_channel(
    conn: AsyncConnection, app_id: str, record: ChannelRecord, *, direct_key: str | None
) -> None:
    """Create a channel; a second direct channel for one pair raises ``DuplicateKeyError``."""
    values = {name: getattr(record, name) for name in record.__slots__}
    values["app_id"] = app_id
    await insert_row(conn, channels, {**values, "direct_key": direct_key})


async def lock_channel(conn: AsyncConnection, app_id: str, channel_id: str) -> None:
    """Hold the channel's row until the transaction ends (``SELECT … FOR UPDATE``).

    Membership changes take this lock first, so checks on the whole membership (the
    member cap, "a channel keeps an owner") cannot race. SQLite writers are serialised
    already, and SQLAlchemy renders no ``FOR UPDATE`` there.
    """
    query = (
        select(channels.c.id)
        .where(channels.c.app_id == app_id, channels.c.id == channel_id)
        .with_for_update()
    )
    await conn.execute(query)


async def get_direct_channel(
    conn: AsyncConnection, app_id: str, direct_key: str
) -> ChannelRecord | None:
    """Return the direct channel of a pair of users, or None."""
    query = select(*_CHANNEL_COLUMNS).where(
        channels.c.app_id == app_id, channels.c.direct_key == direct_key
    )
    row = (await conn.execute(query)).mappings().first()
    return ChannelRecord(**row) if row else None


async def get_channel(conn: AsyncConnection, app_id: str, channel_id: str) -> ChannelRecord | None:
    """Return one channel of the app, or None."""
    query = select(*_CHANNEL_COLUMNS).where(
        channels.c.app_id == app_id, channels.c.id == channel_id
    )
    row = (await conn.execute(query)).mappings().first()
    return ChannelRecord(**row) if row else None


def _not_banned(now: datetime) -> Any:
    """Memberships that are not an active ban (a ban past its expiry no longer counts)."""
    return or_(
        channel_members.c.role != "banned",
        and_(
            channel_members.c.role_expires_at.is_not(None),
            channel_members.c.role_expires_at <= now,
        ),
    )


async def update_channel(
    conn: AsyncConnection, app_id: str, channel_id: str, changes: dict[str, Any]
) -> None:
    """Apply changes to a channel and bump its version."""
    await conn.execute(
        update(channels)
        .where(channels.c.app_id == app_id, channels.c.id == channel_id)
        .values(**changes, version=channels.c.version + 1)
    )


async def change_member_count(
    conn: AsyncConnection, app_id: str, channel_id: str, delta: int
) -> None:
    """Add ``delta`` to a channel's member count."""
    await conn.execute(
        update(channels)
        .where(channels.c.app_id == app_id, channels.c.id == channel_id)
        .values(member_count=channels.c.member_count + delta)
    )


async def list_user_channels(
    conn: AsyncConnection,
    app_id: str,
    user_id: str,
    *,
    after: tuple[datetime, str] | None,
    before: tuple[datetime, str] | None = None,
    limit: int,
    include_archived: bool,
    now: datetime,
) -> list[tuple[ChannelRecord, MemberRecord]]:
    """Return up to ``limit`` of the user's channels, most recently active first: the
    first ones after a (time, id) key in that order, or the last ones before one.

    Channels the user is banned from are not listed.
    """
    query = (
        select(*_CHANNEL_COLUMNS, *_MEMBER_LABELS)
        .join(channel_members, channel_members.c.channel_id == channels.c.id)
        .where(
            channel_members.c.app_id == app_id,
            channel_members.c.user_id == user_id,
            _not_banned(now),
        )
    )
    if not include_archived:
        query = query.where(channels.c.archived.is_(False))
    if after is not None:
        at, channel_id = after
        query = query.where(
            or_(
                channels.c.activity_at < at,
                and_(channels.c.activity_at == at, channels.c.id < channel_id),
            )
        )
    if before is not None:
        at, channel_id = before
        query = query.where(
            or_(
                channels.c.activity_at > at,
                and_(channels.c.activity_at == at, channels.c.id > channel_id),
            )
        )
        query = query.order_by(channels.c.activity_at.asc(), channels.c.id.asc()).limit(limit)
        return [_pair(row) for row in (await conn.execute(query)).mappings()][::-1]
    query = query.order_by(channels.c.activity_at.desc(), channels.c.id.desc()).limit(limit)
    return [_pair(row) for row in (await conn.execute(query)).mappings()]


class Standing(NamedTuple):
    """A channel with one user's membership of it (None if they are not a member) and
    the ``(subject, level, effect)`` entries of an ACL on it."""

    channel: ChannelRecord
    member: MemberRecord | None
    acl: list[tuple[str, str, str]]


_ACL_COLUMNS = (
    acl_entries.c.subject.label("acl_subject"),
    acl_entries.c.level.label("acl_level"),
    acl_entries.c.effect.label("acl_effect"),
)
# Built once (every channel action runs it): the channel, the user's membership row and
# the ACL's entries, one row per entry (one row of NULLs for them when there are none).
_STANDING = (
    select(*_CHANNEL_COLUMNS, *_MEMBER_LABELS, *_ACL_COLUMNS)
    .select_from(channels)
    .outerjoin(
        channel_members,
        and_(
            channel_members.c.channel_id == channels.c.id,
            channel_members.c.app_id == bindparam("app_id"),
            channel_members.c.user_id == bindparam("user_id"),
        ),
    )
    .outerjoin(
        acl_entries,
        and_(
            acl_entries.c.app_id == bindparam("app_id"),
            acl_entries.c.resource == bindparam("resource"),
        ),
    )
    .where(channels.c.app_id == bindparam("app_id"), channels.c.id == bindparam("channel_id"))
    .order_by(*_ACL_COLUMNS)
)


async def get_standing(
    conn: AsyncConnection, app_id: str, channel_id: str, user_id: str, resource: str
) -> Standing | None:
    """One user's standing in one channel of the app, with the ACL on ``resource`` (the
    channel's ACL resource name), in one query; None when the app has no such channel."""
    params = {"app_id": app_id, "channel_id": channel_id, "user_id": user_id}
    params["resource"] = resource
    if isinstance(conn, DirectConnection):
        rows: Sequence[Sequence[Any]] = await conn.fetch_rows(_STANDING_SQLITE, params)
    else:
        rows = (await conn.execute(_STANDING, params)).all()
    if not rows:
        return None
    # Records by position (the columns are in field order, checked below): every channel
    # action builds these, and by name it took several times longer.
    first = rows[0]
    channel = ChannelRecord(*first[:_MEMBER_AT])
    member = MemberRecord(*first[_MEMBER_AT:_ACL_AT]) if first[_MEMBER_AT] is not None else None
    acl = [
        (row[_ACL_AT], row[_ACL_AT + 1], row[_ACL_AT + 2])
        for row in rows
        if row[_ACL_AT] is not None
    ]
    return Standing(channel, member, acl)


# On SQLite the rows come straight from the driver (see ``sqlite_inline.Prepared``).
_STANDING_SQLITE = Prepared.of(_STANDING)
_MEMBER_AT = len(_CHANNEL_COLUMNS)
_ACL_AT = _MEMBER_AT + len(channel_members.c)
if [c.name for c in _CHANNEL_COLUMNS] != [f.name for f in fields(ChannelRecord)] or [
    c.name for c in channel_members.c
] != [f.name for f in fields(MemberRecord)]:
    raise TypeError("channel and member records must list their table's columns in order")


def _pair(row: Mapping[Any, Any]) -> tuple[ChannelRecord, MemberRecord]:
    channel = ChannelRecord(**{c.name: row[c.name] for c in _CHANNEL_COLUMNS})
    member = MemberRecord(**{c.name: row[f"m_{c.name}"] for c in channel_members.c})
    return channel, member


async def insert_member(conn: AsyncConnection, app_id: str, record: MemberRecord) -> None:
    """Add a member; an existing membership raises ``DuplicateKeyError``."""
    values = {name: getattr(record, name) for name in record.__slots__}
    await insert_row(conn, channel_members, {**values, "app_id": app_id})


async def get_member(
    conn: AsyncConnection, app_id: str, channel_id: str, user_id: str, *, lock: bool = False
) -> MemberRecord | None:
    """Return the membership, or None; ``lock`` holds its row until the transaction ends."""
    query = select(channel_members).where(
        channel_members.c.app_id == app_id,
        channel_members.c.channel_id == channel_id,
        channel_members.c.user_id == user_id,
    )
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    return MemberRecord(**row) if row else None


async def list_members(
    conn: AsyncConnection,
    app_id: str,
    channel_id: str,
    *,
    after: str | None,
    before: str | None = None,
    limit: int,
) -> list[MemberRecord]:
    """Return up to ``limit`` members in user id order: the first ones after the user id
    ``after``, or the last ones before the user id ``before``."""
    query = select(channel_members).where(
        channel_members.c.app_id == app_id, channel_members.c.channel_id == channel_id
    )
    if after is not None:
        query = query.where(channel_members.c.user_id > after)
    if before is not None:
        query = query.where(channel_members.c.user_id < before)
    key = channel_members.c.user_id
    query = query.order_by(key.desc() if before is not None else key.asc()).limit(limit)
    found = [MemberRecord(**row) for row in (await conn.execute(query)).mappings()]
    return found[::-1] if before is not None else found


async def member_ids(conn: AsyncConnection, app_id: str, channel_id: str) -> list[str]:
    """Return the user ids of every member of a channel."""
    query = select(channel_members.c.user_id).where(
        channel_members.c.app_id == app_id, channel_members.c.channel_id == channel_id
    )
    return list((await conn.execute(query)).scalars())


async def channel_ids_of_user(
    conn: AsyncConnection, app_id: str, user_id: str, now: datetime
) -> list[str]:
    """Return the ids of every channel the user belongs to and is not banned from."""
    query = select(channel_members.c.channel_id).where(
        channel_members.c.app_id == app_id,
        channel_members.c.user_id == user_id,
        _not_banned(now),
    )
    return list((await conn.execute(query)).scalars())


async def readers_with_roles(
    conn: AsyncConnection, app_id: str, channel_id: str, now: datetime
) -> list[tuple[str, frozenset[str] | None]]:
    """Every member of a channel who is not banned, with their assigned app roles (None
    when none were ever assigned)."""
    assigned = and_(
        app_roles.c.app_id == channel_members.c.app_id,
        app_roles.c.user_id == channel_members.c.user_id,
    )
    query = (
        select(channel_members.c.user_id, app_roles.c.roles)
        .select_from(channel_members.outerjoin(app_roles, assigned))
        .where(
            channel_members.c.app_id == app_id,
            channel_members.c.channel_id == channel_id,
            _not_banned(now),
        )
    )
    return [
        (row[0], None if row[1] is None else frozenset(row[1].split()))
        for row in await conn.execute(query)
    ]


async def update_member(
    conn: AsyncConnection, app_id: str, channel_id: str, user_id: str, changes: dict[str, Any]
) -> None:
    """Apply changes to a membership's role and bump its version."""
    await conn.execute(
        update(channel_members)
        .where(
            channel_members.c.app_id == app_id,
            channel_members.c.channel_id == channel_id,
            channel_members.c.user_id == user_id,
        )
        .values(**changes, version=channel_members.c.version + 1)
    )


async def advance_read_position(
    conn: AsyncConnection,
    app_id: str,
    channel_id: str,
    user_id: str,
    *,
    seq: int,
    message_id: str,
    now: datetime,
) -> bool:
    """Move a member's read position forward to ``seq``; tell whether it moved.

    The comparison is part of the UPDATE, so of two concurrent moves the one further
    forward wins whatever order they commit in. The version is not bumped: it follows
    the role, which is what ``If-Match`` protects.
    """
    result = await conn.execute(
        update(channel_members)
        .where(
            channel_members.c.app_id == app_id,
            channel_members.c.channel_id == channel_id,
            channel_members.c.user_id == user_id,
            channel_members.c.last_read_seq < seq,
        )
        .values(last_read_seq=seq, last_read_message_id=message_id, last_read_at=now)
    )
    return bool(result.rowcount)


async def delete_member(conn: AsyncConnection, app_id: str, channel_id: str, user_id: str) -> bool:
    """Remove a membership; tell whether there was one."""
    result = await conn.execute(
        delete(channel_members).where(
            channel_members.c.app_id == app_id,
            channel_members.c.channel_id == channel_id,
            channel_members.c.user_id == user_id,
        )
    )
    return bool(result.rowcount)


async def count_role(conn: AsyncConnection, app_id: str, channel_id: str, role: str) -> int:
    """Return how many members of a channel hold ``role``."""
    query = (
        select(func.count())
        .select_from(channel_members)
        .where(
            channel_members.c.app_id == app_id,
            channel_members.c.channel_id == channel_id,
            channel_members.c.role == role,
        )
    )
    return int((await conn.execute(query)).scalar_one())
