"""Messages through the real HTTP API: send, threads, mentions, get, list, edit, delete."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from bastion.core.ids import Kind, new_id
from bastion.observe.events import MemorySink
from tests.support.messaging import (
    archive,
    assert_problem,
    list_messages,
    set_role,
    without_instance,
)
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def _room(tenant: Tenant, *names: str) -> tuple[list[User], str]:
    """Users (the first owns the channel) and the id of their group channel."""
    users = [await tenant.user(name) for name in names]
    channel = await tenant.channel(users[0], users[1:])
    return users, str(channel["id"])


def _send_url(channel_id: str) -> str:
    return f"/v1/channels/{channel_id}/messages"


async def _post(
    http: httpx.AsyncClient, user: User, channel_id: str, body: dict[str, Any]
) -> httpx.Response:
    return await http.post(_send_url(channel_id), json=body, headers=user.headers)


# --- send -------------------------------------------------------------------------------


async def test_send_returns_created_message_with_location_and_etag(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A send answers 201 with the message, a Location that resolves to it and an ETag."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    response = await _post(http, alice, channel_id, {"text": "Hello, Bob!"})
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    message = response.json()
    assert message["id"].startswith("msg_")
    assert response.headers["location"] == f"/v1/messages/{message['id']}"
    assert response.headers["etag"] == '"1"'
    assert message["text"] == "Hello, Bob!"
    assert message["channel_id"] == channel_id
    assert message["author_id"] == alice.id
    assert message["parent_id"] is None
    assert message["mentions"] == []
    assert message["reply_count"] == 0
    assert message["reactions"] == {}
    assert message["own_reactions"] == []
    assert message["version"] == 1
    assert message["deleted"] is False
    assert message["edited_at"] is None
    assert message["deleted_at"] is None
    assert RFC3339_MS.match(message["created_at"])

    fetched = await http.get(response.headers["location"], headers=alice.headers)
    assert fetched.status_code == 200
    assert fetched.json() == message


async def test_text_longer_than_limit_is_rejected(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """Exactly message_max_chars characters is accepted; one more is 422 limit-exceeded."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    limit = server.settings.limits.message_max_chars
    ok = await _post(http, alice, channel_id, {"text": "é" * limit})
    assert ok.status_code == 201, ok.text
    assert len(ok.json()["text"]) == limit
    too_long = await _post(http, alice, channel_id, {"text": "x" * (limit + 1)})
    assert_problem(too_long, 422, "limit-exceeded", "body.text")
    page = await list_messages(tenant, alice, channel_id)
    assert [m["id"] for m in page["data"]] == [ok.json()["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": ""}, "body.text"),
        ({"text": "   "}, "body.text"),
        ({"text": " \n\t\r\n "}, "body.text"),
        ({"text": "\u200b\u2060\u00a0\u3000"}, "body.text"),
        ({}, "body.text"),
        ({"text": None}, "body.text"),
        ({"text": 42}, "body.text"),
        ({"text": "hi", "sticker": "cat"}, "body.sticker"),
        ({"text": "hi", "client_msg_id": "has spaces"}, "body.client_msg_id"),
        ({"text": "hi", "parent_id": "not-an-id"}, "body.parent_id"),
        ({"text": "hi", "mentions": ["usr_nope"]}, "body.mentions.0"),
    ],
)
async def test_invalid_send_bodies_are_rejected(
    http: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    """Empty or missing text, wrong types, malformed ids and unknown fields are 422."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    response = await _post(http, alice, channel_id, body)
    assert_problem(response, 422, "validation-failed", field)
    page = await list_messages(tenant, alice, channel_id)
    assert page["data"] == []


async def test_retry_with_same_client_msg_id_returns_the_original(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A retry with the same client_msg_id answers 200 with the very same message, stored once."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    body = {"text": "once only", "client_msg_id": "sdk-42:a.b_c"}
    first = await _post(http, alice, channel_id, body)
    assert first.status_code == 201, first.text
    assert first.json()["client_msg_id"] == "sdk-42:a.b_c"
    retry = await _post(http, alice, channel_id, body)
    assert retry.status_code == 200, retry.text
    assert retry.json() == first.json()
    assert retry.headers["location"] == first.headers["location"]
    assert retry.headers["etag"] == first.headers["etag"]
    page = await list_messages(tenant, alice, channel_id)
    assert [m["id"] for m in page["data"]] == [first.json()["id"]]


async def test_retry_with_same_client_msg_id_and_another_message_is_422(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """The same client_msg_id with a different text, thread or mentions is not a retry:
    422 (as for an Idempotency-Key reused with another body), and nothing is stored."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    root = await tenant.send(bob, channel_id, "root")
    body = {"text": "once only", "client_msg_id": "sdk-7"}
    first = await _post(http, alice, channel_id, body)
    assert first.status_code == 201, first.text
    for changed in (
        {"text": "something else"},
        {"parent_id": root["id"]},
        {"mentions": [bob.id]},
    ):
        clash = await _post(http, alice, channel_id, {**body, **changed})
        problem = assert_problem(clash, 422, "validation-failed", "body.client_msg_id")
        assert "different message" in problem["detail"]
    page = await list_messages(tenant, alice, channel_id)
    assert [m["id"] for m in page["data"]] == [root["id"], first.json()["id"]]
    again = await _post(http, alice, channel_id, body)
    assert (again.status_code, again.json()) == (200, first.json())


async def test_retry_after_an_edit_or_deletion_returns_the_message(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Once edited (or deleted) the sent text is gone: a retry with the original body still
    answers 200 with the message as it is now."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    body = {"text": "typo", "client_msg_id": "sdk-8"}
    sent = (await _post(http, alice, channel_id, body)).json()
    url = f"/v1/messages/{sent['id']}"
    assert (await http.patch(url, json={"text": "fixed"}, headers=alice.headers)).is_success
    retry = await _post(http, alice, channel_id, body)
    assert (retry.status_code, retry.json()["text"]) == (200, "fixed")
    assert (await http.delete(url, headers=alice.headers)).status_code == 204
    retry = await _post(http, alice, channel_id, body)
    assert (retry.status_code, retry.json()["deleted"]) == (200, True)


async def test_client_msg_id_is_scoped_to_its_author(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Two users may use the same client_msg_id: each gets their own message."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    mine = await _post(http, alice, channel_id, {"text": "a", "client_msg_id": "m1"})
    theirs = await _post(http, bob, channel_id, {"text": "b", "client_msg_id": "m1"})
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]
    assert theirs.json()["author_id"] == bob.id


async def test_same_client_msg_id_on_another_channel_conflicts(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Reusing a client_msg_id for a different channel is 409, and nothing is sent there."""
    (alice, bob), first_channel = await _room(tenant, "alice", "bob")
    second_channel = str((await tenant.channel(alice, [bob], name="other"))["id"])
    sent = await _post(http, alice, first_channel, {"text": "x", "client_msg_id": "dup"})
    assert sent.status_code == 201
    clash = await _post(http, alice, second_channel, {"text": "x", "client_msg_id": "dup"})
    assert_problem(clash, 409, "conflict")
    assert (await list_messages(tenant, alice, second_channel))["data"] == []


async def test_concurrent_retries_create_exactly_one_message(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Ten identical sends racing each other store one message; all answers carry its id."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    body = {"text": "racing", "client_msg_id": "race-1"}
    responses = await asyncio.gather(*(_post(http, alice, channel_id, body) for _ in range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 9 + [201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    page = await list_messages(tenant, alice, channel_id)
    assert [m["id"] for m in page["data"]] == [responses[0].json()["id"]]


async def test_read_only_member_cannot_send(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """A read-only member sees the channel but posting is 403."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    await set_role(tenant, alice, channel_id, bob, "read-only")
    response = await _post(http, bob, channel_id, {"text": "let me in"})
    assert_problem(response, 403, "forbidden")
    assert (await list_messages(tenant, bob, channel_id))["data"] == []


async def test_broadcast_channel_only_owners_and_moderators_post(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """In a broadcast channel a plain member gets 403; moderators and owners post."""
    owner, moderator, member = [await tenant.user(n) for n in ("owner", "mod", "member")]
    channel = await tenant.channel(owner, [moderator, member], type_="broadcast", name="news")
    channel_id = str(channel["id"])
    await set_role(tenant, owner, channel_id, moderator, "moderator")
    refused = await _post(http, member, channel_id, {"text": "me too"})
    assert_problem(refused, 403, "forbidden")
    for poster in (owner, moderator):
        response = await _post(http, poster, channel_id, {"text": f"from {poster.external_id}"})
        assert response.status_code == 201, response.text
    page = await list_messages(tenant, member, channel_id)
    assert [m["author_id"] for m in page["data"]] == [owner.id, moderator.id]


async def test_non_member_send_is_404_like_a_missing_channel(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Sending to a channel one does not belong to looks exactly like a missing channel."""
    (_alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    mallory = await tenant.user("mallory")
    hidden = await _post(http, mallory, channel_id, {"text": "hi"})
    missing = await _post(http, mallory, new_id(Kind.CHANNEL), {"text": "hi"})
    malformed = await _post(http, mallory, "ch_nope", {"text": "hi"})
    bodies = [assert_problem(r, 404, "not-found") for r in (hidden, missing, malformed)]
    assert without_instance(bodies[0]) == without_instance(bodies[1])
    assert without_instance(bodies[0]) == without_instance(bodies[2])


async def test_other_tenant_channel_is_404(
    http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    """A user of another app cannot send into this app's channel: 404 as if missing."""
    (_alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    eve = await other_tenant.user("alice")
    foreign = await _post(http, eve, channel_id, {"text": "hi"})
    missing = await _post(http, eve, new_id(Kind.CHANNEL), {"text": "hi"})
    assert without_instance(assert_problem(foreign, 404)) == without_instance(
        assert_problem(missing, 404)
    )


async def test_backend_token_cannot_send(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """The app backend's token cannot act in chat: 403."""
    (_alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    response = await http.post(
        _send_url(channel_id), json={"text": "from backend"}, headers=await tenant.backend_headers()
    )
    assert_problem(response, 403)


async def test_send_in_archived_channel_conflicts(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """Once a channel is archived a send is 409."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    await tenant.send(alice, channel_id, "last words")
    await archive(tenant, alice, channel_id)
    for user in (alice, bob):
        response = await _post(http, user, channel_id, {"text": "anyone?"})
        assert_problem(response, 409, "conflict")
    assert len((await list_messages(tenant, alice, channel_id))["data"]) == 1


async def test_archived_channel_refuses_edits_and_own_deletions(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Archived is read-only: editing is 409, and so is deleting one's own message without
    moderating the channel; nothing changes."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    message = await tenant.send(bob, channel_id, "kept")
    await archive(tenant, alice, channel_id)
    url = f"/v1/messages/{message['id']}"
    assert_problem(await http.patch(url, json={"text": "x"}, headers=bob.headers), 409, "conflict")
    assert_problem(await http.delete(url, headers=bob.headers), 409, "conflict")
    fetched = (await http.get(url, headers=bob.headers)).json()
    assert (fetched["text"], fetched["deleted"], fetched["version"]) == ("kept", False, 1)


async def test_moderators_still_delete_in_an_archived_channel(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Moderation outlives archiving: owners and moderators delete any message (their own
    too) without reopening the channel to everyone."""
    (owner, moderator, member), channel_id = await _room(tenant, "owner", "mod", "member")
    await set_role(tenant, owner, channel_id, moderator, "moderator")
    abuse = await tenant.send(member, channel_id, "abuse")
    leak = await tenant.send(member, channel_id, "leak")
    own = await tenant.send(moderator, channel_id, "own")
    await archive(tenant, owner, channel_id)
    for deleter, message in ((owner, abuse), (moderator, leak), (moderator, own)):
        url = f"/v1/messages/{message['id']}"
        assert (await http.delete(url, headers=deleter.headers)).status_code == 204
        assert (await http.get(url, headers=member.headers)).json()["deleted"] is True


# --- threads ----------------------------------------------------------------------------


async def test_replies_increment_the_parent_reply_count(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Each reply with parent_id adds one to the parent's reply_count."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    parent = await tenant.send(alice, channel_id, "question")
    first = await _post(http, bob, channel_id, {"text": "answer 1", "parent_id": parent["id"]})
    assert first.status_code == 201, first.text
    assert first.json()["parent_id"] == parent["id"]
    await tenant.send(alice, channel_id, "answer 2", parent_id=parent["id"])
    fetched = await http.get(f"/v1/messages/{parent['id']}", headers=bob.headers)
    assert fetched.json()["reply_count"] == 2
    assert fetched.headers["etag"] == f'"{fetched.json()["version"]}"'


async def test_a_deleted_reply_no_longer_counts(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """Deleting a reply takes one off its root's reply_count, once: deleting it again
    changes nothing, and deleting the root itself leaves the count as it was."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    root = await tenant.send(alice, channel_id, "question")
    replies = [
        await tenant.send(bob, channel_id, f"answer {n}", parent_id=root["id"]) for n in (1, 2)
    ]
    url = f"/v1/messages/{root['id']}"
    for _ in range(2):
        deleted = await http.delete(f"/v1/messages/{replies[0]['id']}", headers=bob.headers)
        assert deleted.status_code == 204
        assert (await http.get(url, headers=alice.headers)).json()["reply_count"] == 1
    await http.delete(url, headers=alice.headers)
    assert (await http.get(url, headers=alice.headers)).json()["reply_count"] == 1


async def test_parent_in_another_channel_is_rejected(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A parent_id from another channel (or one that does not exist) is 422."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    elsewhere = str((await tenant.channel(alice, [bob], name="elsewhere"))["id"])
    foreign_parent = await tenant.send(alice, elsewhere, "over here")
    for parent_id in (foreign_parent["id"], new_id(Kind.MESSAGE)):
        response = await _post(http, alice, channel_id, {"text": "re", "parent_id": parent_id})
        assert_problem(response, 422, "validation-failed", "body.parent_id")
    fetched = await http.get(f"/v1/messages/{foreign_parent['id']}", headers=alice.headers)
    assert fetched.json()["reply_count"] == 0


async def test_reply_to_a_reply_is_rejected(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """Threads are one level deep: a reply cannot be a parent (422)."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    root = await tenant.send(alice, channel_id, "root")
    reply = await tenant.send(bob, channel_id, "reply", parent_id=root["id"])
    response = await _post(http, alice, channel_id, {"text": "deeper", "parent_id": reply["id"]})
    assert_problem(response, 422, "validation-failed", "body.parent_id")


async def test_list_with_parent_id_returns_only_that_thread(tenant: Tenant) -> None:
    """?parent_id= lists that thread's replies, oldest first, and nothing else."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    root = await tenant.send(alice, channel_id, "root")
    other_root = await tenant.send(bob, channel_id, "other root")
    replies = []
    for i in range(3):
        replies.append(await tenant.send(bob, channel_id, f"r{i}", parent_id=root["id"]))
        await tenant.send(alice, channel_id, f"noise {i}", parent_id=other_root["id"])
        await tenant.send(alice, channel_id, f"top {i}")
    thread = await list_messages(tenant, alice, channel_id, parent_id=root["id"])
    assert [m["id"] for m in thread["data"]] == [r["id"] for r in replies]
    assert all(m["parent_id"] == root["id"] for m in thread["data"])
    everything = await list_messages(tenant, alice, channel_id)
    assert len(everything["data"]) == 2 + 3 * 3


async def test_list_with_a_parent_id_of_no_thread_here_is_rejected(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A parent_id filter naming no message of this channel (malformed, missing, another
    channel's) is 422 saying so, like a before/after cursor; a reply names no thread."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    elsewhere = str((await tenant.channel(alice, [bob], name="elsewhere"))["id"])
    foreign = await tenant.send(alice, elsewhere, "over there")
    root = await tenant.send(alice, channel_id, "root")
    reply = await tenant.send(bob, channel_id, "reply", parent_id=root["id"])
    for parent_id in ("ch_x", "junk", new_id(Kind.MESSAGE), foreign["id"], reply["id"]):
        response = await http.get(
            _send_url(channel_id), params={"parent_id": parent_id}, headers=alice.headers
        )
        body = assert_problem(response, 422, "validation-failed", "query.parent_id")
        assert "cursor" not in str(body["errors"]), body


async def test_top_level_messages_leave_thread_replies_out(tenant: Tenant) -> None:
    """include_replies=false lists only the channel's top-level messages, paging as usual;
    the default still lists everything."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    tops = []
    for i in range(4):
        tops.append(await tenant.send(alice, channel_id, f"top {i}"))
        await tenant.send(bob, channel_id, f"re {i}", parent_id=tops[0]["id"])
    newest = await list_messages(tenant, alice, channel_id, include_replies="false", limit=3)
    assert [m["id"] for m in newest["data"]] == [t["id"] for t in tops[1:]]
    assert newest["next_cursor"] is None
    older = await list_messages(
        tenant, alice, channel_id, include_replies="false", before=newest["prev_cursor"]
    )
    assert [m["id"] for m in older["data"]] == [tops[0]["id"]]
    assert older["data"][0]["reply_count"] == 4
    everything = await list_messages(tenant, alice, channel_id)
    assert len(everything["data"]) == 8


async def test_a_thread_cannot_be_listed_top_level_only(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """parent_id with include_replies=false asks for nothing: 422, not an empty page."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    root = await tenant.send(alice, channel_id, "root")
    response = await http.get(
        _send_url(channel_id),
        params={"parent_id": root["id"], "include_replies": "false"},
        headers=alice.headers,
    )
    assert_problem(response, 422, "validation-failed", "query.include_replies")


# --- mentions ---------------------------------------------------------------------------


async def test_mentions_of_members_are_stored_and_returned(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Mentioned members come back in order, duplicates dropped, on send, get and list."""
    (alice, bob, carol), channel_id = await _room(tenant, "alice", "bob", "carol")
    body = {"text": "@carol @bob", "mentions": [carol.id, bob.id, carol.id]}
    sent = await _post(http, alice, channel_id, body)
    assert sent.status_code == 201, sent.text
    assert sent.json()["mentions"] == [carol.id, bob.id]
    fetched = await http.get(f"/v1/messages/{sent.json()['id']}", headers=bob.headers)
    assert fetched.json()["mentions"] == [carol.id, bob.id]
    page = await list_messages(tenant, carol, channel_id)
    assert page["data"][0]["mentions"] == [carol.id, bob.id]


async def test_mentioning_a_non_member_is_rejected(
    http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Mentioning someone outside the channel (or another app's user) is 422."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    outsider = await tenant.user("outsider")
    foreigner = await other_tenant.user("foreigner")
    for user in (outsider, foreigner):
        response = await _post(http, alice, channel_id, {"text": "hey", "mentions": [user.id]})
        assert_problem(response, 422, "validation-failed", "body.mentions")
    assert (await list_messages(tenant, alice, channel_id))["data"] == []


async def test_too_many_mentions_is_rejected(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """More than limits.mentions_max distinct mentions is 422 limit-exceeded."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    mentions = [new_id(Kind.USER) for _ in range(server.settings.limits.mentions_max + 1)]
    response = await _post(http, alice, channel_id, {"text": "all", "mentions": mentions})
    assert_problem(response, 422, "limit-exceeded", "body.mentions")


# --- get --------------------------------------------------------------------------------


async def test_get_message_visibility(
    http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Members read a message; non-members, other apps and malformed ids get the same 404."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    message = await tenant.send(alice, channel_id, "secret")
    url = f"/v1/messages/{message['id']}"
    ok = await http.get(url, headers=bob.headers)
    assert ok.status_code == 200
    assert ok.json()["text"] == "secret"
    assert ok.headers["etag"] == '"1"'

    mallory = await tenant.user("mallory")
    eve = await other_tenant.user("eve")
    missing = await http.get(f"/v1/messages/{new_id(Kind.MESSAGE)}", headers=mallory.headers)
    expected = without_instance(assert_problem(missing, 404, "not-found"))
    answers = [
        await http.get(url, headers=mallory.headers),
        await http.get(url, headers=eve.headers),
        await http.get(f"/v1/messages/{new_id(Kind.MESSAGE)}", headers=eve.headers),
        await http.get("/v1/messages/msg_123", headers=mallory.headers),
        await http.get(f"/v1/messages/{channel_id}", headers=alice.headers),
    ]
    for answer in answers:
        assert without_instance(assert_problem(answer, 404)) == expected


# --- list -------------------------------------------------------------------------------


async def test_list_default_is_newest_page_oldest_first(tenant: Tenant) -> None:
    """Without a cursor the newest page comes back, oldest first, with only a prev_cursor."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    sent = [await tenant.send(alice if i % 2 else bob, channel_id, f"m{i}") for i in range(5)]
    everything = await list_messages(tenant, alice, channel_id)
    assert [m["id"] for m in everything["data"]] == [m["id"] for m in sent]
    assert everything["prev_cursor"] is None
    assert everything["next_cursor"] is None

    newest = await list_messages(tenant, alice, channel_id, limit=3)
    assert [m["text"] for m in newest["data"]] == ["m2", "m3", "m4"]
    assert newest["prev_cursor"] == sent[2]["id"]
    assert newest["next_cursor"] is None


async def test_list_of_empty_channel(tenant: Tenant) -> None:
    """An empty channel lists no messages and no cursors."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    page = await list_messages(tenant, alice, channel_id)
    assert page == {"data": [], "prev_cursor": None, "next_cursor": None}


async def test_cursor_pagination_walks_both_ways(tenant: Tenant) -> None:
    """prev_cursor (before=) walks back to the start, next_cursor (after=) forward to the end."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    sent = [await tenant.send(alice if i % 3 else bob, channel_id, f"m{i}") for i in range(25)]
    ids = [m["id"] for m in sent]

    backwards: list[str] = []
    page = await list_messages(tenant, bob, channel_id, limit=10)
    pages = 1
    while True:
        page_ids = [m["id"] for m in page["data"]]
        assert page_ids == sorted(page_ids, key=ids.index)
        backwards = page_ids + backwards
        if page["prev_cursor"] is None:
            break
        assert page["prev_cursor"] == page_ids[0]
        page = await list_messages(tenant, bob, channel_id, limit=10, before=page["prev_cursor"])
        pages += 1
    assert pages == 3
    assert backwards == ids
    assert [m["id"] for m in page["data"]] == ids[:5]
    assert page["next_cursor"] == ids[4]

    forwards = [m["id"] for m in page["data"]]
    while page["next_cursor"] is not None:
        assert page["next_cursor"] == page["data"][-1]["id"]
        page = await list_messages(tenant, bob, channel_id, limit=10, after=page["next_cursor"])
        assert page["prev_cursor"] == page["data"][0]["id"]
        forwards += [m["id"] for m in page["data"]]
    assert forwards == ids
    assert len(set(forwards)) == 25
    assert [m["id"] for m in page["data"]] == ids[15:]


async def test_list_after_the_newest_message_is_empty(tenant: Tenant) -> None:
    """after= the newest message returns nothing (nothing newer yet)."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    last = [await tenant.send(alice, channel_id, f"m{i}") for i in range(3)][-1]
    page = await list_messages(tenant, alice, channel_id, after=last["id"])
    assert page["data"] == []
    newer = await tenant.send(alice, channel_id, "newer")
    page = await list_messages(tenant, alice, channel_id, after=last["id"])
    assert [m["id"] for m in page["data"]] == [newer["id"]]


async def test_before_and_after_together_are_rejected(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Asking for both before= and after= is 422."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    first = await tenant.send(alice, channel_id, "a")
    last = await tenant.send(alice, channel_id, "b")
    response = await http.get(
        _send_url(channel_id),
        params={"before": last["id"], "after": first["id"]},
        headers=alice.headers,
    )
    assert_problem(response, 422, "validation-failed")
    assert response.json()["errors"]


async def test_cursor_must_be_a_message_of_this_channel(
    http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    """A cursor from another channel or app, an unknown id or a malformed one is 422."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    elsewhere = str((await tenant.channel(alice, [bob], name="elsewhere"))["id"])
    foreign = await tenant.send(alice, elsewhere, "there")
    eve, eve_friend = await other_tenant.user("eve"), await other_tenant.user("friend")
    eve_channel = str((await other_tenant.channel(eve, [eve_friend]))["id"])
    other_app = await other_tenant.send(eve, eve_channel, "far away")
    await tenant.send(alice, channel_id, "here")
    cursors = [foreign["id"], other_app["id"], new_id(Kind.MESSAGE), "msg_bogus", channel_id]
    for name in ("before", "after"):
        for cursor in cursors:
            response = await http.get(
                _send_url(channel_id), params={name: cursor}, headers=alice.headers
            )
            assert_problem(response, 422, "validation-failed", f"query.{name}")


@pytest.mark.parametrize("limit", ["0", "-1", "abc"])
async def test_invalid_limit_is_rejected(
    http: httpx.AsyncClient, tenant: Tenant, limit: str
) -> None:
    """A page size that is not a positive integer is 422."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    response = await http.get(_send_url(channel_id), params={"limit": limit}, headers=alice.headers)
    assert_problem(response, 422, "validation-failed", "query.limit")


async def test_limit_above_maximum_is_rejected(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """limit above limits.page_size_max is 422 limit-exceeded, not silently clamped."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    maximum = server.settings.limits.page_size_max
    ok = await http.get(_send_url(channel_id), params={"limit": maximum}, headers=alice.headers)
    assert ok.status_code == 200
    response = await http.get(
        _send_url(channel_id), params={"limit": maximum + 1}, headers=alice.headers
    )
    assert_problem(response, 422, "limit-exceeded", "query.limit")


async def test_non_member_cannot_list(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """Listing a channel one does not belong to is 404, like a missing channel."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    await tenant.send(alice, channel_id, "private")
    mallory = await tenant.user("mallory")
    hidden = await http.get(_send_url(channel_id), headers=mallory.headers)
    missing = await http.get(_send_url(new_id(Kind.CHANNEL)), headers=mallory.headers)
    assert without_instance(assert_problem(hidden, 404)) == without_instance(
        assert_problem(missing, 404)
    )


# --- edit -------------------------------------------------------------------------------


async def test_edit_own_message(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """The author edits: text changes, edited_at is set, version and ETag move on."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    message = await tenant.send(alice, channel_id, "helo")
    url = f"/v1/messages/{message['id']}"
    edited = await http.patch(
        url, json={"text": "hello"}, headers={**alice.headers, "If-Match": '"1"'}
    )
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["text"] == "hello"
    assert body["version"] == 2
    assert edited.headers["etag"] == '"2"'
    assert body["edited_at"] is not None
    assert RFC3339_MS.match(body["edited_at"])
    assert body["created_at"] == message["created_at"]
    seen = await http.get(url, headers=bob.headers)
    assert seen.json()["text"] == "hello"
    assert seen.headers["etag"] == '"2"'


async def test_edit_limits_apply(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """An edit must respect the same text rules as a send (422), and takes only text."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    message = await tenant.send(alice, channel_id, "short")
    url = f"/v1/messages/{message['id']}"
    too_long = "x" * (server.settings.limits.message_max_chars + 1)
    assert_problem(
        await http.patch(url, json={"text": too_long}, headers=alice.headers),
        422,
        "limit-exceeded",
        "body.text",
    )
    for blank in ("", "  \n  "):
        assert_problem(
            await http.patch(url, json={"text": blank}, headers=alice.headers),
            422,
            field="body.text",
        )
    assert_problem(
        await http.patch(url, json={"text": "x", "author_id": "usr_x"}, headers=alice.headers),
        422,
        field="body.author_id",
    )
    assert (await http.get(url, headers=alice.headers)).json()["text"] == "short"


async def test_edit_someone_elses_message_is_forbidden(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Even the channel owner cannot edit another member's message: 403."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    message = await tenant.send(bob, channel_id, "mine")
    response = await http.patch(
        f"/v1/messages/{message['id']}", json={"text": "yours now"}, headers=alice.headers
    )
    assert_problem(response, 403, "forbidden")
    fetched = await http.get(f"/v1/messages/{message['id']}", headers=bob.headers)
    assert fetched.json()["text"] == "mine"


async def test_edit_with_stale_if_match_fails(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """If-Match with an old ETag is 412 and leaves the message alone."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    message = await tenant.send(alice, channel_id, "v1")
    url = f"/v1/messages/{message['id']}"
    first = await http.patch(url, json={"text": "v2"}, headers={**alice.headers, "If-Match": '"1"'})
    assert first.status_code == 200
    stale = await http.patch(url, json={"text": "v3"}, headers={**alice.headers, "If-Match": '"1"'})
    assert_problem(stale, 412, "precondition-failed")
    malformed = await http.patch(
        url, json={"text": "v3"}, headers={**alice.headers, "If-Match": "1"}
    )
    assert_problem(malformed, 400)
    assert (await http.get(url, headers=alice.headers)).json()["text"] == "v2"


async def test_edit_deleted_message_conflicts(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """A deleted message cannot be edited back to life: 409."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    message = await tenant.send(alice, channel_id, "oops")
    url = f"/v1/messages/{message['id']}"
    assert (await http.delete(url, headers=alice.headers)).status_code == 204
    response = await http.patch(url, json={"text": "resurrected"}, headers=alice.headers)
    assert_problem(response, 409, "conflict")
    assert (await http.get(url, headers=alice.headers)).json()["text"] is None


async def test_edit_by_non_member_is_404(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """Someone outside the channel cannot tell the message exists, even by editing it."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    message = await tenant.send(alice, channel_id, "private")
    mallory = await tenant.user("mallory")
    hidden = await http.patch(
        f"/v1/messages/{message['id']}", json={"text": "x"}, headers=mallory.headers
    )
    missing = await http.patch(
        f"/v1/messages/{new_id(Kind.MESSAGE)}", json={"text": "x"}, headers=mallory.headers
    )
    assert without_instance(assert_problem(hidden, 404)) == without_instance(
        assert_problem(missing, 404)
    )


# --- delete -----------------------------------------------------------------------------


async def test_delete_own_message_is_soft(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """Deleting answers 204; the message keeps its place but loses text and mentions."""
    (alice, bob), channel_id = await _room(tenant, "alice", "bob")
    before = await tenant.send(bob, channel_id, "before")
    message = await tenant.send(alice, channel_id, "regret @bob", mentions=[bob.id])
    after = await tenant.send(bob, channel_id, "after")
    url = f"/v1/messages/{message['id']}"
    response = await http.delete(url, headers=alice.headers)
    assert response.status_code == 204
    assert response.content == b""

    fetched = await http.get(url, headers=bob.headers)
    assert fetched.status_code == 200
    body = fetched.json()
    assert body["deleted"] is True
    assert body["text"] is None
    assert body["mentions"] == []
    assert body["deleted_at"] is not None
    assert RFC3339_MS.match(body["deleted_at"])
    assert body["version"] == 2
    page = await list_messages(tenant, bob, channel_id)
    assert [m["id"] for m in page["data"]] == [before["id"], message["id"], after["id"]]
    assert page["data"][1]["deleted"] is True
    assert page["data"][1]["text"] is None


async def test_managers_may_delete_others_messages(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """The channel's owner and moderators can delete anyone's message."""
    (owner, moderator, member), channel_id = await _room(tenant, "owner", "mod", "member")
    await set_role(tenant, owner, channel_id, moderator, "moderator")
    for deleter in (owner, moderator):
        message = await tenant.send(member, channel_id, f"spam for {deleter.external_id}")
        url = f"/v1/messages/{message['id']}"
        assert (await http.delete(url, headers=deleter.headers)).status_code == 204
        assert (await http.get(url, headers=member.headers)).json()["deleted"] is True


async def test_deleting_someone_elses_message_is_recorded_as_a_moderation_change(
    http: httpx.AsyncClient, tenant: Tenant, events: MemorySink
) -> None:
    """A moderator's deletion is an admin.change naming the author; the author's own is not."""
    (owner, moderator, member), channel_id = await _room(tenant, "owner", "mod", "member")
    await set_role(tenant, owner, channel_id, moderator, "moderator")
    spam = await tenant.send(member, channel_id, "spam")
    mine = await tenant.send(member, channel_id, "mine")
    assert (await http.delete(f"/v1/messages/{spam['id']}", headers=moderator.headers)).is_success
    assert (await http.delete(f"/v1/messages/{mine['id']}", headers=member.headers)).is_success
    changes = [
        e
        for e in events.of("admin.change")
        if e.actor.app_id == tenant.app_id and e.details["change"] == "message.delete"
    ]
    (change,) = changes
    assert change.actor.subject == moderator.id
    assert change.resource == f"message:{spam['id']}"
    assert change.details == {
        "change": "message.delete",
        "channel_id": channel_id,
        "author_id": member.id,
    }


async def test_plain_member_cannot_delete_others_messages(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A plain member deleting someone else's message gets 403; the message stays."""
    (alice, bob, carol), channel_id = await _room(tenant, "alice", "bob", "carol")
    for author in (alice, carol):
        message = await tenant.send(author, channel_id, "keep me")
        url = f"/v1/messages/{message['id']}"
        assert_problem(await http.delete(url, headers=bob.headers), 403, "forbidden")
        fetched = (await http.get(url, headers=bob.headers)).json()
        assert fetched["deleted"] is False
        assert fetched["text"] == "keep me"


async def test_delete_twice_is_204(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """Deleting an already deleted message answers 204 again and changes nothing."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    message = await tenant.send(alice, channel_id, "gone")
    url = f"/v1/messages/{message['id']}"
    assert (await http.delete(url, headers=alice.headers)).status_code == 204
    first = (await http.get(url, headers=alice.headers)).json()
    assert (await http.delete(url, headers=alice.headers)).status_code == 204
    assert (await http.get(url, headers=alice.headers)).json() == first


async def test_delete_with_stale_if_match_fails(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """DELETE with an If-Match of an older version is 412; the current one works."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    message = await tenant.send(alice, channel_id, "v1")
    url = f"/v1/messages/{message['id']}"
    await http.patch(url, json={"text": "v2"}, headers=alice.headers)
    stale = await http.delete(url, headers={**alice.headers, "If-Match": '"1"'})
    assert_problem(stale, 412, "precondition-failed")
    assert (await http.get(url, headers=alice.headers)).json()["deleted"] is False
    current = await http.delete(url, headers={**alice.headers, "If-Match": '"2"'})
    assert current.status_code == 204


async def test_delete_by_non_member_or_other_app_is_404(
    http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Outsiders and other apps deleting a message get the missing-message 404."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    message = await tenant.send(alice, channel_id, "stay")
    url = f"/v1/messages/{message['id']}"
    mallory, eve = await tenant.user("mallory"), await other_tenant.user("eve")
    missing = await http.delete(f"/v1/messages/{new_id(Kind.MESSAGE)}", headers=mallory.headers)
    expected = without_instance(assert_problem(missing, 404))
    for outsider in (mallory, eve):
        answer = await http.delete(url, headers=outsider.headers)
        assert without_instance(assert_problem(answer, 404)) == expected
    assert (await http.get(url, headers=alice.headers)).json()["deleted"] is False


# --- concurrency ------------------------------------------------------------------------


async def test_concurrent_edit_and_delete_never_bring_the_text_back(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """An edit racing a deletion of the same message: either the edit lands first and the
    deletion removes its text, or the deletion wins and the edit is 409. A deleted message
    never shows text again."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    for round_ in range(15):
        message = await tenant.send(alice, channel_id, f"draft {round_}")
        url = f"/v1/messages/{message['id']}"
        edit, delete = await asyncio.gather(
            http.patch(url, json={"text": f"edited {round_}"}, headers=alice.headers),
            http.delete(url, headers=alice.headers),
        )
        assert delete.status_code == 204, delete.text
        assert edit.status_code in (200, 409), edit.text
        final = (await http.get(url, headers=alice.headers)).json()
        assert (final["deleted"], final["text"], final["html"]) == (True, None, None)
        assert final["version"] == (3 if edit.status_code == 200 else 2)


async def test_concurrent_edits_with_one_if_match_apply_once(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Edits sent together with If-Match of the current version: exactly one applies (200),
    the others find the message changed (412)."""
    (alice, _bob), channel_id = await _room(tenant, "alice", "bob")
    for round_ in range(8):
        message = await tenant.send(alice, channel_id, f"v1 {round_}")
        url = f"/v1/messages/{message['id']}"
        answers = await asyncio.gather(
            *(
                http.patch(
                    url, json={"text": f"v2 {n}"}, headers={**alice.headers, "If-Match": '"1"'}
                )
                for n in range(3)
            )
        )
        assert sorted(a.status_code for a in answers) == [200, 412, 412]
        winner = next(a.json() for a in answers if a.status_code == 200)
        assert (await http.get(url, headers=alice.headers)).json() == winner
        assert winner["version"] == 2
