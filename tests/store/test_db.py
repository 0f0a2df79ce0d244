"""Engine set-up: SQLite's journal mode, and its statements run on the event loop."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import engine as asyncio_engine

from bastion.app import database
from bastion.core.settings import Settings


async def test_the_default_sqlite_database_is_in_wal_mode(tmp_path: Path) -> None:
    """With no database URL configured, the database file under data_dir journals to a WAL
    (readers never wait for the writer)."""
    settings = Settings(server={"data_dir": tmp_path})
    assert settings.database_url.endswith(f"{tmp_path}/bastion.db")
    db = database(settings)
    try:
        async with db.read() as read:
            read_mode = (await read.execute(text("PRAGMA journal_mode"))).scalar_one()
        async with db.write() as write:
            write_mode = (await write.execute(text("PRAGMA journal_mode"))).scalar_one()
    finally:
        await db.close()
    assert (read_mode, write_mode) == ("wal", "wal")
    assert (tmp_path / "bastion.db").exists()


async def test_sqlite_statements_run_without_the_greenlet_bridge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a SQLite file, a transaction's statements, savepoint and commit run directly on
    the event loop: nothing goes through SQLAlchemy's greenlet hand-off."""
    db = database(Settings(server={"data_dir": tmp_path}))

    def bridged(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a statement went through the greenlet bridge")

    try:
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))
        monkeypatch.setattr(asyncio_engine, "greenlet_spawn", bridged)
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            with contextlib.suppress(ValueError):
                async with conn.begin_nested():
                    await conn.execute(text("INSERT INTO t VALUES (2)"))
                    raise ValueError("roll the savepoint back")
        async with db.read() as conn:
            rows = (await conn.execute(text("SELECT n FROM t"))).scalars().all()
    finally:
        monkeypatch.undo()
        await db.close()
    assert rows == [1]
