"""Refusals of WebSocket commands are recorded like REST ones: an ``error`` frame with the
problem, exactly one ``authz.decision`` event with the reason, and one more in
``bastion_authz_denials_total``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import REGISTRY

from bastion.observe.events import MemorySink, SecurityEvent
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User
from tests.support.ws import socket


@dataclass(frozen=True, slots=True)
class Expected:
    """What one refused command must produce."""

    status: int
    permission: str
    resource: str
    reason: str


def _counted(expected: Expected) -> float:
    labels = {"reason": expected.reason, "permission": expected.permission}
    return REGISTRY.get_sample_value("bastion_authz_denials_total", labels) or 0.0


def _decisions(events: MemorySink, tenant: Tenant, after: int) -> list[SecurityEvent]:
    return [
        e
        for e in events.of("authz.decision")
        if e.sequence > after and e.actor.app_id == tenant.app_id
    ]


async def assert_refused(
    server: ServerThread,
    events: MemorySink,
    tenant: Tenant,
    caller: User,
    command: dict[str, Any],
    expected: Expected,
) -> None:
    """Send ``command`` on the caller's socket: refused, recorded once (with the socket's
    handshake request id), counted once."""
    before = _counted(expected)
    mark = events.events[-1].sequence if events.events else 0
    request_id = f"ws-denial-{secrets.token_hex(8)}"
    headers = {"X-Request-Id": request_id}
    async with socket(server.ws_url, caller.token, headers=headers) as sock:
        await sock.send({**command, "id": "cmd"})
        answer = await sock.expect("error")
    assert answer["id"] == "cmd"
    assert answer["data"]["status"] == expected.status
    (decision,) = _decisions(events, tenant, mark)
    assert decision.outcome == "denied"
    assert decision.reason == expected.reason
    assert decision.resource == expected.resource
    assert decision.details["permission"] == expected.permission
    assert decision.actor.subject == caller.id
    assert decision.origin.request_id == request_id
    assert _counted(expected) == before + 1


def typing(channel_id: str) -> dict[str, Any]:
    """A typing command."""
    return {"type": "typing", "data": {"channel_id": channel_id, "state": "start"}}


def read(channel_id: str, message_id: str) -> dict[str, Any]:
    """A read-receipt command."""
    return {"type": "read", "data": {"channel_id": channel_id, "message_id": message_id}}


async def test_typing_as_a_read_only_member_is_recorded_as_read_only(
    server: ServerThread, tenant: Tenant, events: MemorySink
) -> None:
    """A muted member typing: 403, reason read_only, permission message:send."""
    owner, bob = await tenant.user("owner"), await tenant.user("bob")
    cid = (await tenant.channel(owner, [bob]))["id"]
    muted = await tenant.http.put(
        f"/v1/channels/{cid}/mutes/{bob.id}", json={}, headers=owner.headers
    )
    assert muted.status_code == 200, muted.text
    await assert_refused(
        server,
        events,
        tenant,
        bob,
        typing(cid),
        Expected(403, "message:send", f"channel:{cid}", "read_only"),
    )


async def test_typing_in_a_broadcast_as_its_audience_is_recorded_as_channel_role(
    server: ServerThread, tenant: Tenant, events: MemorySink
) -> None:
    """A broadcast channel's members only read: typing there is 403, reason channel_role."""
    owner, reader = await tenant.user("owner"), await tenant.user("reader")
    cid = (await tenant.channel(owner, [reader], type_="broadcast"))["id"]
    await assert_refused(
        server,
        events,
        tenant,
        reader,
        typing(cid),
        Expected(403, "message:send", f"channel:{cid}", "channel_role"),
    )


async def test_typing_in_a_channel_one_is_not_in_is_recorded_as_not_member(
    server: ServerThread, tenant: Tenant, events: MemorySink
) -> None:
    """404 like a missing channel, reason not_member."""
    owner, outsider = await tenant.user("owner"), await tenant.user("outsider")
    cid = (await tenant.channel(owner, []))["id"]
    await assert_refused(
        server,
        events,
        tenant,
        outsider,
        typing(cid),
        Expected(404, "message:send", f"channel:{cid}", "not_member"),
    )


async def test_typing_under_an_acl_deny_of_write_is_recorded_as_acl_deny(
    server: ServerThread, tenant: Tenant, events: MemorySink
) -> None:
    """A member whose writing an ACL denies: 403, reason acl_deny."""
    owner, bob = await tenant.user("owner"), await tenant.user("bob")
    cid = (await tenant.channel(owner, [bob]))["id"]
    entry = {"subject": f"user:{bob.id}", "level": "write", "effect": "deny"}
    saved = await tenant.http.put(
        f"/v1/channels/{cid}/acl", json={"entries": [entry]}, headers=owner.headers
    )
    assert saved.status_code == 200, saved.text
    await assert_refused(
        server,
        events,
        tenant,
        bob,
        typing(cid),
        Expected(403, "message:send", f"channel:{cid}", "acl_deny"),
    )


@pytest.mark.parametrize("banned", [False, True], ids=["outsider", "banned"])
async def test_read_receipts_refused_are_recorded(
    server: ServerThread, tenant: Tenant, events: MemorySink, banned: bool
) -> None:
    """`read` by a non-member (404, not_member) or a banned member (403, banned), as
    receipt:write."""
    owner, bob = await tenant.user("owner"), await tenant.user("bob")
    cid = (await tenant.channel(owner, [bob] if banned else []))["id"]
    mid = (await tenant.send(owner, cid, "hello"))["id"]
    if banned:
        ban = await tenant.http.put(
            f"/v1/channels/{cid}/bans/{bob.id}", json={}, headers=owner.headers
        )
        assert ban.status_code == 200, ban.text
    expected = (
        Expected(403, "receipt:write", f"channel:{cid}", "banned")
        if banned
        else Expected(404, "receipt:write", f"channel:{cid}", "not_member")
    )
    await assert_refused(server, events, tenant, bob, read(cid, mid), expected)
