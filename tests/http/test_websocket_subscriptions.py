"""Which channels a live socket receives: membership and read access, kept right while
they change, including while the socket is connecting."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest

from bastion.security.principal import Principal
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User
from tests.support.ws import Socket, socket

ChannelRead = Callable[[Principal], Awaitable[set[str]]]


class HeldRead:
    """Holds one user's channel read on the server, after it ran, until released: what
    the server does meanwhile happens between the read and the rest of the connect."""

    def __init__(self, read: ChannelRead, user_id: str) -> None:
        self.read = read
        self.user_id = user_id
        self.done = threading.Event()
        self.released = threading.Event()

    async def __call__(self, caller: Principal) -> set[str]:
        """The original read, then the wait (in a thread: the server's loop goes on)."""
        result = await self.read(caller)
        if caller.subject == self.user_id:
            self.done.set()
            await asyncio.to_thread(self.released.wait, 10)
        return result


@asynccontextmanager
async def connecting_while(
    server: ServerThread,
    monkeypatch: pytest.MonkeyPatch,
    user: User,
    change: Callable[[], Awaitable[None]],
) -> AsyncIterator[Socket]:
    """Open ``user``'s socket, running ``change`` after the server has read the user's
    channels and before the connect goes on; yields the socket once ready."""
    channels = server.services.chat.channels
    held = HeldRead(channels.ids_of_caller, user.id)
    monkeypatch.setattr(channels, "ids_of_caller", held)
    async with AsyncExitStack() as stack:
        opening = asyncio.create_task(stack.enter_async_context(socket(server.ws_url, user.token)))
        assert await asyncio.to_thread(held.done.wait, 5), "the socket never read its channels"
        try:
            await change()
        finally:
            held.released.set()
        yield await opening


async def messages(sock: Socket, seconds: float = 0.5) -> list[Any]:
    """The texts of the message.new frames received within ``seconds``."""
    return [f["data"]["text"] for f in await sock.silent(seconds) if f["type"] == "message.new"]


async def received(sock: Socket, seconds: float = 0.5) -> list[tuple[str, Any]]:
    """Each frame received within ``seconds`` as (type, data)."""
    return [(f["type"], f["data"]) for f in await sock.silent(seconds)]


# --- connecting while membership changes -----------------------------------------------------


async def test_a_member_removed_while_connecting_receives_nothing_more(
    server: ServerThread, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Removed between the server's read of her channels and the rest of the connect:
    she gets member.removed and then nothing of the channel, as GET answers 404."""
    alice, ivy = await tenant.user("alice"), await tenant.user("ivy")
    cid = (await tenant.channel(alice, [ivy]))["id"]

    async def remove() -> None:
        removed = await tenant.http.delete(
            f"/v1/channels/{cid}/members/{ivy.id}", headers=alice.headers
        )
        assert removed.status_code == 204, removed.text

    async with connecting_while(server, monkeypatch, ivy, remove) as ivy_ws:
        await tenant.send(alice, cid, "after removal")
        frames = await received(ivy_ws)
    assert frames == [("member.removed", {"channel_id": cid, "user_id": ivy.id})]
    fetched = await tenant.http.get(f"/v1/channels/{cid}", headers=ivy.headers)
    assert fetched.status_code == 404


async def test_a_user_added_while_connecting_receives_the_channel_at_once(
    server: ServerThread, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Added between the read and the rest of the connect: no reconnect is needed."""
    alice, ivy = await tenant.user("alice"), await tenant.user("ivy")
    cid = (await tenant.channel(alice, []))["id"]

    async def add() -> None:
        added = await tenant.http.post(
            f"/v1/channels/{cid}/members", json={"user_id": ivy.id}, headers=alice.headers
        )
        assert added.status_code == 201, added.text

    async with connecting_while(server, monkeypatch, ivy, add) as ivy_ws:
        await tenant.send(alice, cid, "welcome")
        frames = await ivy_ws.silent(0.5)
    assert [f["type"] for f in frames] == ["member.added", "message.new"]
    assert frames[0]["data"]["user_id"] == ivy.id
    assert frames[1]["data"]["text"] == "welcome"


async def test_messages_sent_while_connecting_are_not_lost(
    server: ServerThread, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message published between the read and the rest of the connect arrives after
    ready, like any later one."""
    alice, ivy = await tenant.user("alice"), await tenant.user("ivy")
    cid = (await tenant.channel(alice, [ivy]))["id"]

    async def send() -> None:
        await tenant.send(alice, cid, "while connecting")

    async with connecting_while(server, monkeypatch, ivy, send) as ivy_ws:
        await tenant.send(alice, cid, "after ready")
        assert await messages(ivy_ws) == ["while connecting", "after ready"]
