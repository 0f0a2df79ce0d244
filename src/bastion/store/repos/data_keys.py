"""Data keys (stored wrapped), the blind index of message words, and key-job progress."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.sealing import Owner
from bastion.store.tables import data_keys, key_jobs, message_terms


@dataclass(frozen=True, slots=True)
class DataKeyRecord:
    """A data key as stored: wrapped by a KEK version, or destroyed (``wrapped`` None)."""

    id: str
    app_id: str
    owner_kind: str
    owner_id: str
    purpose: str
    kek_version: int
    wrapped: str | None
    created_at: datetime
    destroyed_at: datetime | None


def _record(row: Mapping[Any, Any]) -> DataKeyRecord:
    return DataKeyRecord(**dict(row))


async def insert_key(conn: AsyncConnection, record: DataKeyRecord) -> None:
    """Store a new wrapped data key."""
    await conn.execute(
        insert(data_keys).values(**{n: getattr(record, n) for n in record.__slots__})
    )


async def get_key(conn: AsyncConnection, app_id: str, key_id: str) -> DataKeyRecord | None:
    """The app's data key with this id, or None."""
    query = select(data_keys).where(data_keys.c.app_id == app_id, data_keys.c.id == key_id)
    row = (await conn.execute(query)).mappings().first()
    return _record(row) if row else None


async def newest_key(
    conn: AsyncConnection, app_id: str, owner: Owner, purpose: str
) -> DataKeyRecord | None:
    """The owner's newest live key for ``purpose`` (``data`` or ``index``), or None."""
    query = (
        select(data_keys)
        .where(
            data_keys.c.app_id == app_id,
            data_keys.c.owner_kind == owner.kind,
            data_keys.c.owner_id == owner.id,
            data_keys.c.purpose == purpose,
            data_keys.c.wrapped.is_not(None),
        )
        .order_by(data_keys.c.created_at.desc(), data_keys.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).mappings().first()
    return _record(row) if row else None


async def destroy_owner_keys(
    conn: AsyncConnection, app_id: str, owner: Owner, now: datetime
) -> list[str]:
    """Destroy every key of an owner (the wrapped material is erased); return their ids."""
    where = (
        (data_keys.c.app_id == app_id)
        & (data_keys.c.owner_kind == owner.kind)
        & (data_keys.c.owner_id == owner.id)
        & data_keys.c.wrapped.is_not(None)
    )
    ids = list((await conn.execute(select(data_keys.c.id).where(where))).scalars())
    await conn.execute(update(data_keys).where(where).values(wrapped=None, destroyed_at=now))
    return ids


async def keys_to_rewrap(
    conn: AsyncConnection, below_version: int, after_id: str, limit: int
) -> list[DataKeyRecord]:
    """Live keys wrapped under a KEK version older than ``below_version``, by id."""
    query = (
        select(data_keys)
        .where(
            data_keys.c.kek_version < below_version,
            data_keys.c.wrapped.is_not(None),
            data_keys.c.id > after_id,
        )
        .order_by(data_keys.c.id)
        .limit(limit)
    )
    return [_record(row) for row in (await conn.execute(query)).mappings()]


async def count_below_version(conn: AsyncConnection, version: int) -> int:
    """How many live keys are still wrapped under versions older than ``version``."""
    query = select(func.count()).where(
        data_keys.c.kek_version < version, data_keys.c.wrapped.is_not(None)
    )
    return int((await conn.execute(query)).scalar_one())


@dataclass(frozen=True, slots=True)
class Rewrapped:
    """A data key's new wrapping (the key itself is unchanged)."""

    key_id: str
    kek_version: int
    wrapped: str


async def set_wrapped(conn: AsyncConnection, changes: list[Rewrapped]) -> None:
    """Replace keys' wrappings in one statement; a key destroyed meanwhile stays destroyed."""
    if not changes:
        return
    statement = (
        update(data_keys)
        .where(data_keys.c.id == bindparam("b_id"), data_keys.c.wrapped.is_not(None))
        .values(kek_version=bindparam("b_version"), wrapped=bindparam("b_wrapped"))
    )
    await conn.execute(
        statement,
        [{"b_id": c.key_id, "b_version": c.kek_version, "b_wrapped": c.wrapped} for c in changes],
    )


async def retire_keys(conn: AsyncConnection, key_ids: Collection[str], now: datetime) -> None:
    """Erase keys no value refers to any more (after re-encryption)."""
    if key_ids:
        await conn.execute(
            update(data_keys)
            .where(data_keys.c.id.in_(list(key_ids)))
            .values(wrapped=None, destroyed_at=now)
        )


async def owners_with_keys_before(
    conn: AsyncConnection, kind: str, before: datetime, after_id: str, limit: int
) -> list[tuple[str, str]]:
    """(app_id, owner_id) of owners of ``kind`` whose newest data key predates ``before``."""
    newest = func.max(data_keys.c.created_at)
    query = (
        select(data_keys.c.app_id, data_keys.c.owner_id)
        .where(
            data_keys.c.owner_kind == kind,
            data_keys.c.purpose == "data",
            data_keys.c.wrapped.is_not(None),
            data_keys.c.owner_id > after_id,
        )
        .group_by(data_keys.c.app_id, data_keys.c.owner_id)
        .having(newest < before)
        .order_by(data_keys.c.owner_id)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in await conn.execute(query)]


async def live_data_keys(conn: AsyncConnection, kind: str) -> list[DataKeyRecord]:
    """Every live data key of owners of ``kind`` (for the final re-encryption sweep)."""
    query = select(data_keys).where(
        data_keys.c.owner_kind == kind,
        data_keys.c.purpose == "data",
        data_keys.c.wrapped.is_not(None),
    )
    return [_record(row) for row in (await conn.execute(query)).mappings()]


# -- blind index -------------------------------------------------------------------------
# A message's terms are written by one statement, compiled once: the send path runs it
# for every message. SQLite gets the qmark INSERT text for its executemany; PostgreSQL
# gets one INSERT ... SELECT unnest(terms), a single round trip whatever the word count.
_SQLITE_TERMS = insert(message_terms).compile(dialect=sqlite_dialect.dialect())
_SQLITE_TERMS_SQL = str(_SQLITE_TERMS)
_SQLITE_TERMS_COLUMNS = tuple(_SQLITE_TERMS.positiontup or ())
_PG_TERMS = insert(message_terms).from_select(
    ["message_id", "term", "app_id", "channel_id"],
    select(
        bindparam("message_id", type_=String),
        func.unnest(bindparam("terms", type_=postgresql.ARRAY(String))),
        bindparam("app_id", type_=String),
        bindparam("channel_id", type_=String),
    ),
)


async def replace_terms(
    conn: AsyncConnection,
    app_id: str,
    channel_id: str,
    message_id: str,
    terms: Collection[str],
    *,
    new: bool = False,
) -> None:
    """Set a message's index terms (none for a deleted message); ``new``: it has none yet."""
    if not new:
        await conn.execute(delete(message_terms).where(message_terms.c.message_id == message_id))
    if not terms:
        return
    distinct = sorted(set(terms))
    if conn.dialect.name == "sqlite":
        fixed = {"message_id": message_id, "app_id": app_id, "channel_id": channel_id}
        rows = [
            tuple(term if name == "term" else fixed[name] for name in _SQLITE_TERMS_COLUMNS)
            for term in distinct
        ]
        await conn.exec_driver_sql(_SQLITE_TERMS_SQL, rows if len(rows) > 1 else rows[0])
        return
    params = {"message_id": message_id, "terms": distinct, "app_id": app_id}
    await conn.execute(_PG_TERMS, {**params, "channel_id": channel_id})


async def drop_channel_terms(conn: AsyncConnection, app_id: str, channel_id: str) -> None:
    """Remove a channel's index terms (crypto-shredding)."""
    await conn.execute(
        delete(message_terms).where(
            message_terms.c.app_id == app_id, message_terms.c.channel_id == channel_id
        )
    )


# -- key jobs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyJob:
    """A resumable key job's progress."""

    name: str
    state: str
    phase: str
    position: str
    boundary: str
    done: int
    started_at: datetime
    updated_at: datetime


async def get_job(conn: AsyncConnection, name: str) -> KeyJob | None:
    """The job's saved progress, or None."""
    row = (await conn.execute(select(key_jobs).where(key_jobs.c.name == name))).mappings().first()
    return KeyJob(**dict(row)) if row else None


async def save_job(conn: AsyncConnection, job: KeyJob) -> None:
    """Insert or replace the job's progress."""
    await conn.execute(delete(key_jobs).where(key_jobs.c.name == job.name))
    await conn.execute(insert(key_jobs).values(**{n: getattr(job, n) for n in job.__slots__}))
