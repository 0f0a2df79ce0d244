"""WebSocket limits: handshakes, sockets per address, inbound frame rate, typing coalescing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bastion.observe.events import MemorySink
from tests.conftest import Databases, make_settings, start_server
from tests.support.ratelimit import fresh_ip, policy, ratelimit_settings
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User, new_tenant
from tests.support.ws import Socket


@pytest.fixture(scope="module")
def ws_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server with tight WebSocket limits."""
    rl = ratelimit_settings(
        "memory://",
        [policy("ws-connect-ip", "ws-connect", "ip", "4/minute")],
        ws_connections_per_ip=2,
        ws_frames="5/second",
        ws_violations_before_close=3,
        typing_coalesce_seconds=5.0,
    )
    settings = make_settings(tmp_path_factory.mktemp("ws"), databases.new(), ratelimit=rl)
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture
async def client(ws_server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the server."""
    async with httpx.AsyncClient(base_url=ws_server.base_url, timeout=10) as http:
        yield http


@pytest.fixture
def app(ws_server: ServerThread, client: httpx.AsyncClient) -> Tenant:
    """A fresh app."""
    return new_tenant(ws_server, client)


async def _open(server: ServerThread, user: User, ip: str) -> Socket:
    connection = await connect(
        server.ws_url,
        additional_headers={**user.headers, "X-Forwarded-For": ip},
        open_timeout=5,
    )
    sock = Socket(connection)
    sock.ready = await sock.expect("ready")
    return sock


async def _drain(sock: Socket) -> tuple[list[dict[str, Any]], int | None]:
    """Every frame until the server closes the socket, and the close code."""
    frames = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(sock.connection.recv(), 5)))
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd else None


async def test_a_flooding_socket_is_throttled_then_closed_without_affecting_others(
    ws_server: ServerThread, app: Tenant
) -> None:
    sink = MemorySink()
    ws_server.services.events.add_sink(sink)
    alice, bob = await app.user("alice"), await app.user("bob")
    flooder = await _open(ws_server, alice, fresh_ip())
    calm = await _open(ws_server, bob, fresh_ip())
    for i in range(20):
        await flooder.send({"type": "ping", "id": f"p{i}"})
    frames, code = await _drain(flooder)
    assert code == 4008
    pongs = [f for f in frames if f["type"] == "pong"]
    errors = [f for f in frames if f["type"] == "error"]
    assert len(pongs) == 5
    assert len(errors) == 2  # the third refusal closes the socket
    assert errors[0]["data"]["type"] == "/problems/quota-exceeded"
    assert errors[0]["data"]["status"] == 429
    assert errors[0]["data"]["retry_after"] >= 1
    assert errors[0]["id"] == "p5"
    await calm.send({"type": "ping", "id": "still-here"})
    pong = await calm.expect("pong")
    assert pong["id"] == "still-here"
    await calm.connection.close()
    assert [e.details["policy"] for e in sink.of("ratelimit.block")].count("ws-frames") == 1


async def test_sockets_per_address_are_capped_with_4009(
    ws_server: ServerThread, app: Tenant
) -> None:
    ip = fresh_ip()
    users = [await app.user(f"u{i}") for i in range(3)]
    first, second = await _open(ws_server, users[0], ip), await _open(ws_server, users[1], ip)
    async with connect(
        ws_server.ws_url, additional_headers={**users[2].headers, "X-Forwarded-For": ip}
    ) as third:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(third.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4009
    await first.connection.close()
    await asyncio.sleep(0.2)
    replacement = await _open(ws_server, users[2], ip)  # a slot freed up
    await replacement.connection.close()
    await second.connection.close()


async def test_handshakes_over_quota_get_429_with_retry_after(
    ws_server: ServerThread, app: Tenant
) -> None:
    ip = fresh_ip()
    user = await app.user("dave")
    for _ in range(4):
        sock = await _open(ws_server, user, ip)
        await sock.connection.close()
    async with connect(
        ws_server.ws_url, additional_headers={**user.headers, "X-Forwarded-For": ip}
    ) as refused:
        frame = json.loads(await asyncio.wait_for(refused.recv(), 5))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(refused.recv(), 5)
    assert frame["type"] == "error"
    assert frame["data"]["type"] == "/problems/quota-exceeded"
    assert frame["data"]["violated-policies"] == ["ws-connect-ip"]
    assert frame["data"]["retry_after"] >= 1
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4008


async def test_repeated_typing_is_coalesced(ws_server: ServerThread, app: Tenant) -> None:
    alice, bob = await app.user("alice"), await app.user("bob")
    channel = await app.channel(alice, [bob])
    typist = await _open(ws_server, alice, fresh_ip())
    watcher = await _open(ws_server, bob, fresh_ip())
    acks = []
    for i in range(3):
        await typist.send({"type": "typing", "id": f"t{i}", "data": {"channel_id": channel["id"]}})
        acks.append((await typist.expect("ack"))["data"])
    assert acks == [{}, {"coalesced": True}, {"coalesced": True}]
    typing = await watcher.expect("typing")
    assert typing["data"]["state"] == "start"
    assert [f for f in await watcher.silent(0.5) if f["type"] == "typing"] == []
    await typist.send(
        {"type": "typing", "id": "s", "data": {"channel_id": channel["id"], "state": "stop"}}
    )
    assert (await typist.expect("ack"))["data"] == {}
    await typist.connection.close()
    await watcher.connection.close()


async def test_the_frame_quota_follows_a_user_override(
    ws_server: ServerThread, app: Tenant
) -> None:
    alice = await app.user("alice")
    put = await app.http.put(
        f"/v1/users/{alice.id}/rate-limits/ws-frames",
        json={"quotas": ["2/second"]},
        headers=await app.backend_headers(),
    )
    assert put.status_code == 200, put.text
    sock = await _open(ws_server, alice, fresh_ip())
    for i in range(3):
        await sock.send({"type": "ping", "id": f"p{i}"})
    replies = [await sock.next() for _ in range(3)]
    assert [r["type"] for r in replies] == ["pong", "pong", "error"]
    assert replies[2]["data"]["type"] == "/problems/quota-exceeded"
    await sock.connection.close()
