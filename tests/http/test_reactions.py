"""Reactions through the real HTTP API: PUT/DELETE /v1/messages/{id}/reactions/{emoji}."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bastion.core.ids import Kind, new_id
from bastion.store.tables import reactions
from tests.conftest import Databases, make_settings, start_server
from tests.support.messaging import (
    archive,
    assert_problem,
    reaction_url,
    set_role,
    without_instance,
)
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User, new_tenant

THUMBS = "👍"
HEART = "❤️"
REACTIONS_MAX = 3


async def _message(tenant: Tenant, *names: str) -> tuple[list[User], str, str]:
    """Users (the first owns the channel), their channel id, and a message by the first."""
    users = [await tenant.user(name) for name in names]
    channel_id = str((await tenant.channel(users[0], users[1:]))["id"])
    message = await tenant.send(users[0], channel_id, "react to me")
    return users, channel_id, str(message["id"])


async def test_reactions_are_counted_per_emoji(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """Two users' 👍 count 2; own_reactions lists only the caller's own emoji."""
    (alice, bob), _channel_id, message_id = await _message(tenant, "alice", "bob")
    first = await http.put(reaction_url(message_id, THUMBS), headers=alice.headers)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json; charset=utf-8"
    assert first.json()["id"] == message_id
    assert first.json()["reactions"] == {THUMBS: 1}
    assert first.json()["own_reactions"] == [THUMBS]

    second = await http.put(reaction_url(message_id, THUMBS), headers=bob.headers)
    assert second.json()["reactions"] == {THUMBS: 2}
    third = await http.put(reaction_url(message_id, HEART), headers=bob.headers)
    assert third.json()["reactions"] == {THUMBS: 2, HEART: 1}
    assert sorted(third.json()["own_reactions"]) == sorted([THUMBS, HEART])

    as_alice = (await http.get(f"/v1/messages/{message_id}", headers=alice.headers)).json()
    assert as_alice["reactions"] == {THUMBS: 2, HEART: 1}
    assert as_alice["own_reactions"] == [THUMBS]
    carol_view = await http.get(f"/v1/messages/{message_id}", headers=bob.headers)
    assert sorted(carol_view.json()["own_reactions"]) == sorted([THUMBS, HEART])


async def test_reactions_show_in_message_list(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """Listing messages carries each message's counts and the caller's own reactions."""
    (alice, bob), channel_id, message_id = await _message(tenant, "alice", "bob")
    other = await tenant.send(bob, channel_id, "no reactions here")
    await http.put(reaction_url(message_id, THUMBS), headers=bob.headers)
    page = await http.get(f"/v1/channels/{channel_id}/messages", headers=alice.headers)
    by_id = {m["id"]: m for m in page.json()["data"]}
    assert by_id[message_id]["reactions"] == {THUMBS: 1}
    assert by_id[message_id]["own_reactions"] == []
    assert by_id[other["id"]]["reactions"] == {}


async def test_adding_the_same_reaction_twice_changes_nothing(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """PUT is idempotent: a repeated add answers 200 with the same count."""
    (alice, _bob), _channel_id, message_id = await _message(tenant, "alice", "bob")
    first = await http.put(reaction_url(message_id, THUMBS), headers=alice.headers)
    again = await http.put(reaction_url(message_id, THUMBS), headers=alice.headers)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.json()["reactions"] == {THUMBS: 1}


async def _reactions(http: httpx.AsyncClient, user: User, message_id: str) -> tuple[Any, Any]:
    """The message's reaction counts and the user's own reactions, as the user reads them."""
    fetched = (await http.get(f"/v1/messages/{message_id}", headers=user.headers)).json()
    return fetched["reactions"], fetched["own_reactions"]


async def test_delete_removes_the_reaction(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """DELETE takes one's own reaction back (only one's own) and answers 204 with no body,
    like every delete; a repeat changes nothing."""
    (alice, bob), _channel_id, message_id = await _message(tenant, "alice", "bob")
    await http.put(reaction_url(message_id, THUMBS), headers=alice.headers)
    await http.put(reaction_url(message_id, THUMBS), headers=bob.headers)
    removed = await http.delete(reaction_url(message_id, THUMBS), headers=alice.headers)
    assert (removed.status_code, removed.content) == (204, b""), removed.text
    assert await _reactions(http, alice, message_id) == ({THUMBS: 1}, [])
    again = await http.delete(reaction_url(message_id, THUMBS), headers=alice.headers)
    assert (again.status_code, again.content) == (204, b"")
    assert await _reactions(http, bob, message_id) == ({THUMBS: 1}, [THUMBS])
    last = await http.delete(reaction_url(message_id, THUMBS), headers=bob.headers)
    assert last.status_code == 204
    assert await _reactions(http, alice, message_id) == ({}, [])


@pytest.mark.parametrize("emoji", ["1\u20e3\n", "\x00", "\U0001f44d\r"])
async def test_control_characters_in_the_path_are_refused_by_the_guard(
    http: httpx.AsyncClient, tenant: Tenant, emoji: str
) -> None:
    """A path with a control character (after percent-decoding) is 400 before routing."""
    (alice, _bob), _channel_id, message_id = await _message(tenant, "alice", "bob")
    response = await http.put(reaction_url(message_id, emoji), headers=alice.headers)
    assert_problem(response, 400, "bad-request")


@pytest.mark.parametrize(
    "emoji",
    [
        THUMBS,
        HEART,
        "👍🏽",
        "🇫🇷",
        "👨\u200d👩\u200d👧",
        "🏳️\u200d🌈",
        "1️⃣",
        "#️⃣",
        "🫠",
    ],
)
async def test_real_emoji_are_accepted(http: httpx.AsyncClient, tenant: Tenant, emoji: str) -> None:
    """Emoji with modifiers, flags, ZWJ sequences and keycaps are valid reactions."""
    (alice, _bob), _channel_id, message_id = await _message(tenant, "alice", "bob")
    response = await http.put(reaction_url(message_id, emoji), headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json()["reactions"] == {emoji: 1}
    removed = await http.delete(reaction_url(message_id, emoji), headers=alice.headers)
    assert removed.status_code == 204
    assert await _reactions(http, alice, message_id) == ({}, [])


@pytest.mark.parametrize(
    "emoji",
    [
        "abc",
        "<script>",
        "<img src=x onerror=alert(1)>",
        "1",
        "12\u20e3",
        "👍1",
        "👍^",
        "👍a",
        " ",
        "\u200d",
        "%00",
        "'; DROP TABLE reactions; --",
        "👍" * 17,
        "x" * 300,
    ],
)
async def test_invalid_emoji_are_rejected(
    http: httpx.AsyncClient, tenant: Tenant, emoji: str
) -> None:
    """Plain text, markup, lone joiners and overlong strings are 422 on path.emoji."""
    (alice, _bob), _channel_id, message_id = await _message(tenant, "alice", "bob")
    for method in ("PUT", "DELETE"):
        response = await http.request(
            method, reaction_url(message_id, emoji), headers=alice.headers
        )
        assert_problem(response, 422, "validation-failed", "path.emoji")
    fetched = await http.get(f"/v1/messages/{message_id}", headers=alice.headers)
    assert fetched.json()["reactions"] == {}


async def test_empty_emoji_addresses_nothing(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """An empty emoji segment names no reaction resource: a problem answer, nothing stored."""
    (alice, _bob), _channel_id, message_id = await _message(tenant, "alice", "bob")
    response = await http.put(f"/v1/messages/{message_id}/reactions/", headers=alice.headers)
    assert response.status_code in (404, 405), response.text
    assert_problem(response, response.status_code)
    fetched = await http.get(f"/v1/messages/{message_id}", headers=alice.headers)
    assert fetched.json()["reactions"] == {}


async def test_reacting_to_a_deleted_message_conflicts(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A deleted message takes no reactions: 409."""
    (alice, bob), _channel_id, message_id = await _message(tenant, "alice", "bob")
    assert (
        await http.delete(f"/v1/messages/{message_id}", headers=alice.headers)
    ).status_code == 204
    response = await http.put(reaction_url(message_id, THUMBS), headers=bob.headers)
    assert_problem(response, 409, "conflict")


async def test_a_deleted_message_loses_its_reactions(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """Deleting a message removes its reactions with its text: none are shown (in the
    message, the list or the channel's last message) and none are kept."""
    (alice, bob), channel_id, message_id = await _message(tenant, "alice", "bob")
    for user, emoji in ((alice, THUMBS), (bob, THUMBS), (bob, HEART)):
        assert (await http.put(reaction_url(message_id, emoji), headers=user.headers)).is_success
    assert (await http.delete(f"/v1/messages/{message_id}", headers=alice.headers)).is_success
    for user in (alice, bob):
        assert await _reactions(http, user, message_id) == ({}, [])
        listed = await http.get(f"/v1/channels/{channel_id}/messages", headers=user.headers)
        assert [(m["reactions"], m["own_reactions"]) for m in listed.json()["data"]] == [({}, [])]
    assert server.run(_stored_reactions(server, message_id)) == 0


async def _stored_reactions(server: ServerThread, message_id: str) -> int:
    """How many reaction rows the database holds for a message."""
    async with server.services.db.read() as conn:
        query = (
            select(func.count()).select_from(reactions).where(reactions.c.message_id == message_id)
        )
        return int((await conn.execute(query)).scalar_one())


async def test_archived_channel_takes_no_reactions(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """An archived channel is read-only: adding or taking back a reaction is 409."""
    (alice, bob), channel_id, message_id = await _message(tenant, "alice", "bob")
    assert (await http.put(reaction_url(message_id, THUMBS), headers=bob.headers)).is_success
    await archive(tenant, alice, channel_id)
    added = await http.put(reaction_url(message_id, HEART), headers=bob.headers)
    assert_problem(added, 409, "conflict")
    taken_back = await http.delete(reaction_url(message_id, THUMBS), headers=bob.headers)
    assert_problem(taken_back, 409, "conflict")
    assert await _reactions(http, bob, message_id) == ({THUMBS: 1}, [THUMBS])


async def test_read_only_member_cannot_react(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """A read-only member may read the message but reacting is 403."""
    (alice, bob), channel_id, message_id = await _message(tenant, "alice", "bob")
    await set_role(tenant, alice, channel_id, bob, "read-only")
    response = await http.put(reaction_url(message_id, THUMBS), headers=bob.headers)
    assert_problem(response, 403, "forbidden")
    fetched = await http.get(f"/v1/messages/{message_id}", headers=bob.headers)
    assert fetched.status_code == 200
    assert fetched.json()["reactions"] == {}


async def test_outsiders_get_the_missing_message_404(
    http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Non-members and other apps reacting see exactly the 404 of a missing message."""
    (alice, _bob), _channel_id, message_id = await _message(tenant, "alice", "bob")
    mallory, eve = await tenant.user("mallory"), await other_tenant.user("eve")
    missing = await http.put(reaction_url(new_id(Kind.MESSAGE), THUMBS), headers=mallory.headers)
    expected = without_instance(assert_problem(missing, 404, "not-found"))
    for outsider in (mallory, eve):
        for method in ("PUT", "DELETE"):
            answer = await http.request(
                method, reaction_url(message_id, THUMBS), headers=outsider.headers
            )
            assert without_instance(assert_problem(answer, 404)) == expected
    malformed = await http.put(reaction_url("msg_short", THUMBS), headers=mallory.headers)
    assert without_instance(assert_problem(malformed, 404)) == expected
    fetched = await http.get(f"/v1/messages/{message_id}", headers=alice.headers)
    assert fetched.json()["reactions"] == {}


async def test_backend_token_cannot_react(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """The app backend's token cannot react in chat: 403."""
    (_alice, _bob), _channel_id, message_id = await _message(tenant, "alice", "bob")
    response = await http.put(
        reaction_url(message_id, THUMBS), headers=await tenant.backend_headers()
    )
    assert_problem(response, 403)


@pytest.fixture(scope="module")
def small_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A second server whose messages carry at most REACTIONS_MAX distinct emoji."""
    settings = make_settings(
        tmp_path_factory.mktemp("small"),
        databases.new(),
        limits={"reactions_per_message_max": REACTIONS_MAX},
    )
    running = start_server(settings)
    yield running
    running.stop()


async def test_distinct_emoji_per_message_are_limited(small_server: ServerThread) -> None:
    """Past reactions_per_message_max distinct emoji a new one is 422; existing ones still count."""
    async with httpx.AsyncClient(base_url=small_server.base_url, timeout=10) as client:
        tenant = new_tenant(small_server, client)
        (alice, bob), _channel_id, message_id = await _message(tenant, "alice", "bob")
        allowed = ["😀", "🎉", "🚀", "🔥"][:REACTIONS_MAX]
        for emoji in allowed:
            response = await client.put(reaction_url(message_id, emoji), headers=alice.headers)
            assert response.status_code == 200, response.text
        refused = await client.put(reaction_url(message_id, "🔥"), headers=bob.headers)
        assert_problem(refused, 422, "limit-exceeded", "path.emoji")
        joined = await client.put(reaction_url(message_id, allowed[0]), headers=bob.headers)
        assert joined.status_code == 200, joined.text
        assert joined.json()["reactions"] == {**dict.fromkeys(allowed, 1), allowed[0]: 2}

        freed = await client.delete(reaction_url(message_id, allowed[1]), headers=alice.headers)
        assert freed.status_code == 204
        now_fits = await client.put(reaction_url(message_id, "🔥"), headers=bob.headers)
        assert now_fits.status_code == 200, now_fits.text
        assert len(now_fits.json()["reactions"]) == REACTIONS_MAX


async def test_concurrent_new_emoji_respect_the_limit(small_server: ServerThread) -> None:
    """Different emoji added at once on one message: no more than the limit are stored;
    the rest are 422."""
    emoji = ["😀", "🎉", "🚀", "🔥", "🌈", "🍕"]
    async with httpx.AsyncClient(base_url=small_server.base_url, timeout=30) as client:
        tenant = new_tenant(small_server, client)
        users, channel_id, _ = await _message(tenant, "alice", "bob", "carol")
        for round_ in range(5):
            message = await tenant.send(users[0], channel_id, f"race {round_}")
            answers = await asyncio.gather(
                *(
                    client.put(reaction_url(message["id"], e), headers=users[n % 3].headers)
                    for n, e in enumerate(emoji)
                )
            )
            statuses = sorted(a.status_code for a in answers)
            assert statuses == [200] * REACTIONS_MAX + [422] * (len(emoji) - REACTIONS_MAX)
            fetched = await client.get(f"/v1/messages/{message['id']}", headers=users[0].headers)
            assert len(fetched.json()["reactions"]) == REACTIONS_MAX


async def test_reactions_racing_a_deletion_are_not_kept(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """A reaction racing the message's deletion either lands first (and goes with the
    message) or finds it deleted (409): no reaction outlives its message."""
    (alice, bob), channel_id, _ = await _message(tenant, "alice", "bob")
    for round_ in range(10):
        message = await tenant.send(alice, channel_id, f"short-lived {round_}")
        url = f"/v1/messages/{message['id']}"
        *reacted, deleted = await asyncio.gather(
            http.put(reaction_url(message["id"], THUMBS), headers=bob.headers),
            http.put(reaction_url(message["id"], HEART), headers=alice.headers),
            http.delete(url, headers=alice.headers),
        )
        assert deleted.status_code == 204
        assert all(r.status_code in (200, 409) for r in reacted), [r.text for r in reacted]
        assert server.run(_stored_reactions(server, message["id"])) == 0
