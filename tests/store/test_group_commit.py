"""Group commit on SQLite: concurrent commands share a transaction, each one atomic."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

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


async def test_a_command_failing_on_a_row_of_its_group_raises_once_that_row_is_committed(
    db: Database,
) -> None:
    """Two commands of one group insert the same key: the loser's error reaches it only
    once the winner's row is committed, so the loser can read the row it lost to (as a
    concurrent open of the same direct channel does)."""

    async def open_or_find(name: int) -> tuple[str, list[int]]:
        try:
            await insert(db, 7)
        except IntegrityError:
            return ("found", await rows(db))
        return ("created", [name])

    results = await asyncio.gather(open_or_find(1), open_or_find(2))
    assert sorted(results) == [("created", [1]), ("found", [7])]


async def test_a_command_that_goes_on_after_sqlite_rolled_everything_back_loses_its_group(
    db: Database,
) -> None:
    """When SQLite rolls the whole transaction back under a command that catches the
    error and goes on (as a fail-open audit append does), nothing of the group is
    acknowledged: the commands that had released their savepoints and the one that
    went on fail with Unavailable, and the next command commits normally."""

    async def swallowed() -> None:
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO t VALUES (50)"))
            await conn.exec_driver_sql("ROLLBACK")  # as SQLite does on some I/O errors

    results = await asyncio.gather(insert(db, 1), swallowed(), return_exceptions=True)
    assert all(isinstance(result, Unavailable) for result in results), results
    await insert(db, 2)
    assert await rows(db) == [2]


async def test_closing_with_a_group_pending_leaves_no_command_waiting(db: Database) -> None:
    """Commands running or queued while the database closes each end: committed (and
    then on disk) or failed with Unavailable; none waits forever."""

    async def slow(n: int) -> None:
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            await asyncio.sleep(0.05)

    running = asyncio.create_task(slow(1))
    await asyncio.sleep(0.01)
    closing = asyncio.create_task(db.close())
    await asyncio.sleep(0.01)
    queued = asyncio.create_task(insert(db, 2))
    _, pending = await asyncio.wait({running, closing, queued}, timeout=5)
    assert pending == set()
    committed = {n for n, task in ((1, running), (2, queued)) if task.exception() is None}
    assert all(isinstance(t.exception(), Unavailable) for t in (running, queued) if t.exception())
    assert set(await rows(db)) == committed


async def test_a_group_whose_commit_task_is_cancelled_fails_and_the_next_commits(
    db: Database,
) -> None:
    """If the task that would commit a group is cancelled (the event loop closing), the
    group's commands fail with Unavailable instead of waiting forever, its rows are not
    kept, and the next command starts a fresh transaction."""
    group = db._group
    assert group is not None
    first = asyncio.create_task(insert(db, 1))
    await asyncio.sleep(0)  # the command ran; its group's commit task is pending
    pending = group._committing
    assert pending is not None
    pending.cancel()
    done, _ = await asyncio.wait({first}, timeout=5)
    assert done == {first}
    assert isinstance(first.exception(), Unavailable)
    await insert(db, 2)
    assert await rows(db) == [2]


async def test_a_connection_invalidated_inside_a_command_fails_its_group_cleanly(
    db: Database,
) -> None:
    """A command whose connection SQLAlchemy invalidates (a lost connection) raises its
    own error; the other commands of its group fail with Unavailable rather than hang,
    and the next command opens a fresh connection."""

    async def broken() -> None:
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO t VALUES (7)"))
            conn.sync_connection.invalidate()  # type: ignore[union-attr]
            raise ValueError("the connection was lost")

    results = await asyncio.wait_for(
        asyncio.gather(insert(db, 1), broken(), return_exceptions=True), timeout=5
    )
    assert isinstance(results[0], Unavailable)
    assert isinstance(results[1], ValueError)
    await insert(db, 2)
    assert await rows(db) == [2]
