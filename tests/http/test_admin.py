"""The admin API through the real server: roles, the policy, escalation, audit events."""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY

from bastion.observe.events import MemorySink
from bastion.security.policy import DEFAULT_POLICY, PERMISSIONS
from tests.support.roles import user_with_roles
from tests.support.tenants import Tenant


async def test_permission_vocabulary_and_default_policy(tenant: Tenant) -> None:
    """An admin reads the vocabulary and the documented default policy."""
    admin = await user_with_roles(tenant, "root", "admin")
    listed = await tenant.http.get("/v1/admin/permissions", headers=admin.headers)
    assert listed.status_code == 200
    assert [p["name"] for p in listed.json()["data"]] == list(PERMISSIONS)
    policy = (await tenant.http.get("/v1/admin/policy", headers=admin.headers)).json()["data"]
    by_role = {r["role"]: set(r["permissions"]) for r in policy}
    assert by_role == {role: set(perms) for role, perms in DEFAULT_POLICY.items()}
    assert not any(r["customised"] for r in policy)


async def test_admin_assigns_roles_and_the_change_applies_at_once(
    tenant: Tenant, events: MemorySink
) -> None:
    """A member cannot read the audit-only route set; once made moderator, the role counts."""
    admin = await user_with_roles(tenant, "root", "admin")
    bob = await user_with_roles(tenant, "bob")
    url = f"/v1/admin/roles/{bob.id}"
    before = (await tenant.http.get(url, headers=admin.headers)).json()
    assert before == {"user_id": bob.id, "roles": ["member"], "assigned": False}
    changed = await tenant.http.put(
        url, json={"roles": ["member", "moderator"]}, headers=admin.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["roles"] == ["member", "moderator"]
    event = events.of("admin.change")[-1]
    assert event.actor.subject == admin.id
    assert event.resource == f"user:{bob.id}"
    assert event.details == {
        "change": "role.assign",
        "before": "member",
        "after": "member moderator",
    }
    listed = (await tenant.http.get("/v1/admin/roles", headers=admin.headers)).json()
    assert {a["user_id"] for a in listed["data"]} == {admin.id, bob.id}


async def test_members_and_moderators_cannot_reach_the_admin_api(
    tenant: Tenant, events: MemorySink
) -> None:
    """Function level: the admin routes refuse members and moderators (403, recorded and
    counted in bastion_authz_denials_total)."""
    labels = {"reason": "role_lacks_permission", "permission": "policy:read"}
    counted = REGISTRY.get_sample_value("bastion_authz_denials_total", labels) or 0.0
    mod = await user_with_roles(tenant, "mod", "moderator")
    member = await user_with_roles(tenant, "m")
    for caller in (mod, member):
        for method, path, body in (
            ("GET", "/v1/admin/policy", None),
            ("PUT", f"/v1/admin/roles/{caller.id}", {"roles": ["admin"]}),
            ("PUT", "/v1/admin/policy/roles/member", {"permissions": ["audit:read"]}),
        ):
            response = await tenant.http.request(method, path, json=body, headers=caller.headers)
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["type"].endswith("/forbidden")
    denials = [
        e
        for e in events.of("authz.decision")
        if e.outcome == "denied" and e.actor.app_id == tenant.app_id
    ]
    assert {e.reason for e in denials} == {"role_lacks_permission"}
    assert {e.details["permission"] for e in denials} >= {"policy:read", "role:manage"}
    assert REGISTRY.get_sample_value("bastion_authz_denials_total", labels) == counted + 2


async def test_no_role_grants_what_its_granter_lacks(tenant: Tenant, events: MemorySink) -> None:
    """A custom role holding role:manage cannot hand out admin, nor define a stronger role."""
    admin = await user_with_roles(tenant, "root", "admin")
    defined = await tenant.http.put(
        "/v1/admin/policy/roles/team-lead",
        json={"permissions": ["role:manage", "role:read", "policy:manage", "channel:read"]},
        headers=admin.headers,
    )
    assert defined.status_code == 200, defined.text
    lead = await user_with_roles(tenant, "lead", "team-lead")
    victim = await user_with_roles(tenant, "v")
    escalate = await tenant.http.put(
        f"/v1/admin/roles/{lead.id}", json={"roles": ["team-lead", "admin"]}, headers=lead.headers
    )
    assert escalate.status_code == 403
    wider = await tenant.http.put(
        "/v1/admin/policy/roles/team-lead",
        json={"permissions": ["role:manage", "audit:read"]},
        headers=lead.headers,
    )
    assert wider.status_code == 403
    assert "audit:read" in wider.json()["detail"]
    # Within its own permissions the lead may act: making a member a lead as well is fine,
    # but taking away their member role (stronger in places than the lead's) is not.
    ok = await tenant.http.put(
        f"/v1/admin/roles/{victim.id}",
        json={"roles": ["member", "team-lead"]},
        headers=lead.headers,
    )
    assert ok.status_code == 200, ok.text
    demote = await tenant.http.put(
        f"/v1/admin/roles/{victim.id}", json={"roles": ["team-lead"]}, headers=lead.headers
    )
    assert demote.status_code == 403
    escalations = [
        e
        for e in events.of("authz.decision")
        if e.reason == "escalation" and e.actor.app_id == tenant.app_id
    ]
    assert len(escalations) == 3


async def test_admin_role_and_service_role_are_fixed(tenant: Tenant) -> None:
    """Nobody narrows admin (no lock-out) or hands a user the backend's service role."""
    admin = await user_with_roles(tenant, "root", "admin")
    narrowed = await tenant.http.put(
        "/v1/admin/policy/roles/admin", json={"permissions": []}, headers=admin.headers
    )
    assert narrowed.status_code == 403
    service = await tenant.http.put(
        f"/v1/admin/roles/{admin.id}", json={"roles": ["service"]}, headers=admin.headers
    )
    assert service.status_code == 403


async def test_invalid_policy_changes_are_422(tenant: Tenant) -> None:
    """Unknown permissions, bad role names and unknown roles are validation errors."""
    admin = await user_with_roles(tenant, "root", "admin")
    cases = [
        ("PUT", "/v1/admin/policy/roles/member", {"permissions": ["root:everything"]}),
        ("PUT", "/v1/admin/policy/roles/Bad_Name", {"permissions": []}),
        ("PUT", f"/v1/admin/roles/{admin.id}", {"roles": ["nosuchrole"]}),
        ("PUT", "/v1/admin/policy/roles/member", {"permissions": [], "extra": 1}),
    ]
    for method, path, body in cases:
        response = await tenant.http.request(method, path, json=body, headers=admin.headers)
        assert response.status_code == 422, (path, body, response.text)


async def test_customised_role_narrows_and_reset_restores(tenant: Tenant) -> None:
    """Taking message:send from members stops sends at once; a reset gives it back."""
    admin = await user_with_roles(tenant, "root", "admin")
    alice = await tenant.user("alice")
    channel = await tenant.channel(alice, [])
    narrowed = sorted(DEFAULT_POLICY["member"] - {"message:send"})
    response = await tenant.http.put(
        "/v1/admin/policy/roles/member", json={"permissions": narrowed}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    send = await tenant.http.post(
        f"/v1/channels/{channel['id']}/messages", json={"text": "hi"}, headers=alice.headers
    )
    assert send.status_code == 403
    policy = (await tenant.http.get("/v1/admin/policy", headers=admin.headers)).json()["data"]
    assert {r["role"]: r["customised"] for r in policy}["member"] is True
    reset = await tenant.http.delete("/v1/admin/policy/roles/member", headers=admin.headers)
    assert reset.status_code == 204
    again = await tenant.http.post(
        f"/v1/channels/{channel['id']}/messages", json={"text": "hi"}, headers=alice.headers
    )
    assert again.status_code == 201
    missing = await tenant.http.delete("/v1/admin/policy/roles/member", headers=admin.headers)
    assert missing.status_code == 404


async def test_roles_of_another_app_are_invisible(tenant: Tenant, other_tenant: Tenant) -> None:
    """Cross-tenant: an admin of one app cannot read or set roles of another app's user."""
    admin = await user_with_roles(tenant, "root", "admin")
    stranger = await other_tenant.user("stranger")
    for method, body in (("GET", None), ("PUT", {"roles": ["moderator"]})):
        response = await tenant.http.request(
            method, f"/v1/admin/roles/{stranger.id}", json=body, headers=admin.headers
        )
        assert response.status_code == 404


async def test_a_token_without_admin_scope_cannot_use_an_admin_role(tenant: Tenant) -> None:
    """Scopes narrow roles: an admin's chat-only token gets insufficient_scope."""
    admin = await user_with_roles(tenant, "root", "admin")
    chat_only = await tenant.user_token(admin.id)
    response = await tenant.http.get(
        "/v1/admin/policy", headers={"Authorization": f"Bearer {chat_only}"}
    )
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


async def test_backend_tokens_hold_the_service_role_only(
    tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """A backend token manages users but reaches neither chat nor the admin API."""
    headers = await tenant.backend_headers()
    assert (await http.get("/v1/users", headers=headers)).status_code == 200
    for path in ("/v1/channels", "/v1/admin/policy"):
        assert (await http.get(path, headers=headers)).status_code == 403


async def test_private_user_fields_follow_the_role(tenant: Tenant, http: httpx.AsyncClient) -> None:
    """BOPLA: a backend whose service role loses user:read:private no longer sees
    external ids; the user still sees their own."""
    admin = await user_with_roles(tenant, "root", "admin")
    alice = await tenant.user("alice@example.com")
    backend = await tenant.backend_headers()
    seen = (await http.get(f"/v1/users/{alice.id}", headers=backend)).json()
    assert seen["external_id"] == "alice@example.com"
    narrowed = sorted(DEFAULT_POLICY["service"] - {"user:read:private"})
    response = await http.put(
        "/v1/admin/policy/roles/service", json={"permissions": narrowed}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    hidden = (await http.get(f"/v1/users/{alice.id}", headers=backend)).json()
    assert "external_id" not in hidden
    listed = (await http.get("/v1/users", headers=backend)).json()["data"]
    assert all("external_id" not in u for u in listed)
    own = (await http.get("/v1/users/me", headers=alice.headers)).json()
    assert own["external_id"] == "alice@example.com"
