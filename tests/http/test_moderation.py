"""Bans, mutes and channel ACLs through the real server, with the documented examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from bastion.observe.events import MemorySink
from tests.support.roles import user_with_roles
from tests.support.tenants import Tenant, User


async def _get(tenant: Tenant, path: str, user: User) -> httpx.Response:
    return await tenant.http.get(path, headers=user.headers)


async def _post_message(tenant: Tenant, channel_id: str, user: User) -> httpx.Response:
    return await tenant.http.post(
        f"/v1/channels/{channel_id}/messages", json={"text": "hello"}, headers=user.headers
    )


async def test_a_banned_member_can_no_longer_read_post_or_list_members(tenant: Tenant) -> None:
    """Ban: 403 on read, post and member list; gone from their channel list; unban restores
    the role they had."""
    owner, bob = await tenant.user("owner"), await tenant.user("bob")
    channel = await tenant.channel(owner, [bob])
    cid = channel["id"]
    ban = await tenant.http.put(f"/v1/channels/{cid}/bans/{bob.id}", json={}, headers=owner.headers)
    assert ban.status_code == 200, ban.text
    assert ban.json()["role"] == "banned"
    for path in (
        f"/v1/channels/{cid}",
        f"/v1/channels/{cid}/messages",
        f"/v1/channels/{cid}/members",
    ):
        refused = await _get(tenant, path, bob)
        assert refused.status_code == 403, path
        assert "banned" in refused.json()["detail"]
    assert (await _post_message(tenant, cid, bob)).status_code == 403
    listed = (await _get(tenant, "/v1/channels", bob)).json()["data"]
    assert cid not in {c["id"] for c in listed}
    leave = await tenant.http.delete(f"/v1/channels/{cid}/members/{bob.id}", headers=bob.headers)
    assert leave.status_code == 403
    readd = await tenant.http.post(
        f"/v1/channels/{cid}/members", json={"user_id": bob.id}, headers=owner.headers
    )
    assert readd.status_code == 409
    unban = await tenant.http.delete(f"/v1/channels/{cid}/bans/{bob.id}", headers=owner.headers)
    assert unban.status_code == 204
    member = await _get(tenant, f"/v1/channels/{cid}/members/{bob.id}", owner)
    assert member.json()["role"] == "member"
    assert (await _post_message(tenant, cid, bob)).status_code == 201


async def test_a_ban_with_expiry_ends_by_itself(tenant: Tenant) -> None:
    """A timed ban stops counting once past; the past is refused as an expiry."""
    owner, bob = await tenant.user("owner"), await tenant.user("bob")
    cid = (await tenant.channel(owner, [bob]))["id"]
    past = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    refused = await tenant.http.put(
        f"/v1/channels/{cid}/bans/{bob.id}", json={"expires_at": past}, headers=owner.headers
    )
    assert refused.status_code == 422
    soon = datetime.now(UTC) + timedelta(seconds=1)
    ban = await tenant.http.put(
        f"/v1/channels/{cid}/bans/{bob.id}",
        json={"expires_at": soon.isoformat()},
        headers=owner.headers,
    )
    assert ban.status_code == 200
    assert ban.json()["role_expires_at"] is not None
    assert (await _get(tenant, f"/v1/channels/{cid}", bob)).status_code == 403
    # The server clock is real: wait out the ban (1 s) rather than fake time.
    while datetime.now(UTC) <= soon:
        await _get(tenant, "/healthz", bob)
    assert (await _get(tenant, f"/v1/channels/{cid}", bob)).status_code == 200
    assert (await _post_message(tenant, cid, bob)).status_code == 201


async def test_mute_makes_read_only_and_unmute_restores(tenant: Tenant) -> None:
    """A muted member reads but cannot post; unmuting gives their role back."""
    owner, bob = await tenant.user("owner"), await tenant.user("bob")
    cid = (await tenant.channel(owner, [bob]))["id"]
    mute = await tenant.http.put(
        f"/v1/channels/{cid}/mutes/{bob.id}", json={}, headers=owner.headers
    )
    assert mute.json()["role"] == "read-only"
    assert (await _get(tenant, f"/v1/channels/{cid}/messages", bob)).status_code == 200
    assert (await _post_message(tenant, cid, bob)).status_code == 403
    unmute = await tenant.http.delete(f"/v1/channels/{cid}/mutes/{bob.id}", headers=owner.headers)
    assert unmute.status_code == 204
    assert (await _post_message(tenant, cid, bob)).status_code == 201
    again = await tenant.http.delete(f"/v1/channels/{cid}/mutes/{bob.id}", headers=owner.headers)
    assert again.status_code == 409


async def test_moderators_cannot_ban_upwards_and_members_cannot_ban(tenant: Tenant) -> None:
    """Channel rank rules hold for bans: a moderator cannot ban an owner or a moderator;
    a plain member cannot ban at all."""
    owner, mod, mod2, bob = [await tenant.user(n) for n in ("owner", "mod", "mod2", "bob")]
    cid = (await tenant.channel(owner, [mod, mod2, bob]))["id"]
    for user in (mod, mod2):
        await tenant.http.patch(
            f"/v1/channels/{cid}/members/{user.id}",
            json={"role": "moderator"},
            headers=owner.headers,
        )
    for target in (owner, mod2):
        response = await tenant.http.put(
            f"/v1/channels/{cid}/bans/{target.id}", json={}, headers=mod.headers
        )
        assert response.status_code == 403, target
    by_member = await tenant.http.put(
        f"/v1/channels/{cid}/bans/{mod.id}", json={}, headers=bob.headers
    )
    assert by_member.status_code == 403
    ok = await tenant.http.put(f"/v1/channels/{cid}/bans/{bob.id}", json={}, headers=mod.headers)
    assert ok.status_code == 200


async def test_app_moderators_ban_in_any_channel_members_of_other_channels_cannot(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    """channel:moderate:any reaches channels the moderator is not in, but not other apps."""
    owner, bob = await tenant.user("owner"), await tenant.user("bob")
    cid = (await tenant.channel(owner, [bob]))["id"]
    app_mod = await user_with_roles(tenant, "appmod", "moderator")
    stranger = await tenant.user("stranger")
    refused = await tenant.http.put(
        f"/v1/channels/{cid}/bans/{bob.id}", json={}, headers=stranger.headers
    )
    assert refused.status_code == 404
    ban = await tenant.http.put(
        f"/v1/channels/{cid}/bans/{bob.id}", json={}, headers=app_mod.headers
    )
    assert ban.status_code == 200, ban.text
    foreign_mod = await user_with_roles(other_tenant, "fmod", "moderator")
    cross = await other_tenant.http.delete(
        f"/v1/channels/{cid}/bans/{bob.id}", headers=foreign_mod.headers
    )
    assert cross.status_code == 404


async def test_broadcast_channel_where_only_listed_users_post(tenant: Tenant) -> None:
    """ACL example: in a broadcast channel, an allow of write lets one listed reader post."""
    owner, anna, ben = [await tenant.user(n) for n in ("owner", "anna", "ben")]
    cid = (await tenant.channel(owner, [anna, ben], type_="broadcast"))["id"]
    assert (await _post_message(tenant, cid, anna)).status_code == 403
    acl = {"entries": [{"subject": f"user:{anna.id}", "level": "write", "effect": "allow"}]}
    put = await tenant.http.put(f"/v1/channels/{cid}/acl", json=acl, headers=owner.headers)
    assert put.status_code == 200, put.text
    assert (await _post_message(tenant, cid, anna)).status_code == 201
    assert (await _post_message(tenant, cid, ben)).status_code == 403
    got = await tenant.http.get(f"/v1/channels/{cid}/acl", headers=owner.headers)
    assert got.json()["entries"] == acl["entries"]
    by_reader = await tenant.http.put(f"/v1/channels/{cid}/acl", json=acl, headers=anna.headers)
    assert by_reader.status_code == 403


async def test_read_only_auditor_on_one_channel(tenant: Tenant) -> None:
    """ACL example: role:auditor may read one channel (not others), never write, and the
    channel stays out of their list of memberships."""
    owner = await tenant.user("owner")
    watched = (await tenant.channel(owner, [], name="watched"))["id"]
    other = (await tenant.channel(owner, [], name="other"))["id"]
    await tenant.send(owner, watched, "for the record")
    auditor = await user_with_roles(tenant, "aud", "auditor", "member")
    assert (await _get(tenant, f"/v1/channels/{watched}", auditor)).status_code == 404
    acl = {
        "entries": [
            {"subject": "role:auditor", "level": "read", "effect": "allow"},
            {"subject": "role:auditor", "level": "write", "effect": "deny"},
        ]
    }
    put = await tenant.http.put(f"/v1/channels/{watched}/acl", json=acl, headers=owner.headers)
    assert put.status_code == 200
    got = await _get(tenant, f"/v1/channels/{watched}", auditor)
    assert got.status_code == 200
    assert got.json()["membership"] is None
    messages = (await _get(tenant, f"/v1/channels/{watched}/messages", auditor)).json()["data"]
    assert [m["text"] for m in messages] == ["for the record"]
    assert (await _get(tenant, f"/v1/channels/{other}", auditor)).status_code == 404
    assert (await _post_message(tenant, watched, auditor)).status_code == 403


async def test_deny_overrides_the_channel_role(tenant: Tenant) -> None:
    """A deny of write on an owner's own channel stops their posts: deny beats allow."""
    owner, bob = await tenant.user("owner"), await tenant.user("bob")
    cid = (await tenant.channel(owner, [bob]))["id"]
    acl = {"entries": [{"subject": f"user:{bob.id}", "level": "read", "effect": "deny"}]}
    await tenant.http.put(f"/v1/channels/{cid}/acl", json=acl, headers=owner.headers)
    assert (await _get(tenant, f"/v1/channels/{cid}", bob)).status_code == 403
    assert (await _post_message(tenant, cid, bob)).status_code == 403


async def test_invalid_acl_entries_are_refused(tenant: Tenant) -> None:
    """Subjects other than user:, role: and * are 422, as are unknown levels."""
    owner = await tenant.user("owner")
    cid = (await tenant.channel(owner, []))["id"]
    for entry in (
        {"subject": "group:x", "level": "read", "effect": "allow"},
        {"subject": "*", "level": "root", "effect": "allow"},
        {"subject": "*", "level": "read", "effect": "allow", "priority": 1},
    ):
        response = await tenant.http.put(
            f"/v1/channels/{cid}/acl", json={"entries": [entry]}, headers=owner.headers
        )
        assert response.status_code == 422, entry


async def test_moderation_changes_are_recorded_with_before_and_after(
    tenant: Tenant, events: MemorySink
) -> None:
    """Every ban, unban, mute and ACL change is an admin.change event."""
    owner, bob = await tenant.user("owner"), await tenant.user("bob")
    cid = (await tenant.channel(owner, [bob]))["id"]
    await tenant.http.put(f"/v1/channels/{cid}/bans/{bob.id}", json={}, headers=owner.headers)
    await tenant.http.delete(f"/v1/channels/{cid}/bans/{bob.id}", headers=owner.headers)
    acl = {"entries": [{"subject": "*", "level": "read", "effect": "deny"}]}
    await tenant.http.put(f"/v1/channels/{cid}/acl", json=acl, headers=owner.headers)
    changes = [e for e in events.of("admin.change") if e.actor.app_id == tenant.app_id]
    assert [e.details["change"] for e in changes] == ["member.ban", "member.unban", "acl.replace"]
    assert changes[0].details["before"] == "member"
    assert changes[0].details["after"] == "banned"
    assert changes[2].details["after"] == "*=deny:read"
    assert all(e.actor.subject == owner.id for e in changes)


async def test_search_leaves_out_channels_the_acl_or_a_ban_hides(tenant: Tenant) -> None:
    """Search lists only what the caller may read: no banned channel, no ACL-denied one."""
    owner, bob = await tenant.user("owner"), await tenant.user("bob")
    denied = (await tenant.channel(owner, [bob], name="denied"))["id"]
    banned = (await tenant.channel(owner, [bob], name="banned"))["id"]
    fine = (await tenant.channel(owner, [bob], name="fine"))["id"]
    for channel_id in (denied, banned, fine):
        await tenant.send(owner, channel_id, "quarterly numbers")
    acl = {"entries": [{"subject": f"user:{bob.id}", "level": "read", "effect": "deny"}]}
    await tenant.http.put(f"/v1/channels/{denied}/acl", json=acl, headers=owner.headers)
    await tenant.http.put(f"/v1/channels/{banned}/bans/{bob.id}", json={}, headers=owner.headers)
    found = await _get(tenant, "/v1/search/messages?q=quarterly", bob)
    assert found.status_code == 200
    assert {m["channel_id"] for m in found.json()["data"]} == {fine}
