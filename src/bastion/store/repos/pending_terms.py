"""Blind-index terms waiting on their message's row until the indexer files them.

A send stores its message's terms in the row it inserts anyway (``messages.pending_terms``,
the terms joined by spaces), so the send's transaction touches no page of the
``(channel_id, term)`` index. ``index_batch`` later moves a batch of them into
``message_terms`` in one transaction, where many messages share the index pages and one
commit. Search reads both places in one statement, so a message is found as soon as it
is committed, before and after it is filed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, String, bindparam, func, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.repos._sql import insert_ignoring_duplicates
from bastion.store.sqlite_inline import DirectConnection, PreparedWrite
from bastion.store.tables import message_terms, messages

_PENDING = messages.c.pending_terms.is_not(None)
_CLEAR = (
    update(messages)
    .where(messages.c.id == bindparam("message_id", type_=String))
    .values(pending_terms=None)
)


_FILE_SQLITE = PreparedWrite.of(
    sqlite.insert(message_terms).on_conflict_do_nothing(),
    ["message_id", "term", "app_id", "channel_id"],
)
_CLEAR_SQLITE = PreparedWrite.of(_CLEAR)


@dataclass(frozen=True, slots=True)
class PendingTerms:
    """One message's terms not yet in the index."""

    message_id: str
    app_id: str
    channel_id: str
    terms: tuple[str, ...]


def encode(terms: list[str]) -> str | None:
    """The column value for these terms (None: nothing to index).

    Each term stands between spaces, so ``holds`` finds whole terms only.
    """
    return f" {' '.join(sorted(set(terms)))} " if terms else None


def holds(conn: AsyncConnection, term: str) -> ColumnElement[bool]:
    """Whether a row's pending terms include ``term`` (case-sensitive: terms are base64url)."""
    position = func.instr if conn.dialect.name == "sqlite" else func.strpos
    return position(messages.c.pending_terms, f" {term} ") > 0


async def take(conn: AsyncConnection, limit: int) -> list[PendingTerms]:
    """Up to ``limit`` messages with pending terms, locked for this transaction.

    On PostgreSQL the rows are locked and rows another node holds are skipped, so
    several indexers share the work without waiting on or repeating each other.
    """
    query = (
        select(messages.c.id, messages.c.app_id, messages.c.channel_id, messages.c.pending_terms)
        .where(_PENDING)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = (await conn.execute(query)).all()
    return [PendingTerms(row[0], row[1], row[2], tuple(row[3].split())) for row in rows]


async def file(conn: AsyncConnection, batch: list[PendingTerms]) -> None:
    """Move the batch's terms into the index (idempotent) and clear them from the rows."""
    if not batch:
        return
    rows = [
        {"message_id": p.message_id, "term": t, "app_id": p.app_id, "channel_id": p.channel_id}
        for p in batch
        for t in p.terms
    ]
    cleared = [{"message_id": p.message_id, "pending_terms": None} for p in batch]
    if isinstance(conn, DirectConnection):
        # A dozen terms per message: on SQLite one executemany on the driver each.
        if rows:
            await conn.write_rows(_FILE_SQLITE, rows)
        await conn.write_rows(_CLEAR_SQLITE, cleared)
        return
    if rows:
        await conn.execute(insert_ignoring_duplicates(conn, message_terms), rows)
    await conn.execute(_CLEAR, cleared)


async def index_batch(conn: AsyncConnection, limit: int) -> int:
    """File up to ``limit`` messages' pending terms; return how many messages were filed."""
    batch = await take(conn, limit)
    await file(conn, batch)
    return len(batch)


async def drop_channel(conn: AsyncConnection, app_id: str, channel_id: str) -> None:
    """Forget a channel's pending terms (crypto-shredding)."""
    await conn.execute(
        update(messages)
        .where(messages.c.app_id == app_id, messages.c.channel_id == channel_id, _PENDING)
        .values(pending_terms=None)
    )
