"""Pending search terms on PostgreSQL: two indexers at once file every message exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from bastion.chat.indexer import SearchIndexer
from bastion.store.db import Database, create_engine
from tests.conftest import Databases, make_settings, start_server
from tests.support.raw import sql
from tests.support.server import ServerThread
from tests.support.tenants import new_tenant

MESSAGES = 40


async def _send(server: ServerThread) -> list[str]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        tenant = new_tenant(server, http)
        alice = await tenant.user("alice")
        channel = str((await tenant.channel(alice, [], name="c"))["id"])
        return [
            str((await tenant.send(alice, channel, f"shared words number{i}"))["id"])
            for i in range(MESSAGES)
        ]


async def _race(server: ServerThread) -> list[int]:
    """Two indexers, each with its own engine (as two nodes would), drained at once."""
    other = Database(create_engine(server.settings.database_url), cipher=server.services.db.cipher)
    try:
        return list(
            await asyncio.gather(
                SearchIndexer(server.services.db, batch=3).drain(),
                SearchIndexer(other, batch=3).drain(),
            )
        )
    finally:
        await other.close()


def test_two_indexers_neither_repeat_nor_lose_messages(
    databases: Databases, tmp_path: Path
) -> None:
    """Rows one indexer has locked are skipped by the other; together they file all."""
    if databases.backend != "postgresql":
        pytest.skip("several nodes share one database on PostgreSQL only")
    settings = make_settings(tmp_path, databases.new(), encryption={"index_interval_seconds": 60})
    server = start_server(settings)
    try:
        sent = asyncio.run(_send(server))
        filed = server.run(_race(server))
        assert sum(filed) == MESSAGES
        assert all(count > 0 for count in filed)
        pending = sql(server, "SELECT count(*) FROM messages WHERE pending_terms IS NOT NULL")
        assert pending == [(0,)]
        terms = sql(
            server,
            "SELECT message_id, count(*) FROM message_terms GROUP BY message_id",
        )
        assert dict(terms) == dict.fromkeys(sent, 3)
    finally:
        server.stop()
