"""Group commit on SQLite: concurrent commands share a transaction, each one atomic."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from bastion.app import database
from bastion.core.errors import Unavailable
from bastion.core.settings import Settings
from bastion.store.db import Database
from bastion.store.sqlite_inline import sync_engine_of


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A SQLite file with a table ``t`` and a child table whose key is checked at commit."""
    db = database(Settings(server={"data_dir": tmp_path}))
    async with db.write() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
        await conn.execute(
            text("CREATE TABLE child (n INTEGER REFERENCES t (n) DEFERRABLE INITIALLY DEFERRED)")
        )
    yield db
    await db.close()


def commits_of(db: Database) -> list[str]:
    """The COMMIT statements SQLite runs on connections checked out from now on."""
    seen: list[str] = []

    def trace(dbapi: sqlite3.Connection, _record: Any, _proxy: Any) -> None:
        dbapi.set_trace_callback(
            lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None
        )

    event.listen(sync_engine_of(db.engine), "checkout", trace)
    return seen


async def insert(db: Database, n: int, *, fail: bool = False) -> None:
    """One command: insert ``n``; with ``fail``, insert it and then fail."""
    async with db.write() as conn:
        await conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
        if fail:
            raise ValueError(f"command {n} fails")


async def rows(db: Database, table: str = "t") -> list[int]:
    """What another connection sees in ``table``."""
    async with db.read() as conn:
        return list((await conn.execute(text(f"SELECT n FROM {table} ORDER BY n"))).scalars())  # noqa: S608 - fixed names


async def test_commands_arriving_together_commit_in_one_transaction(db: Database) -> None:
    """Twenty commands started in the same turn of the event loop are committed by fewer
    COMMITs than commands, and every one of them is there."""
    commits = commits_of(db)
    await db.close()  # the next command checks the writer out again, traced
    await asyncio.gather(*(insert(db, n) for n in range(20)))
    assert await rows(db) == list(range(20))
    assert 1 <= len(commits) < 20


async def test_a_write_returns_only_once_it_is_committed(db: Database) -> None:
    """When ``write()`` returns, every other connection sees the command's rows."""
    for n in range(5):
        await insert(db, n)
        assert await rows(db) == list(range(n + 1))


async def test_a_failing_command_rolls_back_alone(db: Database) -> None:
    """In a group, the command that fails leaves nothing behind; the others commit."""
    results = await asyncio.gather(
        insert(db, 1), insert(db, 2, fail=True), insert(db, 3), return_exceptions=True
    )
    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], ValueError)
    assert await rows(db) == [1, 3]


async def test_a_failed_commit_fails_every_command_of_its_group(db: Database) -> None:
    """A commit SQLite refuses (here a deferred foreign key) fails all the commands that
    shared it with ``Unavailable``, and none of them wrote anything; the next command
    commits normally."""

    async def orphan() -> None:
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO child VALUES (99)"))

    results = await asyncio.gather(insert(db, 1), orphan(), insert(db, 2), return_exceptions=True)
    assert all(isinstance(result, Unavailable) for result in results), results
    assert await rows(db) == []
    assert await rows(db, "child") == []
    await insert(db, 3)
    assert await rows(db) == [3]


async def test_a_transaction_sqlite_rolled_back_fails_its_group(db: Database) -> None:
    """A command that fails after SQLite rolled the whole transaction back takes the
    group's other commands with it (``Unavailable``), not just its own savepoint."""

    async def lost() -> None:
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO t VALUES (50)"))
            await conn.exec_driver_sql("ROLLBACK")  # what SQLite does on some I/O errors
            raise ValueError("the transaction is gone")

    results = await asyncio.gather(insert(db, 1), lost(), insert(db, 2), return_exceptions=True)
    assert isinstance(results[0], Unavailable)
    assert isinstance(results[1], ValueError)
    await insert(db, 3)
    rest = await rows(db)
    assert 3 in rest
    assert not {1, 50} & set(rest)


async def test_a_cancelled_command_does_not_disturb_its_group(db: Database) -> None:
    """A command cancelled while it waits for the commit does not fail the others."""
    first = asyncio.create_task(insert(db, 1))
    second = asyncio.create_task(insert(db, 2))
    await asyncio.sleep(0)  # both have run their savepoints and wait for the commit
    first.cancel()
    await asyncio.gather(first, second, return_exceptions=True)
    assert second.exception() is None
    assert 2 in await rows(db)
