"""``resume`` after a reconnect: every missed event exactly once, in one ``seq`` order with
the live ones."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from bastion.realtime.broker import Event
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User
from tests.support.ws import Socket, socket


def summary(frames: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(seq, type, text or replayed count) of each frame."""
    return [
        (f.get("seq"), f["type"], f["data"].get("text", f["data"].get("replayed"))) for f in frames
    ]


async def last_event_seen(server: ServerThread, tenant: Tenant, alice: User, bob: User) -> str:
    """Bob sees one message live on a socket he then closes; that event's id."""
    async with socket(server.ws_url, bob.token) as bob_ws:
        await tenant.send(alice, (await tenant.channel(alice, [bob]))["id"], "seen")
        seen: str = (await bob_ws.expect("message.new"))["id"]
    return seen


async def test_an_event_delivered_live_before_resume_is_not_replayed(
    server: ServerThread, tenant: Tenant
) -> None:
    """Three missed, one live before the resume frame: the live one once, then the three
    missed ones, then `replayed: 3`; seq runs 1-4 without a repeat."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    async with socket(server.ws_url, bob.token) as bob_ws:
        cid = (await tenant.channel(alice, [bob]))["id"]
        await tenant.send(alice, cid, "seen")
        last_seen = (await bob_ws.expect("message.new"))["id"]
    for i in range(3):
        await tenant.send(alice, cid, f"missed {i}")

    async with socket(server.ws_url, bob.token) as bob_ws:
        await tenant.send(alice, cid, "live")
        live = await bob_ws.expect("message.new")
        await bob_ws.send({"type": "resume", "id": "r", "data": {"after": last_seen}})
        frames = [live, *await bob_ws.silent(0.6)]

    assert summary(frames) == [
        (1, "message.new", "live"),
        (2, "message.new", "missed 0"),
        (3, "message.new", "missed 1"),
        (4, "message.new", "missed 2"),
        (None, "ack", 3),
    ]
    assert frames[-1]["id"] == "r"


async def test_resuming_from_an_event_this_socket_delivered_replays_nothing(
    server: ServerThread, tenant: Tenant
) -> None:
    """A cursor from this very connection: everything after it was delivered live."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    cid = (await tenant.channel(alice, [bob]))["id"]
    async with socket(server.ws_url, bob.token) as bob_ws:
        first = await tenant.send(alice, cid, "one")
        await tenant.send(alice, cid, "two")
        got_first = await bob_ws.expect("message.new")
        assert got_first["data"]["id"] == first["id"]
        await bob_ws.expect("message.new")
        await bob_ws.send({"type": "resume", "id": "r", "data": {"after": got_first["id"]}})
        assert summary(await bob_ws.silent(0.5)) == [(None, "ack", 0)]


class HeldHistory:
    """Holds the server's history read for a resume until released."""

    def __init__(self, recent: Any) -> None:
        self.recent = recent
        self.reading = threading.Event()
        self.released = threading.Event()

    async def __call__(
        self, app_id: str, after: str, until: str | None = None
    ) -> list[Event] | None:
        """The original read, then the wait (in a thread: the server's loop goes on)."""
        found: list[Event] | None = await self.recent(app_id, after, until)
        self.reading.set()
        await asyncio.to_thread(self.released.wait, 10)
        return found


async def test_events_published_during_a_replay_follow_it(
    server: ServerThread, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message sent while the replay is being read waits for the replay and its ack."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    cid = (await tenant.channel(alice, [bob]))["id"]
    async with socket(server.ws_url, bob.token) as bob_ws:
        await tenant.send(alice, cid, "seen")
        last_seen = (await bob_ws.expect("message.new"))["id"]
    await tenant.send(alice, cid, "missed")
    held = HeldHistory(server.services.broker.recent)
    monkeypatch.setattr(server.services.broker, "recent", held)

    async with socket(server.ws_url, bob.token) as bob_ws:
        await bob_ws.send({"type": "resume", "id": "r", "data": {"after": last_seen}})
        assert await asyncio.to_thread(held.reading.wait, 5)
        try:
            await tenant.send(alice, cid, "during the replay")
        finally:
            held.released.set()
        frames = await bob_ws.silent(0.6)

    assert summary(frames) == [
        (1, "message.new", "missed"),
        (None, "ack", 1),
        (2, "message.new", "during the replay"),
    ]


async def _resume(sock: Socket, after: str) -> list[dict[str, Any]]:
    await sock.send({"type": "resume", "id": "r", "data": {"after": after}})
    return await sock.silent(0.5)


async def test_a_resume_never_replays_what_the_user_may_no_longer_read(
    server: ServerThread, tenant: Tenant
) -> None:
    """Events missed in a channel Bob was removed from meanwhile are not replayed."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    last_seen = await last_event_seen(server, tenant, alice, bob)
    cid = (await tenant.channel(alice, [bob]))["id"]
    await tenant.send(alice, cid, "before removal")
    removed = await tenant.http.delete(
        f"/v1/channels/{cid}/members/{bob.id}", headers=alice.headers
    )
    assert removed.status_code == 204
    async with socket(server.ws_url, bob.token) as bob_ws:
        frames = await _resume(bob_ws, last_seen)
    texts = [f["data"].get("text") for f in frames if f["type"] == "message.new"]
    assert texts == []
    assert frames[-1]["type"] == "ack"
