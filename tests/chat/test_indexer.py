"""Search over terms still waiting for the indexer: found at once, exactly once, never lost.

The quiet server here files pending terms only at start-up (a minute after a send, an
hour between idle sweeps), so each test decides when the indexer runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bastion.chat.indexer import SearchIndexer
from tests.conftest import Databases, make_settings, start_server
from tests.support.raw import sql
from tests.support.server import ServerThread
from tests.support.tenants import User, new_tenant

_IDLE = {"encryption": {"index_interval_seconds": 60, "index_idle_seconds": 3600}}


@pytest.fixture(scope="module")
def quiet_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server whose indexer runs at start-up only."""
    running = start_server(make_settings(tmp_path_factory.mktemp("data"), databases.new(), **_IDLE))
    yield running
    running.stop()


@pytest.fixture
async def client(quiet_server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the quiet server."""
    async with httpx.AsyncClient(base_url=quiet_server.base_url, timeout=10) as http:
        yield http


def _drain(server: ServerThread) -> int:
    return server.run(SearchIndexer(server.services.db, batch=3).drain())


def _filed(server: ServerThread, message_id: str) -> int:
    return int(
        sql(server, "SELECT count(*) FROM message_terms WHERE message_id = :m", m=message_id)[0][0]
    )


def _pending(server: ServerThread, message_id: str) -> bool:
    rows = sql(server, "SELECT pending_terms FROM messages WHERE id = :m", m=message_id)
    return rows[0][0] is not None


async def _search(http: httpx.AsyncClient, user: User, query: str) -> list[str]:
    response = await http.get(
        "/v1/search/messages", params={"q": query, "limit": 50}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["data"]]


async def _edit(http: httpx.AsyncClient, user: User, message_id: str, text: str) -> None:
    version = (await http.get(f"/v1/messages/{message_id}", headers=user.headers)).json()["version"]
    response = await http.patch(
        f"/v1/messages/{message_id}",
        json={"text": text},
        headers={**user.headers, "If-Match": f'"{version}"'},
    )
    assert response.status_code == 200, response.text


async def test_a_message_is_found_before_and_after_it_is_filed(
    quiet_server: ServerThread, client: httpx.AsyncClient
) -> None:
    """Found as soon as the send returns (terms pending), then once after the indexer ran."""
    tenant = new_tenant(quiet_server, client)
    alice = await tenant.user("alice")
    channel = str((await tenant.channel(alice, [], name="c"))["id"])
    sent = str((await tenant.send(alice, channel, "orchid harbour lantern"))["id"])
    assert _pending(quiet_server, sent)
    assert _filed(quiet_server, sent) == 0
    assert await _search(client, alice, "harbour orchid") == [sent]
    assert await _search(client, alice, "orchid meadow") == []
    assert _drain(quiet_server) >= 1
    assert not _pending(quiet_server, sent)
    assert _filed(quiet_server, sent) == 3
    assert await _search(client, alice, "harbour orchid") == [sent]
    assert _drain(quiet_server) == 0


async def test_edits_and_deletes_replace_pending_and_filed_terms(
    quiet_server: ServerThread, client: httpx.AsyncClient
) -> None:
    """The old words stop matching whether they were pending or filed; a delete matches nothing."""
    tenant = new_tenant(quiet_server, client)
    alice = await tenant.user("alice")
    channel = str((await tenant.channel(alice, [], name="c"))["id"])
    message = str((await tenant.send(alice, channel, "walnut copper"))["id"])
    await _edit(client, alice, message, "saffron copper")
    assert await _search(client, alice, "walnut") == []
    assert await _search(client, alice, "saffron") == [message]
    _drain(quiet_server)
    await _edit(client, alice, message, "juniper")
    assert _filed(quiet_server, message) == 0
    assert await _search(client, alice, "saffron") == []
    assert await _search(client, alice, "juniper") == [message]
    doomed = str((await tenant.send(alice, channel, "juniper pending"))["id"])
    deleted = await client.delete(f"/v1/messages/{doomed}", headers=alice.headers)
    assert deleted.status_code == 204
    assert not _pending(quiet_server, doomed)
    _drain(quiet_server)
    assert await _search(client, alice, "juniper") == [message]


async def _send_one(server: ServerThread, text: str) -> str:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        tenant = new_tenant(server, http)
        alice = await tenant.user("alice")
        channel = str((await tenant.channel(alice, [], name="c"))["id"])
        return str((await tenant.send(alice, channel, text))["id"])


def test_pending_terms_are_filed_after_a_restart(databases: Databases, tmp_path: Path) -> None:
    """Terms left pending when a server stops are filed by the next one as it starts."""
    settings = make_settings(tmp_path, databases.new(), **_IDLE)
    first = start_server(settings)
    try:
        message = asyncio.run(_send_one(first, "pelican quartz"))
        assert _pending(first, message)
    finally:
        first.stop()
    second = start_server(settings)
    try:
        # The start-up drain runs beside the first requests: wait for it, within reason.
        deadline = time.monotonic() + 10
        while _pending(second, message) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _pending(second, message)
        assert _filed(second, message) == 2
    finally:
        second.stop()


def test_a_send_wakes_the_indexer(databases: Databases, tmp_path: Path) -> None:
    """With idle sweeps an hour apart, a send's terms are still filed within moments."""
    encryption = {"index_interval_seconds": 0.05, "index_idle_seconds": 3600}
    server = start_server(make_settings(tmp_path, databases.new(), encryption=encryption))
    try:
        message = asyncio.run(_send_one(server, "heron basalt"))
        deadline = time.monotonic() + 10
        while _pending(server, message) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _pending(server, message)
        assert _filed(server, message) == 2
    finally:
        server.stop()
