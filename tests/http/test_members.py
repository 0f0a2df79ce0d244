"""Channel members through the real HTTP API: add, list, get, change role, remove, leave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from bastion.core.ids import Kind, new_id
from tests.conftest import Databases, make_settings, start_server
from tests.support.paging import walk_both_ways
from tests.support.problem_checks import error_fields, problem, same_not_found
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User, new_tenant

GROUP_CAP = 3
BROADCAST_CAP = 4
INITIAL_CAP = 2


@pytest.fixture(scope="module")
def small_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A second server whose groups hold 3 members and broadcast channels 4, and where a
    channel is created with at most 2 members besides its creator."""
    settings = make_settings(
        tmp_path_factory.mktemp("small"),
        databases.new(),
        limits={
            "group_max_members": GROUP_CAP,
            "broadcast_max_members": BROADCAST_CAP,
            "initial_members_max": INITIAL_CAP,
        },
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture
async def small_tenant(small_server: ServerThread) -> AsyncIterator[Tenant]:
    """A fresh app on the small server."""
    async with httpx.AsyncClient(base_url=small_server.base_url, timeout=10) as client:
        yield new_tenant(small_server, client)


async def users(tenant: Tenant, *names: str) -> list[User]:
    """Create one user per name."""
    return [await tenant.user(name) for name in names]


async def add(
    tenant: Tenant, channel_id: str, actor: User, user: User | str, role: str | None = None
) -> httpx.Response:
    """POST a new member as ``actor``."""
    body: dict[str, Any] = {"user_id": user if isinstance(user, str) else user.id}
    if role is not None:
        body["role"] = role
    return await tenant.http.post(
        f"/v1/channels/{channel_id}/members", json=body, headers=actor.headers
    )


async def set_role(
    tenant: Tenant, channel_id: str, actor: User, user: User, role: str
) -> httpx.Response:
    """PATCH a member's role as ``actor``."""
    return await tenant.http.patch(
        f"/v1/channels/{channel_id}/members/{user.id}", json={"role": role}, headers=actor.headers
    )


async def remove(tenant: Tenant, channel_id: str, actor: User, user: User) -> httpx.Response:
    """DELETE a membership as ``actor`` (leaving, when ``user`` is ``actor``)."""
    return await tenant.http.delete(
        f"/v1/channels/{channel_id}/members/{user.id}", headers=actor.headers
    )


async def roles(tenant: Tenant, channel_id: str, viewer: User) -> dict[str, str]:
    """Every member's role, as ``viewer`` sees the first page of the member list."""
    response = await tenant.http.get(f"/v1/channels/{channel_id}/members", headers=viewer.headers)
    assert response.status_code == 200, response.text
    return {m["user_id"]: m["role"] for m in response.json()["data"]}


async def member_count(tenant: Tenant, channel_id: str, viewer: User) -> int:
    """The channel's member count as ``viewer`` reads it."""
    response = await tenant.http.get(f"/v1/channels/{channel_id}", headers=viewer.headers)
    assert response.status_code == 200, response.text
    count: int = response.json()["member_count"]
    return count


# --- add ------------------------------------------------------------------------------------


async def test_owner_adds_a_member(tenant: Tenant) -> None:
    """201 with Location; the new member counts, sees the channel, and has the default role."""
    alice, bob, carol = await users(tenant, "alice", "bob", "carol")
    channel = await tenant.channel(alice, [bob])
    response = await add(tenant, channel["id"], alice, carol)
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/v1/channels/{channel['id']}/members/{carol.id}"
    assert (body["channel_id"], body["user_id"], body["role"]) == (
        channel["id"],
        carol.id,
        "member",
    )
    assert body["joined_at"].endswith("Z")
    assert (body["last_read_message_id"], body["last_read_at"]) == (None, None)
    assert await member_count(tenant, channel["id"], alice) == 3
    fetched = await tenant.http.get(response.headers["location"], headers=carol.headers)
    assert fetched.json() == body
    mine = (await tenant.http.get("/v1/channels", headers=carol.headers)).json()["data"]
    assert [(c["id"], c["membership"]["role"]) for c in mine] == [(channel["id"], "member")]


async def test_owner_adds_with_any_role(tenant: Tenant) -> None:
    """An owner may add owners, moderators and read-only members."""
    alice, bob, carol, dave = await users(tenant, "alice", "bob", "carol", "dave")
    channel = await tenant.channel(alice, [])
    for user, role in ((bob, "owner"), (carol, "moderator"), (dave, "read-only")):
        response = await add(tenant, channel["id"], alice, user, role)
        assert (response.status_code, response.json()["role"]) == (201, role)
    assert await roles(tenant, channel["id"], dave) == {
        alice.id: "owner",
        bob.id: "owner",
        carol.id: "moderator",
        dave.id: "read-only",
    }


async def test_moderator_adds_only_lower_roles(tenant: Tenant) -> None:
    """A moderator adds members and read-only members, never moderators or owners."""
    alice, mod, u1, u2, u3, u4 = await users(tenant, "alice", "mod", "u1", "u2", "u3", "u4")
    channel = await tenant.channel(alice, [])
    assert (await add(tenant, channel["id"], alice, mod, "moderator")).status_code == 201
    assert (await add(tenant, channel["id"], mod, u1)).status_code == 201
    assert (await add(tenant, channel["id"], mod, u2, "read-only")).status_code == 201
    problem(await add(tenant, channel["id"], mod, u3, "moderator"), 403, "forbidden")
    problem(await add(tenant, channel["id"], mod, u4, "owner"), 403, "forbidden")
    assert await roles(tenant, channel["id"], alice) == {
        alice.id: "owner",
        mod.id: "moderator",
        u1.id: "member",
        u2.id: "read-only",
    }
    assert await member_count(tenant, channel["id"], alice) == 4


async def test_members_and_read_only_cannot_add(tenant: Tenant) -> None:
    """Plain and read-only members cannot add anyone, whatever the role asked for."""
    alice, bob, ro, carol = await users(tenant, "alice", "bob", "ro", "carol")
    channel = await tenant.channel(alice, [bob])
    assert (await add(tenant, channel["id"], alice, ro, "read-only")).status_code == 201
    for actor in (bob, ro):
        for role in (None, "read-only", "owner"):
            problem(await add(tenant, channel["id"], actor, carol, role), 403, "forbidden")
    assert carol.id not in await roles(tenant, channel["id"], alice)
    problem(await tenant.http.get(f"/v1/channels/{channel['id']}", headers=carol.headers), 404)


async def test_adding_an_existing_member_is_409(tenant: Tenant) -> None:
    """A user already in the channel (including the owner) cannot be added again."""
    alice, bob = await users(tenant, "alice", "bob")
    channel = await tenant.channel(alice, [bob])
    problem(await add(tenant, channel["id"], alice, bob), 409, "conflict")
    problem(await add(tenant, channel["id"], alice, alice, "member"), 409, "conflict")
    assert await roles(tenant, channel["id"], alice) == {alice.id: "owner", bob.id: "member"}
    assert await member_count(tenant, channel["id"], alice) == 2


async def test_adding_to_a_direct_channel_is_409(tenant: Tenant) -> None:
    """A direct channel always has exactly its two members."""
    alice, bob, carol = await users(tenant, "alice", "bob", "carol")
    channel = await tenant.channel(alice, [bob], type_="direct")
    problem(await add(tenant, channel["id"], alice, carol), 409, "conflict")
    assert await member_count(tenant, channel["id"], bob) == 2


async def test_adding_to_an_archived_channel_is_409(tenant: Tenant) -> None:
    """Membership of an archived channel is frozen."""
    alice, bob = await users(tenant, "alice", "bob")
    channel = await tenant.channel(alice, [])
    archived = await tenant.http.patch(
        f"/v1/channels/{channel['id']}", json={"archived": True}, headers=alice.headers
    )
    assert archived.status_code == 200
    problem(await add(tenant, channel["id"], alice, bob), 409, "conflict")


async def test_an_archived_channel_keeps_its_roles_but_lets_members_go(tenant: Tenant) -> None:
    """Archived: role changes are 409 (roles are frozen with the channel); leaving,
    removing a member and bans still work, so nobody is kept in an archive against their
    will and nobody unwanted keeps reading it."""
    alice, bob, carol, dave = await users(tenant, "alice", "bob", "carol", "dave")
    channel = await tenant.channel(alice, [bob, carol, dave])
    cid = channel["id"]
    archived = await tenant.http.patch(
        f"/v1/channels/{cid}", json={"archived": True}, headers=alice.headers
    )
    assert archived.status_code == 200
    for target, role in ((bob, "moderator"), (bob, "read-only"), (alice, "owner")):
        problem(await set_role(tenant, cid, alice, target, role), 409, "conflict")
    assert (await remove(tenant, cid, bob, bob)).status_code == 204
    assert (await remove(tenant, cid, alice, carol)).status_code == 204
    assert await roles(tenant, cid, dave) == {alice.id: "owner", dave.id: "member"}
    banned = await tenant.http.put(
        f"/v1/channels/{cid}/bans/{dave.id}", json={}, headers=alice.headers
    )
    assert (banned.status_code, banned.json()["role"]) == (200, "banned")


async def test_re_adding_a_member_of_a_full_group_is_409(small_tenant: Tenant) -> None:
    """A full group answers "already a member" (409), not "full" (422), for its own members."""
    owner, a, b = await users(small_tenant, "owner", "a", "b")
    channel = await small_tenant.channel(owner, [a, b])
    assert channel["member_count"] == GROUP_CAP
    for user in (a, owner):
        problem(await add(small_tenant, channel["id"], owner, user), 409, "conflict")
    assert await member_count(small_tenant, channel["id"], owner) == GROUP_CAP


async def test_only_active_users_of_this_app_can_be_added(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    """Deactivated, missing and other apps' users are refused alike on body.user_id."""
    alice, gone = await users(tenant, "alice", "gone")
    channel = await tenant.channel(alice, [])
    assert (
        await tenant.http.post(
            f"/v1/users/{gone.id}/deactivation", headers=await tenant.backend_headers()
        )
    ).status_code == 200
    stranger = await other_tenant.user("stranger")
    bodies = []
    for candidate in (gone.id, stranger.id, new_id(Kind.USER)):
        response = await add(tenant, channel["id"], alice, candidate)
        body = problem(response, 422, "validation-failed")
        assert error_fields(response) == {"body.user_id"}
        bodies.append({k: v for k, v in body.items() if k != "instance"})
    assert bodies[0] == bodies[1] == bodies[2]
    assert await member_count(tenant, channel["id"], alice) == 1
    theirs = await other_tenant.http.get("/v1/channels", headers=stranger.headers)
    assert theirs.json()["data"] == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"body.user_id"}),
        ({"user_id": "bob"}, {"body.user_id"}),
        ({"user_id": "ch_01J5ZZZZZZZZZZZZZZZZZZZZZZ"}, {"body.user_id"}),
        ({"user_id": 5}, {"body.user_id"}),
        ({"user_id": "bob", "role": "admin"}, {"body.user_id", "body.role"}),
        ({"user_id": "{bob}", "role": "OWNER"}, {"body.role"}),
        ({"user_id": "{bob}", "muted": True}, {"body.muted"}),
    ],
)
async def test_malformed_add_body_is_422(
    tenant: Tenant, body: dict[str, Any], fields: set[str]
) -> None:
    """Invalid and unknown fields are listed; nobody is added."""
    alice, bob = await users(tenant, "alice", "bob")
    channel = await tenant.channel(alice, [])
    if body.get("user_id") == "{bob}":
        body = {**body, "user_id": bob.id}
    response = await tenant.http.post(
        f"/v1/channels/{channel['id']}/members", json=body, headers=alice.headers
    )
    assert error_fields(response) == fields
    assert await member_count(tenant, channel["id"], alice) == 1


# --- limits (on a second server with small caps) --------------------------------------------


async def test_group_member_limit_is_422_limit_exceeded(small_tenant: Tenant) -> None:
    """A full group refuses another member with limit-exceeded; a free seat can be refilled."""
    owner, a, b, c = await users(small_tenant, "owner", "a", "b", "c")
    channel = await small_tenant.channel(owner, [a])
    assert (await add(small_tenant, channel["id"], owner, b)).status_code == 201
    full = await add(small_tenant, channel["id"], owner, c)
    body = problem(full, 422, "limit-exceeded")
    assert [e["field"] for e in body["errors"]] == ["body.user_id"]
    assert str(GROUP_CAP) in body["detail"]
    assert await member_count(small_tenant, channel["id"], owner) == GROUP_CAP
    assert (await remove(small_tenant, channel["id"], a, a)).status_code == 204
    assert (await add(small_tenant, channel["id"], owner, c)).status_code == 201
    assert await member_count(small_tenant, channel["id"], owner) == GROUP_CAP


async def test_group_member_limit_holds_at_creation(small_tenant: Tenant) -> None:
    """A group cannot be created with more members than a group may hold."""
    owner, a, b, c = await users(small_tenant, "owner", "a", "b", "c")
    response = await small_tenant.http.post(
        "/v1/channels",
        json={"type": "group", "name": "crowd", "members": [a.id, b.id, c.id]},
        headers=owner.headers,
    )
    body = problem(response, 422, "limit-exceeded")
    assert [e["field"] for e in body["errors"]] == ["body.members"]
    listed = await small_tenant.http.get("/v1/channels", headers=owner.headers)
    assert listed.json()["data"] == []
    exactly_full = await small_tenant.channel(owner, [a, b])
    assert exactly_full["member_count"] == GROUP_CAP


async def test_members_named_at_creation_are_limited(small_tenant: Tenant) -> None:
    """limits.initial_members_max caps the members named at creation (422 on body.members,
    even where the channel could hold more); more can be added one by one afterwards."""
    owner, a, b, c = await users(small_tenant, "owner", "a", "b", "c")
    crowded = await small_tenant.http.post(
        "/v1/channels",
        json={"type": "broadcast", "name": "crowd", "members": [a.id, b.id, c.id]},
        headers=owner.headers,
    )
    body = problem(crowded, 422, "limit-exceeded")
    assert error_fields(crowded) == {"body.members"}
    assert body["detail"] == f"At most {INITIAL_CAP} members at creation."
    assert (await small_tenant.http.get("/v1/channels", headers=owner.headers)).json()["data"] == []
    channel = await small_tenant.channel(owner, [a, b], type_="broadcast")
    assert (await add(small_tenant, channel["id"], owner, c)).status_code == 201
    assert await member_count(small_tenant, channel["id"], owner) == 4


async def test_broadcast_channels_have_their_own_limit(small_tenant: Tenant) -> None:
    """Broadcast channels are capped by broadcast_max_members, not the group limit."""
    owner, a, b, c, d = await users(small_tenant, "owner", "a", "b", "c", "d")
    channel = await small_tenant.channel(owner, [a, b], type_="broadcast")
    assert (await add(small_tenant, channel["id"], owner, c)).status_code == 201
    problem(await add(small_tenant, channel["id"], owner, d), 422, "limit-exceeded")
    assert await member_count(small_tenant, channel["id"], owner) == BROADCAST_CAP


# --- list and get ---------------------------------------------------------------------------


async def test_list_members_pages_by_user_id(tenant: Tenant) -> None:
    """limit/after walk every member once in user id order; the last page has no cursor."""
    alice, *others = await users(tenant, "alice", "b", "c", "d", "e")
    channel = await tenant.channel(alice, others)
    url = f"/v1/channels/{channel['id']}/members"
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        response = await tenant.http.get(url, params=params, headers=others[0].headers)
        assert response.status_code == 200
        page = response.json()
        assert len(page["data"]) <= 2
        assert all(m["channel_id"] == channel["id"] for m in page["data"])
        seen += [m["user_id"] for m in page["data"]]
        pages += 1
        if page["next_cursor"] is None:
            break
        assert page["next_cursor"] == page["data"][-1]["user_id"]
        params = {"limit": 2, "after": page["next_cursor"]}
    assert seen == sorted(u.id for u in (alice, *others))
    assert pages == 3


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
async def test_list_members_pages_both_ways(tenant: Tenant, limit: int) -> None:
    """next_cursor (as after) walks on, prev_cursor (as before) back; both see every member
    once in user id order, and a cursor is null exactly at an end of the list."""
    alice, *others = await users(tenant, "alice", "b", "c", "d", "e")
    channel = await tenant.channel(alice, others)
    forward, backward = await walk_both_ways(
        tenant.http,
        f"/v1/channels/{channel['id']}/members",
        others[1].headers,
        key="user_id",
        limit=limit,
    )
    assert forward == backward == sorted(u.id for u in (alice, *others))


async def test_list_members_refuses_bad_paging(tenant: Tenant, server: ServerThread) -> None:
    """A malformed cursor either way, both ways at once, a zero limit and a limit over the
    maximum are 422."""
    alice, bob = await users(tenant, "alice", "bob")
    channel = await tenant.channel(alice, [bob])
    url = f"/v1/channels/{channel['id']}/members"
    for way in ("after", "before"):
        for cursor in ("nope", channel["id"], "usr_1"):
            bad = await tenant.http.get(url, params={way: cursor}, headers=alice.headers)
            problem(bad, 422, "validation-failed")
            assert error_fields(bad) == {f"query.{way}"}
    both = await tenant.http.get(
        url, params={"after": alice.id, "before": bob.id}, headers=alice.headers
    )
    assert error_fields(both) == {"query"}
    zero = await tenant.http.get(url, params={"limit": 0}, headers=alice.headers)
    assert error_fields(zero) == {"query.limit"}
    over = await tenant.http.get(
        url, params={"limit": server.settings.limits.page_size_max + 1}, headers=alice.headers
    )
    problem(over, 422, "limit-exceeded")


async def test_get_one_member(tenant: Tenant) -> None:
    """Any member reads any membership; a non-member user or a bad id is 404."""
    alice, bob, carol = await users(tenant, "alice", "bob", "carol")
    channel = await tenant.channel(alice, [bob])
    url = f"/v1/channels/{channel['id']}/members"
    response = await tenant.http.get(f"{url}/{alice.id}", headers=bob.headers)
    assert response.status_code == 200
    assert (response.json()["user_id"], response.json()["role"]) == (alice.id, "owner")
    same_not_found(
        await tenant.http.get(f"{url}/{carol.id}", headers=bob.headers),
        await tenant.http.get(f"{url}/{new_id(Kind.USER)}", headers=bob.headers),
        await tenant.http.get(f"{url}/{channel['id']}", headers=bob.headers),
        await tenant.http.get(f"{url}/usr_1", headers=bob.headers),
    )


# --- change role ----------------------------------------------------------------------------


async def test_owner_promotes_and_demotes(tenant: Tenant) -> None:
    """An owner can give any role, including owner; the change is visible to everyone."""
    alice, bob, carol = await users(tenant, "alice", "bob", "carol")
    channel = await tenant.channel(alice, [bob, carol])
    promoted = await set_role(tenant, channel["id"], alice, bob, "moderator")
    assert promoted.status_code == 200
    assert (promoted.json()["user_id"], promoted.json()["role"]) == (bob.id, "moderator")
    assert (await set_role(tenant, channel["id"], alice, carol, "owner")).status_code == 200
    assert (await set_role(tenant, channel["id"], alice, bob, "read-only")).status_code == 200
    assert await roles(tenant, channel["id"], bob) == {
        alice.id: "owner",
        bob.id: "read-only",
        carol.id: "owner",
    }


async def test_moderator_cannot_touch_owners_or_moderators(tenant: Tenant) -> None:
    """A moderator moves members between member and read-only, and nothing more."""
    alice, mod, mod2, carol = await users(tenant, "alice", "mod", "mod2", "carol")
    channel = await tenant.channel(alice, [mod, mod2, carol])
    for user in (mod, mod2):
        assert (await set_role(tenant, channel["id"], alice, user, "moderator")).status_code == 200
    cid = channel["id"]
    assert (await set_role(tenant, cid, mod, carol, "read-only")).json()["role"] == "read-only"
    assert (await set_role(tenant, cid, mod, carol, "member")).json()["role"] == "member"
    for target, role in (
        (alice, "member"),
        (alice, "moderator"),
        (mod2, "member"),
        (carol, "moderator"),
        (carol, "owner"),
        (mod, "owner"),
        (mod, "member"),
    ):
        problem(await set_role(tenant, cid, mod, target, role), 403, "forbidden")
    assert await roles(tenant, cid, alice) == {
        alice.id: "owner",
        mod.id: "moderator",
        mod2.id: "moderator",
        carol.id: "member",
    }


async def test_members_cannot_change_roles(tenant: Tenant) -> None:
    """Plain members cannot change anyone's role, not even their own."""
    alice, bob, carol = await users(tenant, "alice", "bob", "carol")
    channel = await tenant.channel(alice, [bob, carol])
    for target, role in ((carol, "read-only"), (bob, "owner"), (bob, "moderator")):
        problem(await set_role(tenant, channel["id"], bob, target, role), 403, "forbidden")
    assert set((await roles(tenant, channel["id"], alice)).values()) == {"owner", "member"}


async def test_the_last_owner_cannot_step_down(tenant: Tenant) -> None:
    """Demoting the only owner is a conflict; with a second owner it is allowed."""
    alice, bob = await users(tenant, "alice", "bob")
    channel = await tenant.channel(alice, [bob])
    problem(await set_role(tenant, channel["id"], alice, alice, "moderator"), 409, "conflict")
    assert (await set_role(tenant, channel["id"], alice, bob, "owner")).status_code == 200
    stepped = await set_role(tenant, channel["id"], alice, alice, "member")
    assert (stepped.status_code, stepped.json()["role"]) == (200, "member")


async def test_role_changes_that_cannot_apply(tenant: Tenant) -> None:
    """An unknown role is 422, a non-member 404, and a direct channel has no roles (409)."""
    alice, bob, carol = await users(tenant, "alice", "bob", "carol")
    group = await tenant.channel(alice, [bob])
    bad = await tenant.http.patch(
        f"/v1/channels/{group['id']}/members/{bob.id}",
        json={"role": "admin"},
        headers=alice.headers,
    )
    assert error_fields(bad) == {"body.role"}
    extra = await tenant.http.patch(
        f"/v1/channels/{group['id']}/members/{bob.id}",
        json={"role": "member", "muted": True},
        headers=alice.headers,
    )
    assert error_fields(extra) == {"body.muted"}
    problem(await set_role(tenant, group["id"], alice, carol, "member"), 404, "not-found")
    direct = await tenant.channel(alice, [bob], type_="direct")
    problem(await set_role(tenant, direct["id"], alice, bob, "read-only"), 409, "conflict")


async def test_a_membership_is_versioned_by_its_role(tenant: Tenant) -> None:
    """A membership carries a version and ETag; role changes (and mutes) bump it, moving
    the read position does not."""
    alice, bob = await users(tenant, "alice", "bob")
    channel = await tenant.channel(alice, [])
    cid = channel["id"]
    added = await add(tenant, cid, alice, bob)
    assert (added.json()["version"], added.headers["etag"]) == (1, '"1"')
    url = f"/v1/channels/{cid}/members/{bob.id}"
    fetched = await tenant.http.get(url, headers=alice.headers)
    assert (fetched.json()["version"], fetched.headers["etag"]) == (1, '"1"')
    message = await tenant.send(alice, cid, "hello")
    read = await tenant.http.put(
        f"/v1/channels/{cid}/read", json={"message_id": message["id"]}, headers=bob.headers
    )
    assert read.status_code == 200
    assert (await tenant.http.get(url, headers=alice.headers)).json()["version"] == 1
    changed = await set_role(tenant, cid, alice, bob, "moderator")
    assert (changed.json()["version"], changed.headers["etag"]) == (2, '"2"')
    muted = await tenant.http.put(
        f"/v1/channels/{cid}/mutes/{bob.id}", json={}, headers=alice.headers
    )
    assert (muted.status_code, muted.json()["version"]) == (200, 3)
    listed = await tenant.http.get(f"/v1/channels/{cid}/members", headers=alice.headers)
    assert {m["user_id"]: m["version"] for m in listed.json()["data"]} == {alice.id: 1, bob.id: 3}


async def test_role_change_and_removal_honour_if_match(tenant: Tenant) -> None:
    """If-Match on PATCH and DELETE of a membership: a stale version is 412 and changes
    nothing; the current one goes through."""
    alice, bob = await users(tenant, "alice", "bob")
    channel = await tenant.channel(alice, [bob])
    url = f"/v1/channels/{channel['id']}/members/{bob.id}"

    def version(value: int) -> dict[str, str]:
        return {**alice.headers, "If-Match": f'"{value}"'}

    first = await tenant.http.patch(url, json={"role": "moderator"}, headers=version(1))
    assert (first.status_code, first.json()["version"]) == (200, 2)
    stale = await tenant.http.patch(url, json={"role": "read-only"}, headers=version(1))
    problem(stale, 412, "precondition-failed")
    problem(await tenant.http.delete(url, headers=version(1)), 412, "precondition-failed")
    malformed = await tenant.http.delete(url, headers={**alice.headers, "If-Match": "2"})
    problem(malformed, 400, "bad-request")
    assert await roles(tenant, channel["id"], alice) == {alice.id: "owner", bob.id: "moderator"}
    assert (await tenant.http.delete(url, headers=version(2))).status_code == 204
    assert await roles(tenant, channel["id"], alice) == {alice.id: "owner"}


# --- remove and leave -----------------------------------------------------------------------


async def test_owner_removes_a_member(tenant: Tenant) -> None:
    """204; the removed user no longer sees the channel and the count drops."""
    alice, bob, carol = await users(tenant, "alice", "bob", "carol")
    channel = await tenant.channel(alice, [bob, carol])
    response = await remove(tenant, channel["id"], alice, bob)
    assert response.status_code == 204
    assert response.content == b""
    assert await member_count(tenant, channel["id"], carol) == 2
    assert bob.id not in await roles(tenant, channel["id"], alice)
    same_not_found(
        await tenant.http.get(f"/v1/channels/{new_id(Kind.CHANNEL)}", headers=bob.headers),
        await tenant.http.get(f"/v1/channels/{channel['id']}", headers=bob.headers),
    )
    listed = await tenant.http.get("/v1/channels", headers=bob.headers)
    assert listed.json()["data"] == []
    problem(await remove(tenant, channel["id"], alice, bob), 404, "not-found")
    assert (await add(tenant, channel["id"], alice, bob)).status_code == 201


async def test_members_cannot_remove_others(tenant: Tenant) -> None:
    """A plain or read-only member cannot remove anyone else."""
    alice, bob, carol, ro = await users(tenant, "alice", "bob", "carol", "ro")
    channel = await tenant.channel(alice, [bob, carol])
    assert (await add(tenant, channel["id"], alice, ro, "read-only")).status_code == 201
    for actor, target in ((bob, carol), (bob, alice), (bob, ro), (ro, bob)):
        problem(await remove(tenant, channel["id"], actor, target), 403, "forbidden")
    assert await member_count(tenant, channel["id"], alice) == 4


async def test_moderator_removes_members_but_not_owners_or_moderators(tenant: Tenant) -> None:
    """A moderator removes members and read-only members; owners and moderators stay."""
    alice, mod, mod2, carol, ro = await users(tenant, "alice", "mod", "mod2", "carol", "ro")
    channel = await tenant.channel(alice, [mod, mod2, carol])
    cid = channel["id"]
    for user in (mod, mod2):
        assert (await set_role(tenant, cid, alice, user, "moderator")).status_code == 200
    assert (await add(tenant, cid, alice, ro, "read-only")).status_code == 201
    problem(await remove(tenant, cid, mod, alice), 403, "forbidden")
    problem(await remove(tenant, cid, mod, mod2), 403, "forbidden")
    assert (await remove(tenant, cid, mod, carol)).status_code == 204
    assert (await remove(tenant, cid, mod, ro)).status_code == 204
    assert await roles(tenant, cid, alice) == {
        alice.id: "owner",
        mod.id: "moderator",
        mod2.id: "moderator",
    }


async def test_an_owner_removes_another_owner(tenant: Tenant) -> None:
    """Owners may remove each other as long as one owner remains."""
    alice, bob = await users(tenant, "alice", "bob")
    channel = await tenant.channel(alice, [])
    assert (await add(tenant, channel["id"], alice, bob, "owner")).status_code == 201
    assert (await remove(tenant, channel["id"], bob, alice)).status_code == 204
    assert await roles(tenant, channel["id"], bob) == {bob.id: "owner"}


@pytest.mark.parametrize("role", ["member", "read-only", "moderator"])
async def test_a_member_leaves(tenant: Tenant, role: str) -> None:
    """DELETE on one's own membership leaves; the channel is then 404 for the leaver."""
    alice, bob = await users(tenant, "alice", "bob")
    channel = await tenant.channel(alice, [])
    assert (await add(tenant, channel["id"], alice, bob, role)).status_code == 201
    left = await remove(tenant, channel["id"], bob, bob)
    assert left.status_code == 204
    url = f"/v1/channels/{channel['id']}"
    missing = f"/v1/channels/{new_id(Kind.CHANNEL)}"
    same_not_found(
        await tenant.http.get(missing, headers=bob.headers),
        await tenant.http.get(url, headers=bob.headers),
        await tenant.http.get(f"{url}/members", headers=bob.headers),
        await tenant.http.post(f"{url}/messages", json={"text": "hi"}, headers=bob.headers),
        await remove(tenant, channel["id"], bob, bob),
    )
    assert (await tenant.http.get("/v1/channels", headers=bob.headers)).json()["data"] == []
    assert await roles(tenant, channel["id"], alice) == {alice.id: "owner"}


async def test_the_last_owner_cannot_leave(tenant: Tenant) -> None:
    """Leaving as the only owner is a conflict; after naming another owner it works."""
    alice, bob = await users(tenant, "alice", "bob")
    channel = await tenant.channel(alice, [bob])
    problem(await remove(tenant, channel["id"], alice, alice), 409, "conflict")
    assert await member_count(tenant, channel["id"], alice) == 2
    assert (await set_role(tenant, channel["id"], alice, bob, "owner")).status_code == 200
    assert (await remove(tenant, channel["id"], alice, alice)).status_code == 204
    assert await roles(tenant, channel["id"], bob) == {bob.id: "owner"}


async def test_nobody_leaves_a_direct_channel(tenant: Tenant) -> None:
    """A direct channel keeps both its members: leaving or removing is a conflict."""
    alice, bob = await users(tenant, "alice", "bob")
    channel = await tenant.channel(alice, [bob], type_="direct")
    problem(await remove(tenant, channel["id"], alice, alice), 409, "conflict")
    problem(await remove(tenant, channel["id"], alice, bob), 409, "conflict")
    assert await member_count(tenant, channel["id"], bob) == 2


# --- concurrency ----------------------------------------------------------------------------


async def test_concurrent_adds_never_overfill_a_group(small_tenant: Tenant) -> None:
    """Racing adds for the last free seat: exactly one wins, the rest are limit-exceeded."""
    owner, a, *rivals = await users(small_tenant, "owner", "a", "r1", "r2", "r3", "r4", "r5")
    channel = await small_tenant.channel(owner, [a])
    results = await asyncio.gather(*(add(small_tenant, channel["id"], owner, r) for r in rivals))
    assert sorted(r.status_code for r in results) == [201] + [422] * (len(rivals) - 1)
    for response in results:
        if response.status_code == 422:
            problem(response, 422, "limit-exceeded")
    assert await member_count(small_tenant, channel["id"], owner) == GROUP_CAP
    assert len(await roles(small_tenant, channel["id"], owner)) == GROUP_CAP


async def test_concurrent_owners_cannot_all_leave(tenant: Tenant) -> None:
    """Two owners leaving at once: one leaves, the other is kept as the last owner (409)."""
    alice, bob, carol = await users(tenant, "alice", "bob", "carol")
    channel = await tenant.channel(alice, [carol])
    assert (await add(tenant, channel["id"], alice, bob, "owner")).status_code == 201
    left = await asyncio.gather(
        remove(tenant, channel["id"], alice, alice), remove(tenant, channel["id"], bob, bob)
    )
    assert sorted(r.status_code for r in left) == [204, 409]
    assert list((await roles(tenant, channel["id"], carol)).values()).count("owner") == 1


async def test_concurrent_role_changes_with_one_if_match_apply_once(tenant: Tenant) -> None:
    """Role changes sent together with If-Match of the current version: one applies (200),
    the others find the membership changed (412)."""
    alice, bob = await users(tenant, "alice", "bob")
    channel = await tenant.channel(alice, [bob])
    url = f"/v1/channels/{channel['id']}/members/{bob.id}"
    for version, roles_ in enumerate(
        (("moderator", "read-only", "owner"), ("member", "read-only", "moderator")), start=1
    ):
        answers = await asyncio.gather(
            *(
                tenant.http.patch(
                    url, json={"role": r}, headers={**alice.headers, "If-Match": f'"{version}"'}
                )
                for r in roles_
            )
        )
        assert sorted(a.status_code for a in answers) == [200, 412, 412]
        winner = next(a.json() for a in answers if a.status_code == 200)
        assert (await tenant.http.get(url, headers=alice.headers)).json() == winner


async def test_concurrent_owners_cannot_all_step_down(tenant: Tenant) -> None:
    """Two owners demoting themselves at once: one succeeds, one owner always remains."""
    alice, bob = await users(tenant, "alice", "bob")
    channel = await tenant.channel(alice, [])
    assert (await add(tenant, channel["id"], alice, bob, "owner")).status_code == 201
    changed = await asyncio.gather(
        set_role(tenant, channel["id"], alice, alice, "member"),
        set_role(tenant, channel["id"], bob, bob, "member"),
    )
    assert sorted(r.status_code for r in changed) == [200, 409]
    assert list((await roles(tenant, channel["id"], alice)).values()).count("owner") == 1
