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
from tests.support.roles import user_with_roles
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


# --- ACL read denies -------------------------------------------------------------------------


async def put_acl(tenant: Tenant, owner: User, cid: str, *entries: dict[str, str]) -> None:
    """Replace the channel's ACL as its owner."""
    saved = await tenant.http.put(
        f"/v1/channels/{cid}/acl", json={"entries": list(entries)}, headers=owner.headers
    )
    assert saved.status_code == 200, saved.text


def deny_read(subject: str) -> dict[str, str]:
    """An ACL entry taking ``read`` (and everything above it) from ``subject``."""
    return {"subject": subject, "level": "read", "effect": "deny"}


async def test_an_acl_read_deny_stops_live_delivery_at_once_and_after_reconnecting(
    server: ServerThread, tenant: Tenant
) -> None:
    """Bob, denied read, gets access.updated (read false) and no more messages, live or
    after reconnecting, while REST refuses him; lifting the deny brings them back live."""
    alice, bob, carol = [await tenant.user(n) for n in ("alice", "bob", "carol")]
    cid = (await tenant.channel(alice, [bob, carol]))["id"]
    async with (
        socket(server.ws_url, bob.token) as bob_ws,
        socket(server.ws_url, carol.token) as carol_ws,
    ):
        await put_acl(tenant, alice, cid, deny_read(f"user:{bob.id}"))
        sent = await tenant.send(alice, cid, "not for bob")
        assert await received(bob_ws) == [("access.updated", {"channel_id": cid, "read": False})]
        assert await messages(carol_ws, 0.2) == ["not for bob"]
        rest = await tenant.http.get(f"/v1/messages/{sent['id']}", headers=bob.headers)
        assert rest.status_code == 403

    async with socket(server.ws_url, bob.token) as bob_ws:
        await tenant.send(alice, cid, "still not for bob")
        assert await messages(bob_ws) == []
        await put_acl(tenant, alice, cid)
        await tenant.send(alice, cid, "for bob again")
        frames = await received(bob_ws)
    assert [kind for kind, _ in frames] == ["access.updated", "message.new"]
    assert frames[0][1] == {"channel_id": cid, "read": True}
    assert frames[1][1]["text"] == "for bob again"


async def test_denies_of_write_or_for_others_change_nothing_live(
    server: ServerThread, tenant: Tenant
) -> None:
    """Only a deny of read matching the user stops delivery; carol's socket hears of
    nobody else's access."""
    alice, bob, carol = [await tenant.user(n) for n in ("alice", "bob", "carol")]
    cid = (await tenant.channel(alice, [bob, carol]))["id"]
    async with socket(server.ws_url, carol.token) as carol_ws:
        await put_acl(
            tenant,
            alice,
            cid,
            {"subject": f"user:{carol.id}", "level": "write", "effect": "deny"},
            deny_read(f"user:{bob.id}"),
        )
        await tenant.send(alice, cid, "carol still reads")
        frames = await carol_ws.silent(0.5)
    assert [f["type"] for f in frames] == ["message.new"]


async def test_a_role_deny_follows_role_assignments_live(
    server: ServerThread, tenant: Tenant
) -> None:
    """With read denied to role:moderator, Bob's socket stops when he is made moderator
    and resumes when the role is taken away, without reconnecting."""
    admin = await user_with_roles(tenant, "root", "admin")
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    cid = (await tenant.channel(alice, [bob]))["id"]
    await put_acl(tenant, alice, cid, deny_read("role:moderator"))
    roles_url = f"/v1/admin/roles/{bob.id}"
    async with socket(server.ws_url, bob.token) as bob_ws:
        await tenant.send(alice, cid, "bob reads")
        assert await messages(bob_ws, 0.3) == ["bob reads"]

        made = await tenant.http.put(
            roles_url, json={"roles": ["member", "moderator"]}, headers=admin.headers
        )
        assert made.status_code == 200, made.text
        await tenant.send(alice, cid, "not for moderators")
        assert await received(bob_ws) == [("access.updated", {"channel_id": cid, "read": False})]

        unmade = await tenant.http.put(roles_url, json={"roles": ["member"]}, headers=admin.headers)
        assert unmade.status_code == 200, unmade.text
        await tenant.send(alice, cid, "bob reads again")
        frames = await received(bob_ws)
    assert [kind for kind, _ in frames] == ["access.updated", "message.new"]
    assert frames[0][1] == {"channel_id": cid, "read": True}
    assert frames[1][1]["text"] == "bob reads again"


async def test_a_member_added_or_unbanned_under_a_read_deny_is_not_subscribed(
    server: ServerThread, tenant: Tenant
) -> None:
    """Joining (or returning from a ban) does not get around a standing deny of read."""
    alice, bob, erin = [await tenant.user(n) for n in ("alice", "bob", "erin")]
    cid = (await tenant.channel(alice, [bob]))["id"]
    await put_acl(tenant, alice, cid, deny_read(f"user:{erin.id}"), deny_read(f"user:{bob.id}"))
    banned = await tenant.http.put(
        f"/v1/channels/{cid}/bans/{bob.id}", json={}, headers=alice.headers
    )
    assert banned.status_code == 200, banned.text
    async with (
        socket(server.ws_url, bob.token) as bob_ws,
        socket(server.ws_url, erin.token) as erin_ws,
    ):
        added = await tenant.http.post(
            f"/v1/channels/{cid}/members", json={"user_id": erin.id}, headers=alice.headers
        )
        assert added.status_code == 201, added.text
        unbanned = await tenant.http.delete(
            f"/v1/channels/{cid}/bans/{bob.id}", headers=alice.headers
        )
        assert unbanned.status_code == 204, unbanned.text
        assert (await erin_ws.expect("member.added"))["data"]["user_id"] == erin.id
        assert (await bob_ws.expect("member.updated"))["data"]["role"] == "member"
        await tenant.send(alice, cid, "denied to both")
        assert await messages(erin_ws) == []
        assert await messages(bob_ws, 0.2) == []


# --- typing ----------------------------------------------------------------------------------


async def test_typing_reaches_the_other_members_but_none_of_the_typists_own_sockets(
    server: ServerThread, tenant: Tenant
) -> None:
    """Alice types on her phone: Bob sees it; neither her phone nor her laptop gets it."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    cid = (await tenant.channel(alice, [bob]))["id"]
    async with (
        socket(server.ws_url, alice.token) as phone,
        socket(server.ws_url, alice.token) as laptop,
        socket(server.ws_url, bob.token) as bob_ws,
    ):
        await phone.send({"type": "typing", "id": "t", "data": {"channel_id": cid}})
        assert await phone.next() == {"type": "ack", "id": "t", "data": {}}
        await tenant.send(alice, cid, "typed")
        on_phone = await received(phone)
        on_laptop = await received(laptop, 0.2)
        on_bob = await received(bob_ws, 0.2)
    assert [kind for kind, _ in on_phone] == ["message.new"]
    assert [kind for kind, _ in on_laptop] == ["message.new"]
    assert [kind for kind, _ in on_bob] == ["typing", "message.new"]
    assert on_bob[0][1] == {"channel_id": cid, "user_id": alice.id, "state": "start"}
