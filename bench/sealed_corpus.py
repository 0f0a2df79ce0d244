"""A database full of sealed messages, written in bulk through the real sealing code.

Every body is sealed by the database's own column cipher (``store.sealing.seal``, the
function ``insert_message`` uses) and indexed with its real blind-index terms; only the
row writes are batched: one transaction and one ``executemany`` per table per batch,
instead of one request per message. The result is what a server that had received
those messages would hold.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import make_url

from bastion.app import database, secret_hasher
from bastion.chat.apps import create_app
from bastion.core.clock import SystemClock
from bastion.core.ids import Kind, new_id
from bastion.core.settings import Settings
from bastion.store import migrate
from bastion.store.db import Connection
from bastion.store.sealing import Cell, Owner, cipher_of, seal
from bastion.store.tables import channels, message_terms, messages

TYPICAL = "hello from the benchmark, a message of a typical length for chat"
BATCH = 5000
# The fill is a bulk load: a bigger page cache keeps the term index's hot pages in memory.
_FILL_CACHE_KIB = 256 * 1024


async def fill(
    settings: Settings,
    count: int,
    channel_count: int,
    *,
    report: Callable[[int], None] | None = None,
) -> str:
    """Create one app, ``channel_count`` channels and ``count`` sealed messages; return app id."""
    # A load runs longer than the data-key cache of the settings the jobs are timed with.
    encryption = settings.encryption.model_copy(update={"dek_cache_seconds": 3600})
    db = database(settings.model_copy(update={"encryption": encryption}))
    try:
        await migrate.upgrade(db.engine)
        app = (await create_app(db, secret_hasher(settings), SystemClock(), name="bench")).app
        channel_ids = [new_id(Kind.CHANNEL) for _ in range(channel_count)]
        async with db.write() as conn:
            if db.is_sqlite:
                await conn.exec_driver_sql(f"PRAGMA cache_size=-{_FILL_CACHE_KIB}")
            await conn.execute(insert(channels), [channel_row(app.id, c) for c in channel_ids])
        for start in range(0, count, BATCH):
            async with db.write() as conn:
                await _batch(conn, app.id, channel_ids, range(start, min(start + BATCH, count)))
            if db.is_sqlite:
                _checkpoint(settings.database_url)
            if report is not None:
                report(min(start + BATCH, count))
        return app.id
    finally:
        await db.close()


def channel_row(app_id: str, channel_id: str) -> dict[str, Any]:
    """A group channel's row (the fields ``create`` would fill)."""
    now = SystemClock().now()
    return {
        "id": channel_id,
        "app_id": app_id,
        "type": "group",
        "name": "bench",
        "created_by": "usr_bench",
        "member_count": 0,
        "activity_at": now,
        "archived": False,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


async def _batch(conn: Connection, app_id: str, channel_ids: list[str], numbers: range) -> None:
    """Seal and index one batch of messages, then write it with one statement per table."""
    now = SystemClock().now()
    rows: list[dict[str, Any]] = []
    terms: list[dict[str, Any]] = []
    cipher = cipher_of(conn)
    for number in numbers:
        message_id = new_id(Kind.MESSAGE)
        channel_id = channel_ids[number % len(channel_ids)]
        body = f"{TYPICAL} number {number}"
        cell = Cell(app_id, "messages", "body", message_id)
        sealed = await seal(conn, cell, Owner("channel", channel_id), body)
        rows.append(_message(app_id, channel_id, message_id, sealed, now))
        terms.extend(
            {"message_id": message_id, "term": t, "app_id": app_id, "channel_id": channel_id}
            for t in await cipher.terms(conn, app_id, channel_id, body)
        )
    await conn.execute(insert(messages), rows)
    await conn.execute(insert(message_terms), terms)


def _message(
    app_id: str, channel_id: str, message_id: str, sealed: str, now: Any
) -> dict[str, Any]:
    return {
        "id": message_id,
        "app_id": app_id,
        "channel_id": channel_id,
        "author_id": "usr_bench",
        "parent_id": None,
        "body": sealed,
        "mentions": "",
        "client_msg_id": None,
        "reply_count": 0,
        "created_at": now,
        "edited_at": None,
        "deleted_at": None,
        "version": 1,
    }


def _checkpoint(url: str) -> None:
    """Fold the WAL into the database so it does not grow with the load."""
    connection = sqlite3.connect(str(make_url(url).database), timeout=30)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def progress_printer(total: int) -> Callable[[int], None]:
    """A ``report`` callback printing rows written and rate every 10 %."""
    started = time.perf_counter()
    step = max(total // 10, 1)

    def report(done: int) -> None:
        if done % step < BATCH or done == total:
            rate = done / (time.perf_counter() - started)
            print(f"fill: {done:,} / {total:,} messages, {rate:,.0f}/s", flush=True)

    return report
