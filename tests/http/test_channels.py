"""Channels through the real HTTP API: create, open direct, read, list mine, update, archive."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bastion.chat.channels import encode_cursor
from bastion.core.ids import Kind, is_id, new_id
from tests.support.paging import walk_both_ways
from tests.support.problem_checks import error_fields, problem, same_not_found
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User

TAMPERED = encode_cursor(datetime(2026, 1, 1, tzinfo=UTC), "ch_1")
"""Well encoded, but naming no channel id."""


async def users(tenant: Tenant, *names: str) -> list[User]:
    """Create one user per name."""
    return [await tenant.user(name) for name in names]


async def set_role(tenant: Tenant, channel_id: str, actor: User, user: User, role: str) -> None:
    """Change ``user``'s role as ``actor`` (who must be allowed to)."""
    response = await tenant.http.patch(
        f"/v1/channels/{channel_id}/members/{user.id}", json={"role": role}, headers=actor.headers
    )
    assert response.status_code == 200, response.text


async def roles_in(tenant: Tenant, channel_id: str, viewer: User) -> dict[str, str]:
    """Every member's role, as ``viewer`` sees the member list."""
    response = await tenant.http.get(f"/v1/channels/{channel_id}/members", headers=viewer.headers)
    assert response.status_code == 200, response.text
    return {m["user_id"]: m["role"] for m in response.json()["data"]}


async def my_channel_ids(tenant: Tenant, user: User, **params: Any) -> list[str]:
    """The ids on the first page of ``user``'s channel list."""
    response = await tenant.http.get("/v1/channels", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return [channel["id"] for channel in response.json()["data"]]


# --- create ---------------------------------------------------------------------------------


async def test_create_group_makes_the_creator_owner(tenant: Tenant) -> None:
    """A group comes back with Location and ETag; the creator owns it, the rest are members."""
    alice, bob, carol = await users(tenant, "alice", "bob", "carol")
    response = await tenant.http.post(
        "/v1/channels",
        json={
            "type": "group",
            "name": "  Project X ",
            "description": "Secret plans",
            "members": [bob.id, carol.id],
        },
        headers=alice.headers,
    )
    assert response.status_code == 201
    body = response.json()
    assert is_id(Kind.CHANNEL, body["id"])
    assert response.headers["location"] == f"/v1/channels/{body['id']}"
    assert response.headers["etag"] == '"1"'
    assert body["type"] == "group"
    assert body["name"] == "Project X"
    assert body["description"] == "Secret plans"
    assert body["created_by"] == alice.id
    assert body["member_count"] == 3
    assert body["archived"] is False
    assert body["version"] == 1
    assert body["last_message_at"] is None
    assert body["last_message"] is None
    assert body["unread_count"] == 0
    assert body["membership"]["user_id"] == alice.id
    assert body["membership"]["role"] == "owner"
    assert await roles_in(tenant, body["id"], bob) == {
        alice.id: "owner",
        bob.id: "member",
        carol.id: "member",
    }
    assert await my_channel_ids(tenant, carol) == [body["id"]]


async def test_create_broadcast_makes_the_creator_owner(tenant: Tenant) -> None:
    """A broadcast channel: creator owner, listed users members (who cannot post)."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    created = await tenant.channel(alice, [bob], type_="broadcast", name="News")
    assert (created["type"], created["membership"]["role"]) == ("broadcast", "owner")
    assert await roles_in(tenant, created["id"], alice) == {alice.id: "owner", bob.id: "member"}
    refused = await tenant.http.post(
        f"/v1/channels/{created['id']}/messages", json={"text": "hi"}, headers=bob.headers
    )
    problem(refused, 403, "forbidden")
    await tenant.send(alice, created["id"], "announcement")


async def test_create_with_no_members_and_repeated_members(tenant: Tenant) -> None:
    """Repeated ids and the creator's own id in ``members`` count once."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    alone = await tenant.channel(alice, [], name="Notes")
    assert alone["member_count"] == 1
    response = await tenant.http.post(
        "/v1/channels",
        json={"type": "group", "name": "Pair", "members": [bob.id, bob.id, alice.id]},
        headers=alice.headers,
    )
    assert response.status_code == 201
    assert response.json()["member_count"] == 2
    assert await roles_in(tenant, response.json()["id"], alice) == {
        alice.id: "owner",
        bob.id: "member",
    }


async def test_direct_channel_is_opened_once_from_either_side(tenant: Tenant) -> None:
    """Opening a direct channel again, from either side, returns the same channel with 200."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    first = await tenant.http.post(
        "/v1/channels", json={"type": "direct", "members": [bob.id]}, headers=alice.headers
    )
    assert first.status_code == 201
    channel = first.json()
    assert channel["type"] == "direct"
    assert channel["name"] is None
    assert channel["member_count"] == 2
    assert channel["membership"]["role"] == "member"
    again = await tenant.http.post(
        "/v1/channels", json={"type": "direct", "members": [bob.id]}, headers=alice.headers
    )
    assert again.status_code == 200
    assert again.json()["id"] == channel["id"]
    assert again.headers["location"] == f"/v1/channels/{channel['id']}"
    reverse = await tenant.http.post(
        "/v1/channels",
        json={"type": "direct", "members": [alice.id, bob.id]},
        headers=bob.headers,
    )
    assert reverse.status_code == 200
    assert reverse.json()["id"] == channel["id"]
    assert reverse.json()["membership"]["user_id"] == bob.id
    assert await roles_in(tenant, channel["id"], bob) == {alice.id: "member", bob.id: "member"}
    assert await my_channel_ids(tenant, alice) == [channel["id"]]


async def test_direct_channel_refuses_a_name_and_is_per_pair(tenant: Tenant) -> None:
    """A direct channel given a name or description is 422, not created with them dropped;
    each pair of users has its own."""
    alice, bob, carol = await users(tenant, "alice", "bob", "carol")
    for extra, fields in (
        ({"name": "us", "description": "ours"}, {"body.name", "body.description"}),
        ({"name": "us"}, {"body.name"}),
        ({"description": ""}, {"body.description"}),
    ):
        named = await tenant.http.post(
            "/v1/channels",
            json={"type": "direct", "members": [bob.id], **extra},
            headers=alice.headers,
        )
        problem(named, 422, "validation-failed")
        assert error_fields(named) == fields
    assert await my_channel_ids(tenant, alice) == []
    with_bob = await tenant.channel(alice, [bob], type_="direct")
    assert (with_bob["name"], with_bob["description"]) == (None, None)
    with_carol = await tenant.channel(alice, [carol], type_="direct")
    assert with_carol["id"] != with_bob["id"]
    between_them = await tenant.channel(bob, [carol], type_="direct")
    assert between_them["id"] not in (with_carol["id"], with_bob["id"])


async def test_concurrent_opens_of_a_direct_channel_agree(tenant: Tenant) -> None:
    """Both sides opening a direct channel at once get one channel: one 201, the rest 200."""
    alice, bob = await users(tenant, "alice", "bob")

    async def open_direct(opener: User, other: User) -> httpx.Response:
        return await tenant.http.post(
            "/v1/channels", json={"type": "direct", "members": [other.id]}, headers=opener.headers
        )

    results = await asyncio.gather(
        *(open_direct(alice, bob) for _ in range(3)), *(open_direct(bob, alice) for _ in range(3))
    )
    assert sorted(r.status_code for r in results) == [200] * 5 + [201]
    assert len({r.json()["id"] for r in results}) == 1
    assert await my_channel_ids(tenant, alice) == await my_channel_ids(tenant, bob)
    assert len(await my_channel_ids(tenant, bob)) == 1


@pytest.mark.parametrize("others", [0, 2])
async def test_direct_channel_needs_exactly_one_other_member(tenant: Tenant, others: int) -> None:
    """A direct channel with nobody else, or with two others, is a validation error."""
    alice = await tenant.user("alice")
    members = [(await tenant.user(f"u{n}")).id for n in range(others)]
    for listed in (members, [*members, alice.id]):
        response = await tenant.http.post(
            "/v1/channels", json={"type": "direct", "members": listed}, headers=alice.headers
        )
        assert error_fields(response) == {"body.members"}
    assert await my_channel_ids(tenant, alice) == []


async def test_members_must_be_active_users_of_this_app(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    """Deactivated, missing and other apps' users cannot be members; the answers look alike."""
    alice, gone = await tenant.user("alice"), await tenant.user("gone")
    deactivated = await tenant.http.post(
        f"/v1/users/{gone.id}/deactivation", headers=await tenant.backend_headers()
    )
    assert deactivated.status_code == 200
    stranger = await other_tenant.user("stranger")
    missing = new_id(Kind.USER)
    details = []
    for type_ in ("group", "direct"):
        for candidate in (gone.id, stranger.id, missing):
            named = {} if type_ == "direct" else {"name": "x"}
            response = await tenant.http.post(
                "/v1/channels",
                json={"type": type_, "members": [candidate], **named},
                headers=alice.headers,
            )
            body = problem(response, 422, "validation-failed")
            assert [e["field"] for e in body["errors"]] == ["body.members"]
            details.append(body["errors"][0]["message"].replace(candidate, "<id>"))
    assert len(set(details)) == 1
    assert await my_channel_ids(tenant, alice) == []
    assert await my_channel_ids(other_tenant, stranger) == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"body.type"}),
        ({"type": "secret"}, {"body.type"}),
        ({"type": "group", "name": ""}, {"body.name"}),
        ({"type": "group", "name": "   "}, {"body.name"}),
        ({"type": "group", "name": "x" * 201}, {"body.name"}),
        ({"type": "group", "description": "x" * 1001}, {"body.description"}),
        ({"type": "group", "members": "usr_01J5ZZZZZZZZZZZZZZZZZZZZZZ"}, {"body.members"}),
        ({"type": "group", "members": ["bob"]}, {"body.members.0"}),
        ({"type": "group", "owner": "usr_01J5ZZZZZZZZZZZZZZZZZZZZZZ"}, {"body.owner"}),
        ({"type": "group", "archived": True}, {"body.archived"}),
    ],
)
async def test_malformed_create_body_is_422(
    tenant: Tenant, body: dict[str, Any], fields: set[str]
) -> None:
    """Invalid and unknown fields are listed; nothing is created."""
    alice = await tenant.user("alice")
    response = await tenant.http.post("/v1/channels", json=body, headers=alice.headers)
    assert error_fields(response) == fields
    assert await my_channel_ids(tenant, alice) == []


async def test_non_json_and_wrong_media_type(tenant: Tenant) -> None:
    """A non-JSON body is 400; a body of another media type is 415."""
    alice = await tenant.user("alice")
    broken = await tenant.http.post(
        "/v1/channels",
        content=b'{"type": "group",',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    problem(broken, 400, "bad-request")
    plain = await tenant.http.post(
        "/v1/channels",
        content=b'{"type": "group"}',
        headers={**alice.headers, "Content-Type": "text/plain"},
    )
    problem(plain, 415, "unsupported-media-type")


# --- read -----------------------------------------------------------------------------------


async def test_get_shows_the_callers_membership(tenant: Tenant) -> None:
    """Each member reads the channel with their own membership and the version as ETag."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    created = await tenant.channel(alice, [bob])
    for user, role in ((alice, "owner"), (bob, "member")):
        response = await tenant.http.get(f"/v1/channels/{created['id']}", headers=user.headers)
        assert response.status_code == 200
        assert response.headers["etag"] == '"1"'
        body = response.json()
        assert {k: v for k, v in body.items() if k != "membership"} == {
            k: v for k, v in created.items() if k != "membership"
        }
        assert (body["membership"]["user_id"], body["membership"]["role"]) == (user.id, role)


async def test_non_member_gets_404_like_a_missing_channel(tenant: Tenant) -> None:
    """To a non-member a channel does not exist: get, patch and members all say 404."""
    alice, bob, eve = await users(tenant, "alice", "bob", "eve")
    channel = await tenant.channel(alice, [bob])
    missing = new_id(Kind.CHANNEL)
    responses = []
    for channel_id in (missing, channel["id"]):
        base = f"/v1/channels/{channel_id}"
        responses += [
            await tenant.http.get(base, headers=eve.headers),
            await tenant.http.patch(base, json={"name": "mine"}, headers=eve.headers),
            await tenant.http.get(f"{base}/members", headers=eve.headers),
            await tenant.http.get(f"{base}/members/{bob.id}", headers=eve.headers),
            await tenant.http.post(
                f"{base}/members", json={"user_id": eve.id}, headers=eve.headers
            ),
            await tenant.http.delete(f"{base}/members/{bob.id}", headers=eve.headers),
        ]
    same_not_found(*responses)
    unchanged = await tenant.http.get(f"/v1/channels/{channel['id']}", headers=alice.headers)
    assert unchanged.json()["name"] == "room"
    assert unchanged.json()["member_count"] == 2


async def test_another_apps_channel_is_404_like_a_missing_one(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    """A channel of another app answers exactly like a channel that does not exist."""
    alice = await tenant.user("alice")
    mallory, accomplice = await other_tenant.user("mallory"), await other_tenant.user("acc")
    theirs = await other_tenant.channel(mallory, [accomplice])
    missing = new_id(Kind.CHANNEL)
    responses = []
    for channel_id in (missing, theirs["id"]):
        base = f"/v1/channels/{channel_id}"
        responses += [
            await tenant.http.get(base, headers=alice.headers),
            await tenant.http.patch(base, json={"archived": True}, headers=alice.headers),
            await tenant.http.get(f"{base}/members", headers=alice.headers),
            await tenant.http.post(
                f"{base}/members", json={"user_id": alice.id}, headers=alice.headers
            ),
        ]
    same_not_found(*responses)
    still = await other_tenant.http.get(f"/v1/channels/{theirs['id']}", headers=mallory.headers)
    assert (still.json()["archived"], still.json()["member_count"]) == (False, 2)


@pytest.mark.parametrize(
    "bad_id", ["ch_1", "usr_01J5ZZZZZZZZZZZZZZZZZZZZZZ", "ch_01j5zzzzzzzzzzzzzzzzzzzzzz", "x" * 300]
)
async def test_ids_of_the_wrong_shape_are_404(tenant: Tenant, bad_id: str) -> None:
    """A malformed channel id is the same 404 as a missing one."""
    alice = await tenant.user("alice")
    same_not_found(
        await tenant.http.get(f"/v1/channels/{new_id(Kind.CHANNEL)}", headers=alice.headers),
        await tenant.http.get(f"/v1/channels/{bad_id}", headers=alice.headers),
        await tenant.http.patch(f"/v1/channels/{bad_id}", json={}, headers=alice.headers),
        await tenant.http.get(f"/v1/channels/{bad_id}/members", headers=alice.headers),
    )


# --- list mine ------------------------------------------------------------------------------


async def test_list_is_most_recently_active_first_with_unread_and_last_message(
    tenant: Tenant,
) -> None:
    """A new message moves its channel to the top; unread counts exclude one's own messages."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    first = await tenant.channel(alice, [bob], name="first")
    second = await tenant.channel(alice, [bob], name="second")
    third = await tenant.channel(alice, [], name="third")
    assert await my_channel_ids(tenant, alice) == [third["id"], second["id"], first["id"]]

    await tenant.send(alice, first["id"], "one")
    last = await tenant.send(alice, first["id"], "two")
    assert await my_channel_ids(tenant, alice) == [first["id"], third["id"], second["id"]]

    listed = (await tenant.http.get("/v1/channels", headers=bob.headers)).json()
    assert [c["id"] for c in listed["data"]] == [first["id"], second["id"]]
    assert listed["next_cursor"] is None
    top = listed["data"][0]
    assert top["unread_count"] == 2
    assert top["last_message"]["id"] == last["id"]
    assert top["last_message"]["text"] == "two"
    assert top["last_message_at"] == last["created_at"]
    assert top["membership"]["user_id"] == bob.id
    assert (listed["data"][1]["unread_count"], listed["data"][1]["last_message"]) == (0, None)
    mine = (await tenant.http.get("/v1/channels", headers=alice.headers)).json()["data"][0]
    assert (mine["unread_count"], mine["last_message"]["id"]) == (0, last["id"])


async def test_list_pages_by_cursor(tenant: Tenant) -> None:
    """limit/after walk every channel exactly once in activity order; the last page ends it."""
    alice = await tenant.user("alice")
    ids = [(await tenant.channel(alice, [], name=f"c{n}"))["id"] for n in range(5)]
    await tenant.send(alice, ids[1], "bump")
    expected = [ids[1], ids[4], ids[3], ids[2], ids[0]]
    assert await my_channel_ids(tenant, alice) == expected
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        response = await tenant.http.get("/v1/channels", params=params, headers=alice.headers)
        assert response.status_code == 200
        page = response.json()
        seen += [c["id"] for c in page["data"]]
        pages += 1
        if page["next_cursor"] is None:
            break
        params = {"limit": 2, "after": page["next_cursor"]}
    assert seen == expected
    assert pages == 3


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 6])
async def test_list_pages_both_ways(tenant: Tenant, limit: int) -> None:
    """next_cursor (as after) walks down the list, prev_cursor (as before) back up; both
    see every channel once, and a cursor is null exactly at an end."""
    alice = await tenant.user("alice")
    ids = [(await tenant.channel(alice, [], name=f"c{n}"))["id"] for n in range(5)]
    expected = ids[::-1]
    forward, backward = await walk_both_ways(
        tenant.http, "/v1/channels", alice.headers, limit=limit
    )
    assert forward == backward == expected


async def test_list_before_the_first_channel_is_empty(tenant: Tenant) -> None:
    """Back to the top: the page before the most recently active channel is empty, with
    no cursors, like the page after the last one."""
    alice = await tenant.user("alice")
    for n in range(3):
        await tenant.channel(alice, [], name=f"c{n}")

    async def page(**params: Any) -> dict[str, Any]:
        response = await tenant.http.get("/v1/channels", params=params, headers=alice.headers)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    first = await page(limit=1)
    second = await page(limit=1, after=first["next_cursor"])
    back = await page(limit=1, before=second["prev_cursor"])
    assert back == first
    assert await page(before=first["next_cursor"]) == {
        "data": [],
        "prev_cursor": None,
        "next_cursor": None,
    }


async def test_list_with_bad_paging_parameters_is_422(tenant: Tenant, server: ServerThread) -> None:
    """A limit over the maximum, a zero limit and a forged cursor are all refused."""
    alice = await tenant.user("alice")
    maximum = server.settings.limits.page_size_max
    over = await tenant.http.get(
        "/v1/channels", params={"limit": maximum + 1}, headers=alice.headers
    )
    problem(over, 422, "limit-exceeded")
    assert error_fields(over) == {"query.limit"}
    zero = await tenant.http.get("/v1/channels", params={"limit": 0}, headers=alice.headers)
    assert error_fields(zero) == {"query.limit"}
    for cursor in ("!!!", "bm90IGpzb24", "WyJ5ZXN0ZXJkYXkiLCJjaF8xIl0", TAMPERED):
        for way in ("after", "before"):
            bad = await tenant.http.get("/v1/channels", params={way: cursor}, headers=alice.headers)
            problem(bad, 422, "validation-failed")
            assert error_fields(bad) == {f"query.{way}"}
    await tenant.channel(alice, [], name="one")
    await tenant.channel(alice, [], name="two")
    page = (
        await tenant.http.get("/v1/channels", params={"limit": 1}, headers=alice.headers)
    ).json()
    both = await tenant.http.get(
        "/v1/channels",
        params={"after": page["next_cursor"], "before": page["next_cursor"]},
        headers=alice.headers,
    )
    assert error_fields(both) == {"query"}
    flag = await tenant.http.get(
        "/v1/channels", params={"include_archived": "perhaps"}, headers=alice.headers
    )
    assert error_fields(flag) == {"query.include_archived"}


# --- update ---------------------------------------------------------------------------------


async def test_owner_and_moderator_rename_members_cannot(tenant: Tenant) -> None:
    """name/description: owners and moderators may change them; members get 403."""
    alice, bob, carol = await users(tenant, "alice", "bob", "carol")
    channel = await tenant.channel(alice, [bob, carol], name="before")
    url = f"/v1/channels/{channel['id']}"
    renamed = await tenant.http.patch(
        url, json={"name": "after", "description": "about"}, headers=alice.headers
    )
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["description"]) == ("after", "about")
    assert renamed.json()["version"] == 2
    assert renamed.headers["etag"] == '"2"'

    refused = await tenant.http.patch(url, json={"name": "bob's"}, headers=bob.headers)
    problem(refused, 403, "forbidden")

    await set_role(tenant, channel["id"], alice, bob, "moderator")
    by_moderator = await tenant.http.patch(url, json={"description": None}, headers=bob.headers)
    assert by_moderator.status_code == 200
    assert (by_moderator.json()["name"], by_moderator.json()["description"]) == ("after", None)
    assert by_moderator.json()["membership"]["role"] == "moderator"

    await set_role(tenant, channel["id"], alice, carol, "read-only")
    problem(await tenant.http.patch(url, json={"name": "ro"}, headers=carol.headers), 403)
    final = (await tenant.http.get(url, headers=carol.headers)).json()
    assert (final["name"], final["version"]) == ("after", 3)


async def test_patch_with_if_match(tenant: Tenant) -> None:
    """If-Match with the current version succeeds; a stale one is 412; a malformed one 400."""
    alice = await tenant.user("alice")
    channel = await tenant.channel(alice, [], name="v1")
    url = f"/v1/channels/{channel['id']}"
    ok = await tenant.http.patch(
        url, json={"name": "v2"}, headers={**alice.headers, "If-Match": '"1"'}
    )
    assert ok.status_code == 200
    stale = await tenant.http.patch(
        url, json={"name": "v3"}, headers={**alice.headers, "If-Match": '"1"'}
    )
    problem(stale, 412, "precondition-failed")
    malformed = await tenant.http.patch(
        url, json={"name": "v3"}, headers={**alice.headers, "If-Match": "v1"}
    )
    problem(malformed, 400, "bad-request")
    assert (await tenant.http.get(url, headers=alice.headers)).json()["name"] == "v2"


async def test_concurrent_patches_with_one_if_match_apply_once(tenant: Tenant) -> None:
    """PATCHes sent together with If-Match of the current version: exactly one applies
    (200), the others find the channel changed (412)."""
    alice = await tenant.user("alice")
    for round_ in range(8):
        channel = await tenant.channel(alice, [], name=f"v1 {round_}")
        url = f"/v1/channels/{channel['id']}"
        answers = await asyncio.gather(
            *(
                tenant.http.patch(
                    url, json={"name": f"v2 {n}"}, headers={**alice.headers, "If-Match": '"1"'}
                )
                for n in range(3)
            )
        )
        assert sorted(a.status_code for a in answers) == [200, 412, 412]
        winner = next(a.json() for a in answers if a.status_code == 200)
        current = (await tenant.http.get(url, headers=alice.headers)).json()
        assert (current["name"], current["version"]) == (winner["name"], 2)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"name": ""}, "body.name"),
        ({"name": "x" * 201}, "body.name"),
        ({"archived": "yes"}, "body.archived"),
        ({"archived": None}, "body.archived"),
        ({"archived": 1}, "body.archived"),
        ({"type": "broadcast"}, "body.type"),
        ({"created_by": "usr_01J5ZZZZZZZZZZZZZZZZZZZZZZ"}, "body.created_by"),
    ],
)
async def test_malformed_patch_is_422(tenant: Tenant, patch: dict[str, Any], field: str) -> None:
    """Invalid values and fields that cannot be patched are refused."""
    alice = await tenant.user("alice")
    channel = await tenant.channel(alice, [])
    response = await tenant.http.patch(
        f"/v1/channels/{channel['id']}", json=patch, headers=alice.headers
    )
    assert error_fields(response) == {field}


async def test_direct_channel_cannot_be_renamed_or_archived(tenant: Tenant) -> None:
    """A direct channel has no name to change and cannot be archived: 409, as for leaving
    one or changing roles in one (the channel's kind forbids it, not the caller's role)."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    channel = await tenant.channel(alice, [bob], type_="direct")
    url = f"/v1/channels/{channel['id']}"
    for patch in ({"name": "us"}, {"description": "x"}, {"archived": True}):
        problem(await tenant.http.patch(url, json=patch, headers=alice.headers), 409, "conflict")
    for refused in (
        await tenant.http.delete(f"{url}/members/{alice.id}", headers=alice.headers),
        await tenant.http.patch(
            f"{url}/members/{bob.id}", json={"role": "read-only"}, headers=alice.headers
        ),
    ):
        problem(refused, 409, "conflict")
    after = (await tenant.http.get(url, headers=bob.headers)).json()
    assert (after["name"], after["archived"], after["version"]) == (None, False, 1)


# --- archive --------------------------------------------------------------------------------


async def test_only_owners_archive(tenant: Tenant) -> None:
    """Moderators and members cannot archive; the owner can."""
    alice, bob, carol = await users(tenant, "alice", "bob", "carol")
    channel = await tenant.channel(alice, [bob, carol])
    await set_role(tenant, channel["id"], alice, bob, "moderator")
    url = f"/v1/channels/{channel['id']}"
    for user in (bob, carol):
        refused = await tenant.http.patch(url, json={"archived": True}, headers=user.headers)
        problem(refused, 403, "forbidden")
    archived = await tenant.http.patch(url, json={"archived": True}, headers=alice.headers)
    assert archived.status_code == 200
    assert archived.json()["archived"] is True


async def test_archived_channel_refuses_sends_and_hides_from_the_list(tenant: Tenant) -> None:
    """Archived: sends are 409, renames 409, it is listed only with include_archived=true."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    channel = await tenant.channel(alice, [bob])
    other = await tenant.channel(alice, [bob], name="other")
    await tenant.send(bob, channel["id"], "before")
    url = f"/v1/channels/{channel['id']}"
    archived = await tenant.http.patch(url, json={"archived": True}, headers=alice.headers)
    assert archived.status_code == 200

    for user in (alice, bob):
        sent = await tenant.http.post(f"{url}/messages", json={"text": "x"}, headers=user.headers)
        problem(sent, 409, "conflict")
        assert await my_channel_ids(tenant, user) == [other["id"]]
        everything = await my_channel_ids(tenant, user, include_archived="true")
        assert set(everything) == {channel["id"], other["id"]}
        assert (await tenant.http.get(url, headers=user.headers)).json()["archived"] is True

    problem(await tenant.http.patch(url, json={"name": "n"}, headers=alice.headers), 409)
    history = await tenant.http.get(f"{url}/messages", headers=bob.headers)
    assert [m["text"] for m in history.json()["data"]] == ["before"]

    restored = await tenant.http.patch(url, json={"archived": False}, headers=alice.headers)
    assert restored.json()["archived"] is False
    await tenant.send(bob, channel["id"], "after")
    assert channel["id"] in await my_channel_ids(tenant, bob)


# --- tokens ---------------------------------------------------------------------------------


async def test_backend_token_cannot_use_chat_routes(tenant: Tenant) -> None:
    """The app backend holds no chat scopes: every channel route is 403 insufficient_scope."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    channel = await tenant.channel(alice, [bob])
    backend = await tenant.backend_headers()
    base = f"/v1/channels/{channel['id']}"
    calls: list[tuple[str, str, dict[str, Any] | None, str]] = [
        ("GET", "/v1/channels", None, "chat:read"),
        ("POST", "/v1/channels", {"type": "group", "members": [alice.id]}, "chat:write"),
        ("GET", base, None, "chat:read"),
        ("PATCH", base, {"name": "backend"}, "chat:write"),
        ("GET", f"{base}/members", None, "chat:read"),
        ("POST", f"{base}/members", {"user_id": bob.id}, "chat:write"),
        ("DELETE", f"{base}/members/{bob.id}", None, "chat:write"),
    ]
    for method, path, body, scope in calls:
        response = await tenant.http.request(method, path, json=body, headers=backend)
        problem(response, 403, "insufficient-scope")
        challenge = response.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge
        assert f'scope="{scope}"' in challenge
    assert await roles_in(tenant, channel["id"], alice) == {alice.id: "owner", bob.id: "member"}
