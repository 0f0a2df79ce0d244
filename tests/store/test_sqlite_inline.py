"""Prepared statements on SQLite: driver rows decoded and values bound exactly as
SQLAlchemy does it, driver errors raised as SQLAlchemy's, statement timing still fired."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, bindparam, select
from sqlalchemy.exc import IntegrityError, OperationalError

from bastion.store.db import Database, create_engine
from bastion.store.sqlite_inline import DirectConnection, Prepared, PreparedWrite
from bastion.store.tables import TS

_metadata = MetaData()
_things = Table(
    "things",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), nullable=True),
    Column("done", Boolean, nullable=False),
    Column("at", TS, nullable=True),
)
_QUERY = select(_things).where(_things.c.id >= bindparam("low")).order_by(_things.c.id)
_ROWS: list[dict[str, object]] = [
    {"id": 1, "name": "a", "done": True, "at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)},
    {"id": 2, "name": None, "done": False, "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)},
    {"id": 3, "name": "c", "done": False, "at": None},
]


async def _database(tmp_path: Path) -> Database:
    db = Database(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}"))
    async with db.write() as conn:
        await conn.run_sync(_metadata.create_all)
        await conn.execute(_things.insert(), _ROWS)
    return db


async def test_driver_rows_decode_like_sqlalchemy(tmp_path: Path) -> None:
    """Booleans, aware UTC datetimes (with and without microseconds) and NULLs come back
    from the driver path exactly as from a statement SQLAlchemy runs."""
    db = await _database(tmp_path)
    try:
        async with db.read() as conn:
            assert isinstance(conn, DirectConnection)
            direct = await conn.fetch_rows(Prepared.of(_QUERY), {"low": 1})
            core = [list(row) for row in (await conn.execute(_QUERY, {"low": 1})).all()]
    finally:
        await db.close()
    assert direct == core == [list(row.values()) for row in _ROWS]
    assert direct[0][3].tzinfo is UTC


async def test_driver_errors_and_timing_go_through_sqlalchemy(tmp_path: Path) -> None:
    """A failing query raises SQLAlchemy's error class (so it maps to 503 like any other),
    and every query is seen by the statement-timing hook."""
    db = await _database(tmp_path)
    timed: list[float] = []
    db.time_queries(timed.append)
    broken = Prepared.of(select(_things).where(_things.c.id == bindparam("low")))
    broken = Prepared(broken.sql.replace("things", "no_such_table"), broken.names, ())
    try:
        async with db.read() as conn:
            assert isinstance(conn, DirectConnection)
            await conn.fetch_rows(Prepared.of(_QUERY), {"low": 2})
            with pytest.raises(OperationalError, match="no_such_table"):
                await conn.fetch_rows(broken, {"low": 1})
    finally:
        await db.close()
    assert len(timed) == 1


async def test_driver_writes_bind_like_sqlalchemy(tmp_path: Path) -> None:
    """Rows written on the driver (one, then several at once) read back through
    SQLAlchemy exactly as written; a duplicate key is SQLAlchemy's IntegrityError."""
    db = await _database(tmp_path)
    insert = PreparedWrite.of(_things.insert(), ["id", "name", "done", "at"])
    more: list[dict[str, object]] = [
        {"id": 4, "name": "d", "done": True, "at": datetime(2027, 5, 6, 7, 8, 9, tzinfo=UTC)},
        {"id": 5, "name": None, "done": False, "at": None},
    ]
    try:
        async with db.write() as conn:
            assert isinstance(conn, DirectConnection)
            assert await conn.write_rows(insert, more[:1]) == 4
            await conn.write_rows(insert, more[1:])
            with pytest.raises(IntegrityError):
                await conn.write_rows(insert, more[:1])
        async with db.read() as conn:
            rows = (await conn.execute(_QUERY, {"low": 4})).mappings().all()
    finally:
        await db.close()
    assert [dict(row) for row in rows] == more
