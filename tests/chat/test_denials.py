"""Object-level refusals through the real server: the documented status, exactly one
``authz.decision`` event with the reason, and one more in ``bastion_authz_denials_total``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from prometheus_client import REGISTRY

from bastion.observe.events import MemorySink, SecurityEvent
from tests.support.roles import user_with_roles
from tests.support.tenants import Tenant, User


@dataclass(frozen=True, slots=True)
class Expected:
    """What one refusal must produce."""

    status: int
    caller: User
    tenant: Tenant
    permission: str
    resource: str
    reason: str


def _counted(reason: str, permission: str) -> float:
    labels = {"reason": reason, "permission": permission}
    return REGISTRY.get_sample_value("bastion_authz_denials_total", labels) or 0.0


def _decisions(events: MemorySink, tenant: Tenant, after: int) -> list[SecurityEvent]:
    return [
        e
        for e in events.of("authz.decision")
        if e.sequence > after and e.actor.app_id == tenant.app_id
    ]


def _last_sequence(events: MemorySink) -> int:
    return events.events[-1].sequence if events.events else 0


async def _assert_refused(
    events: MemorySink, call: Callable[[], Awaitable[httpx.Response]], expected: Expected
) -> None:
    before = _counted(expected.reason, expected.permission)
    mark = _last_sequence(events)
    response = await call()
    assert response.status_code == expected.status, response.text
    (decision,) = _decisions(events, expected.tenant, mark)
    assert decision.outcome == "denied"
    assert decision.reason == expected.reason
    assert decision.resource == expected.resource
    assert decision.details["permission"] == expected.permission
    assert decision.actor.subject == expected.caller.id
    assert decision.origin.request_id == response.headers["x-request-id"]
    assert _counted(expected.reason, expected.permission) == before + 1


async def test_a_non_member_reading_a_channels_messages_is_recorded_as_not_member(
    tenant: Tenant, events: MemorySink
) -> None:
    """404 for the outsider, and an authz.decision with reason not_member."""
    owner, outsider = await tenant.user("owner"), await tenant.user("outsider")
    cid = (await tenant.channel(owner, []))["id"]
    await _assert_refused(
        events,
        lambda: tenant.http.get(f"/v1/channels/{cid}/messages", headers=outsider.headers),
        Expected(404, outsider, tenant, "message:read", f"channel:{cid}", "not_member"),
    )


async def test_a_banned_member_posting_is_recorded_as_banned(
    tenant: Tenant, events: MemorySink
) -> None:
    """403 for the banned member's post, reason banned."""
    owner, bob = await tenant.user("owner"), await tenant.user("bob")
    cid = (await tenant.channel(owner, [bob]))["id"]
    ban = await tenant.http.put(f"/v1/channels/{cid}/bans/{bob.id}", json={}, headers=owner.headers)
    assert ban.status_code == 200, ban.text
    await _assert_refused(
        events,
        lambda: tenant.http.post(
            f"/v1/channels/{cid}/messages", json={"text": "hi"}, headers=bob.headers
        ),
        Expected(403, bob, tenant, "message:send", f"channel:{cid}", "banned"),
    )


async def test_an_acl_denied_post_in_a_broadcast_channel_is_recorded_as_acl_deny(
    tenant: Tenant, events: MemorySink
) -> None:
    """Everyone may post except Bob: Carol posts, Bob gets 403 with reason acl_deny."""
    owner, bob, carol = [await tenant.user(n) for n in ("owner", "bob", "carol")]
    cid = (await tenant.channel(owner, [bob, carol], type_="broadcast"))["id"]
    acl = {
        "entries": [
            {"subject": "*", "level": "write", "effect": "allow"},
            {"subject": f"user:{bob.id}", "level": "write", "effect": "deny"},
        ]
    }
    saved = await tenant.http.put(f"/v1/channels/{cid}/acl", json=acl, headers=owner.headers)
    assert saved.status_code == 200, saved.text
    await tenant.send(carol, cid, "allowed")
    await _assert_refused(
        events,
        lambda: tenant.http.post(
            f"/v1/channels/{cid}/messages", json={"text": "hi"}, headers=bob.headers
        ),
        Expected(403, bob, tenant, "message:send", f"channel:{cid}", "acl_deny"),
    )


async def test_a_muted_member_posting_is_recorded_as_read_only(
    tenant: Tenant, events: MemorySink
) -> None:
    """A read-only (muted) member's post: 403, reason read_only."""
    owner, bob = await tenant.user("owner"), await tenant.user("bob")
    cid = (await tenant.channel(owner, [bob]))["id"]
    mute = await tenant.http.put(
        f"/v1/channels/{cid}/mutes/{bob.id}", json={}, headers=owner.headers
    )
    assert mute.status_code == 200, mute.text
    await _assert_refused(
        events,
        lambda: tenant.http.post(
            f"/v1/channels/{cid}/messages", json={"text": "hi"}, headers=bob.headers
        ),
        Expected(403, bob, tenant, "message:send", f"channel:{cid}", "read_only"),
    )


async def test_a_member_deleting_anothers_message_is_recorded_as_not_owner(
    tenant: Tenant, events: MemorySink
) -> None:
    """403, reason not_owner, on the message and the permission it would need."""
    owner, bob = await tenant.user("owner"), await tenant.user("bob")
    cid = (await tenant.channel(owner, [bob]))["id"]
    mid = (await tenant.send(owner, cid, "mine"))["id"]
    await _assert_refused(
        events,
        lambda: tenant.http.delete(f"/v1/messages/{mid}", headers=bob.headers),
        Expected(403, bob, tenant, "message:delete:any", f"message:{mid}", "not_owner"),
    )


async def test_editing_anothers_message_is_recorded_as_not_owner(
    tenant: Tenant, events: MemorySink
) -> None:
    """403 on an edit of someone else's message, reason not_owner."""
    owner, bob = await tenant.user("owner"), await tenant.user("bob")
    cid = (await tenant.channel(owner, [bob]))["id"]
    mid = (await tenant.send(owner, cid, "mine"))["id"]
    await _assert_refused(
        events,
        lambda: tenant.http.patch(f"/v1/messages/{mid}", json={"text": "x"}, headers=bob.headers),
        Expected(403, bob, tenant, "message:edit:own", f"message:{mid}", "not_owner"),
    )


async def test_another_apps_channel_id_is_recorded_as_not_found(
    tenant: Tenant, other_tenant: Tenant, events: MemorySink
) -> None:
    """A channel id of another app: 404 like a missing one, recorded for the caller's app."""
    owner = await tenant.user("owner")
    cid = (await tenant.channel(owner, []))["id"]
    stranger = await other_tenant.user("stranger")
    await _assert_refused(
        events,
        lambda: other_tenant.http.get(f"/v1/channels/{cid}/messages", headers=stranger.headers),
        Expected(404, stranger, other_tenant, "message:read", f"channel:{cid}", "not_found"),
    )


async def test_a_message_in_a_hidden_channel_is_recorded_on_the_message(
    tenant: Tenant, events: MemorySink
) -> None:
    """GET of a message in a channel one is not in: 404, resource the message."""
    owner, outsider = await tenant.user("owner"), await tenant.user("outsider")
    cid = (await tenant.channel(owner, []))["id"]
    mid = (await tenant.send(owner, cid, "private"))["id"]
    await _assert_refused(
        events,
        lambda: tenant.http.get(f"/v1/messages/{mid}", headers=outsider.headers),
        Expected(404, outsider, tenant, "message:read", f"message:{mid}", "not_member"),
    )


async def test_a_moderator_outranked_is_recorded_as_rank(
    tenant: Tenant, events: MemorySink
) -> None:
    """A channel moderator removing the owner: 403, reason rank."""
    owner, mod = await tenant.user("owner"), await tenant.user("mod")
    cid = (await tenant.channel(owner, [mod]))["id"]
    promoted = await tenant.http.patch(
        f"/v1/channels/{cid}/members/{mod.id}", json={"role": "moderator"}, headers=owner.headers
    )
    assert promoted.status_code == 200, promoted.text
    await _assert_refused(
        events,
        lambda: tenant.http.delete(f"/v1/channels/{cid}/members/{owner.id}", headers=mod.headers),
        Expected(403, mod, tenant, "member:remove", f"channel:{cid}", "rank"),
    )


async def test_allowed_calls_and_app_wide_moderation_record_no_denial(
    tenant: Tenant, events: MemorySink
) -> None:
    """A member's read and an app moderator banning in a channel they are not in: no event."""
    owner, bob = await tenant.user("owner"), await tenant.user("bob")
    moderator = await user_with_roles(tenant, "appmod", "moderator")
    cid = (await tenant.channel(owner, [bob]))["id"]
    mark = _last_sequence(events)
    read = await tenant.http.get(f"/v1/channels/{cid}/messages", headers=bob.headers)
    assert read.status_code == 200
    ban = await tenant.http.put(
        f"/v1/channels/{cid}/bans/{bob.id}", json={}, headers=moderator.headers
    )
    assert ban.status_code == 200, ban.text
    assert _decisions(events, tenant, mark) == []


async def test_a_backend_asking_for_another_apps_user_is_recorded_as_not_found(
    tenant: Tenant, other_tenant: Tenant, events: MemorySink
) -> None:
    """Reading, patching or deactivating another app's user: 404 each, one decision each."""
    uid = (await tenant.user("someone")).id
    headers = await other_tenant.backend_headers()
    calls: list[tuple[str, Callable[[], Awaitable[httpx.Response]]]] = [
        ("user:read", lambda: other_tenant.http.get(f"/v1/users/{uid}", headers=headers)),
        (
            "user:write",
            lambda: other_tenant.http.patch(
                f"/v1/users/{uid}",
                json={"display_name": "taken over"},
                headers=headers,
            ),
        ),
        (
            "user:write",
            lambda: other_tenant.http.post(f"/v1/users/{uid}/deactivation", headers=headers),
        ),
    ]
    for permission, call in calls:
        before = _counted("not_found", permission)
        mark = _last_sequence(events)
        response = await call()
        assert response.status_code == 404, response.text
        (decision,) = _decisions(events, other_tenant, mark)
        assert (decision.reason, decision.resource) == ("not_found", f"user:{uid}")
        assert decision.details["permission"] == permission
        assert decision.actor.client_id == other_tenant.client_id
        assert _counted("not_found", permission) == before + 1
    assert (
        await tenant.http.get(f"/v1/users/{uid}", headers=await tenant.backend_headers())
    ).json()["display_name"] == "someone"
