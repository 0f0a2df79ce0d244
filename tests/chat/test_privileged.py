"""Reads of message text by non-members, per route: one message.read_privileged event with
the channel, count and route, kept in the audit log; members' reads record nothing."""

from __future__ import annotations

import httpx

from bastion.observe.events import MemorySink, SecurityEvent
from bastion.security import scopes
from tests.support.messaging import reaction_url
from tests.support.operators import operator_headers
from tests.support.tenants import Tenant, User

ACTION = "message.read_privileged"


async def _watched_channel(tenant: Tenant, level: str) -> tuple[User, User, User, str, list[str]]:
    """A channel with two messages, a member, and a non-member the ACL lets ``level`` it."""
    owner, bob, watcher = [await tenant.user(n) for n in ("owner", "bob", "watcher")]
    cid = (await tenant.channel(owner, [bob]))["id"]
    acl = {"entries": [{"subject": f"user:{watcher.id}", "level": level, "effect": "allow"}]}
    saved = await tenant.http.put(f"/v1/channels/{cid}/acl", json=acl, headers=owner.headers)
    assert saved.status_code == 200, saved.text
    sent = [(await tenant.send(owner, cid, text))["id"] for text in ("one", "two")]
    return owner, bob, watcher, cid, sent


def _reads(events: MemorySink, tenant: Tenant, after: int) -> list[SecurityEvent]:
    return [e for e in events.of(ACTION) if e.sequence > after and e.actor.app_id == tenant.app_id]


def _mark(events: MemorySink) -> int:
    return events.events[-1].sequence if events.events else 0


def _one_read(
    events: MemorySink, tenant: Tenant, response: httpx.Response, mark: int, route: str, count: int
) -> SecurityEvent:
    assert response.status_code == 200, response.text
    (read,) = _reads(events, tenant, mark)
    assert read.outcome == "success"
    assert read.details == {"count": count, "route": route}
    assert read.origin.request_id == response.headers["x-request-id"]
    return read


async def test_a_non_member_listing_messages_is_recorded_with_the_count(
    tenant: Tenant, events: MemorySink
) -> None:
    """GET /v1/channels/{id}/messages by an ACL reader: count = messages shown."""
    _, _, watcher, cid, _ = await _watched_channel(tenant, "read")
    mark = _mark(events)
    listed = await tenant.http.get(f"/v1/channels/{cid}/messages", headers=watcher.headers)
    read = _one_read(events, tenant, listed, mark, "/v1/channels/{channel_id}/messages", count=2)
    assert read.actor.subject == watcher.id
    assert read.resource == f"channel:{cid}"


async def test_a_non_member_getting_one_message_is_recorded(
    tenant: Tenant, events: MemorySink
) -> None:
    """GET /v1/messages/{id} by an ACL reader: count 1."""
    _, _, watcher, _, sent = await _watched_channel(tenant, "read")
    mark = _mark(events)
    got = await tenant.http.get(f"/v1/messages/{sent[0]}", headers=watcher.headers)
    _one_read(events, tenant, got, mark, "/v1/messages/{message_id}", count=1)


async def test_a_non_member_getting_the_channel_sees_its_last_message_and_is_recorded(
    tenant: Tenant, events: MemorySink
) -> None:
    """GET /v1/channels/{id} carries the last message: count 1."""
    _, _, watcher, cid, _ = await _watched_channel(tenant, "read")
    mark = _mark(events)
    got = await tenant.http.get(f"/v1/channels/{cid}", headers=watcher.headers)
    assert got.json()["last_message"]["text"] == "two"
    _one_read(events, tenant, got, mark, "/v1/channels/{channel_id}", count=1)


async def test_a_non_member_reacting_is_shown_the_message_and_is_recorded(
    tenant: Tenant, events: MemorySink
) -> None:
    """A PUT of a reaction by an ACL writer answers with the message: count 1. The DELETE
    answers 204 with no message, so it records no read."""
    _, _, watcher, _, sent = await _watched_channel(tenant, "write")
    url = reaction_url(sent[0], "👍")
    route = "/v1/messages/{message_id}/reactions/{reaction}"
    mark = _mark(events)
    added = await tenant.http.put(url, headers=watcher.headers)
    _one_read(events, tenant, added, mark, route, count=1)
    mark = _mark(events)
    removed = await tenant.http.delete(url, headers=watcher.headers)
    assert removed.status_code == 204, removed.text
    assert _reads(events, tenant, mark) == []


async def test_a_non_member_updating_the_channel_is_shown_its_last_message_and_recorded(
    tenant: Tenant, events: MemorySink
) -> None:
    """PATCH /v1/channels/{id} by an ACL moderator answers with the last message: count 1."""
    _, _, watcher, cid, _ = await _watched_channel(tenant, "moderate")
    mark = _mark(events)
    patched = await tenant.http.patch(
        f"/v1/channels/{cid}", json={"description": "watched"}, headers=watcher.headers
    )
    _one_read(events, tenant, patched, mark, "/v1/channels/{channel_id}", count=1)


async def test_members_reads_and_searches_record_nothing(
    tenant: Tenant, events: MemorySink
) -> None:
    """The member's list, get, channel and search answers: no message.read_privileged."""
    _, bob, _, cid, sent = await _watched_channel(tenant, "read")
    mark = _mark(events)
    for path in (
        f"/v1/channels/{cid}/messages",
        f"/v1/messages/{sent[0]}",
        f"/v1/channels/{cid}",
        "/v1/search/messages?q=two",
    ):
        response = await tenant.http.get(path, headers=bob.headers)
        assert response.status_code == 200, path
    assert _reads(events, tenant, mark) == []


async def test_a_non_member_seeing_no_text_records_nothing(
    tenant: Tenant, events: MemorySink
) -> None:
    """Deleted messages keep their place without text: nothing was read."""
    owner, _, watcher, cid, sent = await _watched_channel(tenant, "read")
    for message_id in sent:
        gone = await tenant.http.delete(f"/v1/messages/{message_id}", headers=owner.headers)
        assert gone.status_code == 204
    mark = _mark(events)
    listed = await tenant.http.get(f"/v1/channels/{cid}/messages", headers=watcher.headers)
    assert listed.status_code == 200
    assert len(listed.json()["data"]) == 2
    assert _reads(events, tenant, mark) == []


async def test_privileged_reads_are_kept_in_the_audit_log(tenant: Tenant) -> None:
    """The auditor API finds the event, with who read which channel through which route."""
    _, _, watcher, cid, _ = await _watched_channel(tenant, "read")
    listed = await tenant.http.get(f"/v1/channels/{cid}/messages", headers=watcher.headers)
    assert listed.status_code == 200
    auditor = await operator_headers(tenant, scopes.AUDIT_READ)
    found = await tenant.http.get("/v1/audit/events", params={"action": ACTION}, headers=auditor)
    assert found.status_code == 200, found.text
    (record,) = found.json()["data"]
    assert record["subject"] == watcher.id
    assert record["resource"] == f"channel:{cid}"
    assert record["details"]["count"] == 2
    assert record["details"]["route"] == "/v1/channels/{channel_id}/messages"
    assert record["request_id"] == listed.headers["x-request-id"]
