"""Read receipts through the real HTTP API: PUT /v1/channels/{id}/read and unread counts."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from bastion.core.ids import Kind, new_id
from tests.support.messaging import assert_problem, set_role, without_instance
from tests.support.tenants import Tenant, User

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def _room(tenant: Tenant, *names: str) -> tuple[list[User], str]:
    """Users (the first owns the channel) and the id of their group channel."""
    users = [await tenant.user(name) for name in names]
    channel = await tenant.channel(users[0], users[1:])
    return users, str(channel["id"])


async def _mark(
    http: httpx.AsyncClient, user: User, channel_id: str, message_id: str
) -> httpx.Response:
    return await http.put(
        f"/v1/channels/{channel_id}/read", json={"message_id": message_id}, headers=user.headers
    )


async def _channel(http: httpx.AsyncClient, user: User, channel_id: str) -> dict[str, Any]:
    response = await http.get(f"/v1/channels/{channel_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _unread_in_list(http: httpx.AsyncClient, user: User) -> dict[str, int]:
    response = await http.get("/v1/channels", headers=user.headers)
    assert response.status_code == 200, response.text
    return {c["id"]: c["unread_count"] for c in response.json()["data"]}


async def test_mark_read_returns_the_unread_count(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """Reading up to a message answers the new position and what is left unread."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    sent = [await tenant.send(alice, channel_id, f"m{i}") for i in range(4)]
    response = await _mark(http, bob, channel_id, sent[1]["id"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["channel_id"] == channel_id
    assert body["last_read_message_id"] == sent[1]["id"]
    assert RFC3339_MS.match(body["last_read_at"])
    assert body["unread_count"] == 2
    assert set(body) == {"channel_id", "last_read_message_id", "last_read_at", "unread_count"}
    done = await _mark(http, bob, channel_id, sent[3]["id"])
    assert done.json()["unread_count"] == 0


async def test_unread_counts_in_channel_list_and_channel(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Unread counts only messages by others after the read position, in list and detail."""
    (alice, bob, carol), channel_id = await _room(tenant, "alice", "bob", "carol")
    quiet_id = str((await tenant.channel(alice, [bob], name="quiet"))["id"])
    assert (await _channel(http, bob, channel_id))["unread_count"] == 0

    await tenant.send(alice, channel_id, "one")
    await tenant.send(carol, channel_id, "two")
    own = await tenant.send(bob, channel_id, "bob's own message")
    await tenant.send(alice, channel_id, "three")

    assert (await _channel(http, bob, channel_id))["unread_count"] == 3
    assert (await _channel(http, alice, channel_id))["unread_count"] == 2
    assert (await _channel(http, carol, channel_id))["unread_count"] == 3
    assert await _unread_in_list(http, bob) == {channel_id: 3, quiet_id: 0}

    await _mark(http, bob, channel_id, own["id"])
    assert (await _channel(http, bob, channel_id))["unread_count"] == 1
    assert (await _unread_in_list(http, bob))[channel_id] == 1
    assert (await _channel(http, carol, channel_id))["unread_count"] == 3


async def test_deleted_messages_are_not_unread(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """A message deleted before it was read no longer counts as unread."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    kept = await tenant.send(alice, channel_id, "kept")
    gone = await tenant.send(alice, channel_id, "gone")
    assert (await _channel(http, bob, channel_id))["unread_count"] == 2
    deleted = await http.delete(f"/v1/messages/{gone['id']}", headers=alice.headers)
    assert deleted.status_code == 204
    assert (await _channel(http, bob, channel_id))["unread_count"] == 1
    assert (await _unread_in_list(http, bob))[channel_id] == 1
    marked = await _mark(http, bob, channel_id, kept["id"])
    assert marked.json()["unread_count"] == 0


async def test_read_position_never_moves_backwards(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """Marking an older message read keeps the newer position (and its time)."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    sent = [await tenant.send(alice, channel_id, f"m{i}") for i in range(3)]
    newest = await _mark(http, bob, channel_id, sent[2]["id"])
    older = await _mark(http, bob, channel_id, sent[0]["id"])
    assert older.status_code == 200
    assert older.json() == newest.json()
    assert older.json()["last_read_message_id"] == sent[2]["id"]
    assert older.json()["unread_count"] == 0
    again = await _mark(http, bob, channel_id, sent[2]["id"])
    assert again.json() == newest.json()
    membership = (await _channel(http, bob, channel_id))["membership"]
    assert membership["last_read_message_id"] == sent[2]["id"]


async def test_concurrent_marks_keep_the_newest_position(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Marks for an older and a newer message sent together: the newer one stays, whatever
    order they commit in, and every answer shows a position at least as far as its own."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    sent = [await tenant.send(alice, channel_id, f"m{i}") for i in range(12)]
    order = [m["id"] for m in sent]
    for older, newer in zip(sent[0:12:2], sent[1:12:2], strict=True):
        answers = await asyncio.gather(
            _mark(http, bob, channel_id, newer["id"]),
            _mark(http, bob, channel_id, older["id"]),
            _mark(http, bob, channel_id, older["id"]),
        )
        for answer, marked in zip(answers, (newer, older, older), strict=True):
            assert answer.status_code == 200, answer.text
            shown = answer.json()["last_read_message_id"]
            assert order.index(shown) >= order.index(marked["id"])
        membership = (await _channel(http, bob, channel_id))["membership"]
        assert membership["last_read_message_id"] == newer["id"]


async def test_message_of_another_channel_is_rejected(
    http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    """message_id must name a message of this channel: others, unknown or malformed are 422."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    here = await tenant.send(alice, channel_id, "here")
    elsewhere = str((await tenant.channel(alice, [bob], name="elsewhere"))["id"])
    there = await tenant.send(alice, elsewhere, "there")
    eve, friend = await other_tenant.user("eve"), await other_tenant.user("friend")
    far = await other_tenant.send(eve, str((await other_tenant.channel(eve, [friend]))["id"]), "x")
    for message_id in (there["id"], far["id"], new_id(Kind.MESSAGE), "msg_bad", channel_id):
        response = await _mark(http, bob, channel_id, message_id)
        assert_problem(response, 422, "validation-failed", "body.message_id")
    for body in ({}, {"message_id": ""}, {"message_id": here["id"], "seq": 9}):
        response = await http.put(f"/v1/channels/{channel_id}/read", json=body, headers=bob.headers)
        assert_problem(response, 422, "validation-failed")
    membership = (await _channel(http, bob, channel_id))["membership"]
    assert membership["last_read_message_id"] is None
    assert membership["last_read_at"] is None


async def test_member_list_shows_read_positions(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """GET members shows each member's last_read_message_id (null until they read)."""
    (alice, bob, carol), channel_id = await _room(tenant, "alice", "bob", "carol")
    first = await tenant.send(alice, channel_id, "first")
    second = await tenant.send(carol, channel_id, "second")
    await _mark(http, bob, channel_id, first["id"])
    await _mark(http, alice, channel_id, second["id"])
    response = await http.get(f"/v1/channels/{channel_id}/members", headers=carol.headers)
    assert response.status_code == 200, response.text
    positions = {m["user_id"]: m["last_read_message_id"] for m in response.json()["data"]}
    assert positions == {alice.id: second["id"], bob.id: first["id"], carol.id: None}
    single = await http.get(f"/v1/channels/{channel_id}/members/{bob.id}", headers=alice.headers)
    assert single.json()["last_read_message_id"] == first["id"]
    assert RFC3339_MS.match(single.json()["last_read_at"])


async def test_read_only_member_can_mark_read(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """Reading is all a read-only member may do, and it works."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    await set_role(tenant, alice, channel_id, bob, "read-only")
    message = await tenant.send(alice, channel_id, "announcement")
    response = await _mark(http, bob, channel_id, message["id"])
    assert response.status_code == 200, response.text
    assert response.json()["unread_count"] == 0


async def test_outsiders_cannot_mark_read(
    http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    """A non-member or another app's user gets the 404 of a missing channel."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    message = await tenant.send(alice, channel_id, "private")
    mallory, eve = await tenant.user("mallory"), await other_tenant.user("eve")
    missing = await _mark(http, mallory, new_id(Kind.CHANNEL), message["id"])
    expected = without_instance(assert_problem(missing, 404, "not-found"))
    for outsider in (mallory, eve):
        answer = await _mark(http, outsider, channel_id, message["id"])
        assert without_instance(assert_problem(answer, 404)) == expected
    malformed = await _mark(http, mallory, "ch_bad", message["id"])
    assert without_instance(assert_problem(malformed, 404)) == expected


async def test_backend_token_cannot_mark_read(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """A backend token has no read position to move: 403."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    message = await tenant.send(alice, channel_id, "hello")
    response = await http.put(
        f"/v1/channels/{channel_id}/read",
        json={"message_id": message["id"]},
        headers=await tenant.backend_headers(),
    )
    assert_problem(response, 403)
