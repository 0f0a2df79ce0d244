"""Timed bans and mutes that end with no one acting: the live connections hear of it, and
a member whose ban ended receives the channel again without reconnecting."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import Databases, make_settings, start_server
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User, new_tenant
from tests.support.ws import Socket, socket

CHECK_SECONDS = 0.25
TIMED_SECONDS = 1.0
# Long enough for the role to end and for two checks after it, with room to spare.
WAIT = TIMED_SECONDS + 2 * CHECK_SECONDS + 3


@pytest.fixture(scope="module")
def server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server that looks for ended timed roles four times a second."""
    settings = make_settings(
        tmp_path_factory.mktemp("data"),
        databases.new(),
        realtime={"timed_role_check_seconds": CHECK_SECONDS},
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture
async def tenant(server: ServerThread) -> AsyncIterator[Tenant]:
    """A fresh app on this module's server."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        yield new_tenant(server, http)


async def _timed(tenant: Tenant, owner: User, channel_id: str, path: str) -> None:
    ends = datetime.now(UTC) + timedelta(seconds=TIMED_SECONDS)
    response = await tenant.http.put(
        f"/v1/channels/{channel_id}/{path}",
        json={"expires_at": ends.isoformat()},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text


async def _messages(sock: Socket, seconds: float = 0.5) -> list[str]:
    return [f["data"]["text"] for f in await sock.silent(seconds) if f["type"] == "message.new"]


async def test_a_timed_ban_that_ends_brings_the_channel_back_live(
    server: ServerThread, tenant: Tenant
) -> None:
    """When a ban's expires_at passes, the banned member's socket gets member.updated
    with the role that came back, then the channel's messages again, without
    reconnecting; the channel's other members hear of it too. What was sent during the
    ban is not delivered live."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    cid = (await tenant.channel(alice, [bob]))["id"]
    async with (
        socket(server.ws_url, alice.token) as alice_ws,
        socket(server.ws_url, bob.token) as bob_ws,
    ):
        await _timed(tenant, alice, cid, f"bans/{bob.id}")
        assert (await bob_ws.expect("member.updated"))["data"]["role"] == "banned"
        await tenant.send(alice, cid, "during the ban")
        ended = await bob_ws.expect("member.updated", wait=WAIT)
        assert ended["data"]["role"] == "member"
        assert ended["data"]["role_expires_at"] is None
        seen = [await alice_ws.expect("member.updated") for _ in range(2)]
        assert [f["data"]["role"] for f in seen] == ["banned", "member"]
        await tenant.send(alice, cid, "after the ban")
        assert await _messages(bob_ws) == ["after the ban"]


async def test_an_ended_mute_and_a_ban_ended_under_a_read_deny_are_announced_only(
    server: ServerThread, tenant: Tenant
) -> None:
    """A mute that ends is announced to the channel (the member kept receiving it); a ban
    that ends while an ACL entry denies the member reading is announced to them, but
    brings no channel events back."""
    alice, bob, carol = [await tenant.user(n) for n in ("alice", "bob", "carol")]
    cid = (await tenant.channel(alice, [bob, carol]))["id"]
    denied = await tenant.http.put(
        f"/v1/channels/{cid}/acl",
        json={"entries": [{"subject": f"user:{carol.id}", "level": "read", "effect": "deny"}]},
        headers=alice.headers,
    )
    assert denied.status_code == 200, denied.text
    async with (
        socket(server.ws_url, bob.token) as bob_ws,
        socket(server.ws_url, carol.token) as carol_ws,
    ):
        await _timed(tenant, alice, cid, f"mutes/{bob.id}")
        await _timed(tenant, alice, cid, f"bans/{carol.id}")
        muted = await bob_ws.expect("member.updated")
        assert (muted["data"]["user_id"], muted["data"]["role"]) == (bob.id, "read-only")
        ended = await bob_ws.expect("member.updated", wait=WAIT)
        while ended["data"]["user_id"] != bob.id:  # carol's ban and its end are not his
            ended = await bob_ws.expect("member.updated", wait=WAIT)
        assert ended["data"]["role"] == "member"
        unbanned = await carol_ws.expect("member.updated", wait=WAIT)
        while unbanned["data"]["role"] != "member":
            unbanned = await carol_ws.expect("member.updated", wait=WAIT)
        assert unbanned["data"]["user_id"] == carol.id
        await tenant.send(alice, cid, "carol may still not read this")
        assert await _messages(bob_ws) == ["carol may still not read this"]
        assert await _messages(carol_ws, 0.2) == []
