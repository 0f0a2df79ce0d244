"""How and why the server closes a socket: heartbeats, failures, revocation; each with a
documented close code and reason."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from websockets.asyncio.client import connect

from bastion.store.db import create_engine
from tests.conftest import Databases, make_settings, start_server
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, new_tenant
from tests.support.ws import closed, socket


async def test_a_silent_client_is_closed_1008_between_two_and_three_heartbeats(
    server: ServerThread, tenant: Tenant
) -> None:
    """No frame at all from the client: pings every heartbeat, then 1008 `heartbeat timeout`
    once it has been silent for more than two heartbeats (checked at each heartbeat)."""
    bob = await tenant.user("bob")
    heartbeat = server.settings.realtime.heartbeat_seconds
    async with socket(server.ws_url, bob.token) as sock:
        started = time.monotonic()
        code, reason, frames = await closed(sock.connection, within=3 * heartbeat + 2)
        silent_for = time.monotonic() - started
    assert (code, reason) == (1008, "heartbeat timeout")
    assert frames
    assert all(frame == {"type": "ping"} for frame in frames)
    assert 2 * heartbeat - 0.5 <= silent_for <= 3 * heartbeat + 1


async def test_protocol_pings_keep_a_client_alive(server: ServerThread, tenant: Tenant) -> None:
    """A client that sends only WebSocket protocol pings (as native clients' keep-alives
    do) is heard from: it stays open well past three heartbeats."""
    bob = await tenant.user("bob")
    heartbeat = server.settings.realtime.heartbeat_seconds
    async with socket(server.ws_url, bob.token) as sock:
        deadline = time.monotonic() + 3 * heartbeat + 1
        while time.monotonic() < deadline:
            pong = await sock.connection.ping()
            await asyncio.wait_for(pong, 2)
            await asyncio.sleep(heartbeat / 4)
        await sock.send({"type": "ping", "id": "alive"})
        assert (await sock.expect("pong"))["id"] == "alive"


async def test_revoking_the_token_closes_4001_token_revoked(
    server: ServerThread, tenant: Tenant
) -> None:
    """A revoked token (not a deactivated user) closes its socket with `token revoked`."""
    alice = await tenant.user("alice")
    async with socket(server.ws_url, alice.token) as sock:
        claims = _claims(alice.token)

        async def revoke() -> None:
            server.services.tokens.revocations.revoke_token(claims["jti"], claims["exp"])

        server.run(revoke())
        code, reason, _ = await closed(sock.connection, within=3.0)
    assert (code, reason) == (4001, "token revoked")


async def test_deactivation_closes_4001_user_deactivated(
    server: ServerThread, tenant: Tenant
) -> None:
    """Each of a deactivated user's sockets closes with the documented reason."""
    bob = await tenant.user("bob")
    async with (
        socket(server.ws_url, bob.token) as phone,
        socket(server.ws_url, bob.token) as laptop,
    ):
        deactivated = await tenant.http.post(
            f"/v1/users/{bob.id}/deactivation", headers=await tenant.backend_headers()
        )
        assert deactivated.status_code == 200, deactivated.text
        for sock in (phone, laptop):
            code, reason, _ = await closed(sock.connection)
            assert (code, reason) == (4001, "user deactivated")


def _claims(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


# --- a server whose database fails a query ---------------------------------------------------


@pytest.fixture(scope="module")
def failing_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server of its own: its tests break its database."""
    settings = make_settings(tmp_path_factory.mktemp("failing"), databases.new())
    running = start_server(settings)
    yield running
    running.stop()


async def _execute(url: str, statement: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def test_a_failing_query_at_connect_closes_1011(failing_server: ServerThread) -> None:
    """The ACL table is gone, so reading the user's channels fails: the socket is closed
    with 1011 `server error` (not dropped without a close frame), and no `ready` is sent."""
    url = failing_server.settings.database_url
    async with httpx.AsyncClient(base_url=failing_server.base_url, timeout=10) as http:
        tenant = new_tenant(failing_server, http)
        bob = await tenant.user("bob")
        await tenant.channel(bob, [])
        await _execute(url, "ALTER TABLE acl_entries RENAME TO acl_entries_away")
        try:
            async with connect(
                failing_server.ws_url,
                additional_headers={"Authorization": f"Bearer {bob.token}"},
                open_timeout=5,
            ) as connection:
                code, reason, frames = await closed(connection)
        finally:
            await _execute(url, "ALTER TABLE acl_entries_away RENAME TO acl_entries")
    assert (code, reason) == (1011, "server error")
    assert frames == []
