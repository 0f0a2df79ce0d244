"""The audit repository extends the chain only from where it really ends."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.security.audit import records
from bastion.store import migrate
from bastion.store.db import create_engine
from bastion.store.repos import audit as repo
from bastion.store.tables import audit_log
from tests.conftest import Databases


@pytest.fixture
async def engine(databases: Databases) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty database."""
    engine = create_engine(databases.new())
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


def _rows(count: int, head: tuple[int, str]) -> list[dict[str, Any]]:
    rows = [
        {
            "at": "2026-11-28T20:00:00.000000Z",
            "action": "auth.login",
            "outcome": "failure",
            "node": "n1",
            "event_seq": i,
            "app_id": None,
            "subject": f"usr_{i}",
            "client_id": None,
            "roles": "[]",
            "ip": None,
            "user_agent": None,
            "request_id": None,
            "resource": None,
            "reason": None,
            "details": "{}",
        }
        for i in range(count)
    ]
    return records.chain(rows, head)


async def test_the_head_starts_at_genesis_and_follows_each_append(engine: AsyncEngine) -> None:
    """An empty log's head is (0, genesis); a batch moves it to the batch's last record."""
    async with engine.begin() as conn:
        start = await repo.lock_head(conn)
        assert start == (0, records.GENESIS)
        rows = _rows(3, start)
        assert await repo.extend_chain(conn, rows, start)
        assert await repo.lock_head(conn) == (3, rows[-1]["hash"])
        assert await repo.chain_head(conn) == (3, rows[-1]["hash"])


async def test_an_append_onto_a_stale_head_writes_nothing(engine: AsyncEngine) -> None:
    """Records chained onto an end that has moved on are refused, and the log is unchanged."""
    async with engine.begin() as conn:
        genesis = await repo.lock_head(conn)
        assert await repo.extend_chain(conn, _rows(2, genesis), genesis)
    async with engine.begin() as conn:
        assert not await repo.extend_chain(conn, _rows(1, genesis), genesis)
        assert await repo.count(conn) == 2
        head = await repo.lock_head(conn)
        assert head[0] == 2
        assert await repo.extend_chain(conn, _rows(1, head), head)
        assert await repo.count(conn) == 3


async def test_a_locked_head_holds_off_another_processes_append(databases: Databases) -> None:
    """Two engines on one database, the second in a thread of its own as another process
    would be: while one holds the head, the other's append waits, then chains onto the
    new end instead of colliding with it."""
    url = databases.new()
    first = create_engine(url)
    await migrate.upgrade(first)

    async def other_process() -> bool:
        second = create_engine(url)
        try:
            async with second.begin() as conn:
                head = await repo.lock_head(conn)
                return await repo.extend_chain(conn, _rows(1, head), head)
        finally:
            await second.dispose()

    try:
        async with first.begin() as conn:
            head = await repo.lock_head(conn)
            racing = asyncio.ensure_future(asyncio.to_thread(asyncio.run, other_process()))
            await asyncio.sleep(0.3)
            assert not racing.done()
            assert await repo.extend_chain(conn, _rows(2, head), head)
        assert await asyncio.wait_for(racing, timeout=10)
        async with first.begin() as conn:
            assert await repo.count(conn) == 3
            assert (await repo.lock_head(conn))[0] == 3
    finally:
        await first.dispose()


def test_the_postgresql_statement_names_the_columns_in_insert_order() -> None:
    """The one-round-trip statement is a constant: its three column lists and its array
    casts must follow the table's insert order, which the arrays are built in."""
    columns = ", ".join(repo._COLUMNS)
    statement = repo._PG_EXTEND
    for around in (
        r"INSERT INTO audit_log \((.*?)\)",
        r"SELECT (.*?) FROM unnest",
        r"batch\((.*?)\)",
    ):
        found = re.search(around, statement)
        assert found is not None
        assert found.group(1) == columns
    casts = re.findall(r"\$(\d+)::(\w+)\[\]", statement)
    assert [int(n) for n, _ in casts] == list(range(5, 5 + len(repo._COLUMNS)))
    integers = {c for c in repo._COLUMNS if audit_log.c[c].type.python_type is int}
    assert {c for c, (_, kind) in zip(repo._COLUMNS, casts, strict=True) if kind == "bigint"} == (
        integers
    )
