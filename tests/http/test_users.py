"""Users through the real HTTP API: the app backend manages them, users see themselves."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from bastion.core.ids import Kind, is_id, new_id
from bastion.observe.events import MemorySink
from bastion.security.oauth import rfc8693
from tests.support.paging import walk_both_ways
from tests.support.problem_checks import error_fields, problem, same_not_found
from tests.support.server import ServerThread
from tests.support.tenants import Tenant


async def create(
    tenant: Tenant, external_id: str, display_name: str | None = None
) -> dict[str, Any]:
    """Create a user as the tenant's backend and return its body."""
    response = await tenant.http.post(
        "/v1/users",
        json={"external_id": external_id, "display_name": display_name or external_id},
        headers=await tenant.backend_headers(),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# --- create -------------------------------------------------------------------------------


async def test_create_returns_201_with_location_and_etag(tenant: Tenant) -> None:
    """A created user comes back whole, with Location and an ETag of its version."""
    response = await tenant.http.post(
        "/v1/users",
        json={"external_id": "crm|42", "display_name": "  Ada Lovelace "},
        headers=await tenant.backend_headers(),
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert is_id(Kind.USER, body["id"])
    assert body["external_id"] == "crm|42"
    assert body["display_name"] == "Ada Lovelace"
    assert body["active"] is True
    assert body["version"] == 1
    assert body["created_at"] == body["updated_at"]
    assert body["created_at"].endswith("Z")
    assert response.headers["location"] == f"/v1/users/{body['id']}"
    assert response.headers["etag"] == '"1"'
    fetched = await tenant.http.get(
        response.headers["location"], headers=await tenant.backend_headers()
    )
    assert fetched.json() == body


async def test_duplicate_external_id_is_409(tenant: Tenant) -> None:
    """An external id already used in the app is a conflict; the first user is untouched."""
    first = await create(tenant, "dup", "First")
    again = await tenant.http.post(
        "/v1/users",
        json={"external_id": "dup", "display_name": "Second"},
        headers=await tenant.backend_headers(),
    )
    problem(again, 409, "conflict")
    listed = await tenant.http.get(
        "/v1/users", params={"external_id": "dup"}, headers=await tenant.backend_headers()
    )
    assert [u["id"] for u in listed.json()["data"]] == [first["id"]]
    assert listed.json()["data"][0]["display_name"] == "First"


async def test_same_external_id_in_another_app_is_a_different_user(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    """External ids are unique per app, not globally."""
    mine = await create(tenant, "shared-id")
    theirs = await create(other_tenant, "shared-id")
    assert mine["id"] != theirs["id"]


# --- get ------------------------------------------------------------------------------------


async def test_get_returns_the_user_with_etag(tenant: Tenant) -> None:
    """GET returns the same representation as create, with the version as ETag."""
    created = await create(tenant, "bob", "Bob")
    response = await tenant.http.get(
        f"/v1/users/{created['id']}", headers=await tenant.backend_headers()
    )
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["etag"] == '"1"'


@pytest.mark.parametrize(
    "bad_id",
    [
        "usr_123",
        "usr_01j5zzzzzzzzzzzzzzzzzzzzzz",
        "usr_01J5ZZZZZZZZZZZZZZZZZZZZZL",
        "ch_01J5ZZZZZZZZZZZZZZZZZZZZZZ",
        "01J5ZZZZZZZZZZZZZZZZZZZZZZ",
        "x" * 300,
    ],
)
async def test_ids_of_the_wrong_shape_are_404_like_a_missing_id(
    tenant: Tenant, bad_id: str
) -> None:
    """A malformed id is a plain 404, indistinguishable from a well-formed missing one."""
    headers = await tenant.backend_headers()
    missing = await tenant.http.get(f"/v1/users/{new_id(Kind.USER)}", headers=headers)
    malformed = await tenant.http.get(f"/v1/users/{bad_id}", headers=headers)
    patched = await tenant.http.patch(
        f"/v1/users/{bad_id}", json={"display_name": "x"}, headers=headers
    )
    deactivated = await tenant.http.post(f"/v1/users/{bad_id}/deactivation", headers=headers)
    same_not_found(missing, malformed, patched, deactivated)


async def test_another_apps_user_is_404_like_a_missing_id(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    """Another app's user can be neither read, changed nor deactivated, nor found by filter."""
    theirs = await create(other_tenant, "victim", "Victim")
    headers = await tenant.backend_headers()
    missing_id = new_id(Kind.USER)
    same_not_found(
        await tenant.http.get(f"/v1/users/{missing_id}", headers=headers),
        await tenant.http.get(f"/v1/users/{theirs['id']}", headers=headers),
        await tenant.http.patch(
            f"/v1/users/{theirs['id']}", json={"display_name": "Pwned"}, headers=headers
        ),
        await tenant.http.post(f"/v1/users/{theirs['id']}/deactivation", headers=headers),
    )
    by_external = await tenant.http.get(
        "/v1/users", params={"external_id": "victim"}, headers=headers
    )
    assert by_external.json() == {"data": [], "prev_cursor": None, "next_cursor": None}
    still = await other_tenant.http.get(
        f"/v1/users/{theirs['id']}", headers=await other_tenant.backend_headers()
    )
    assert still.json() == theirs


# --- list -----------------------------------------------------------------------------------


async def test_list_pages_by_cursor_in_id_order(tenant: Tenant) -> None:
    """limit/after walk every user exactly once, in id order; the last page has no cursor."""
    ids = [(await create(tenant, f"user-{n}"))["id"] for n in range(5)]
    headers = await tenant.backend_headers()
    seen: list[str] = []
    pages = 0
    params: dict[str, str | int] = {"limit": 2}
    while True:
        response = await tenant.http.get("/v1/users", params=params, headers=headers)
        assert response.status_code == 200
        page = response.json()
        assert len(page["data"]) <= 2
        seen += [user["id"] for user in page["data"]]
        pages += 1
        if page["next_cursor"] is None:
            break
        assert page["next_cursor"] == page["data"][-1]["id"]
        params = {"limit": 2, "after": page["next_cursor"]}
    assert seen == sorted(ids)
    assert pages == 3


async def test_list_default_page_size_comes_from_settings(
    tenant: Tenant, server: ServerThread
) -> None:
    """Without ``limit`` a page holds the configured default, and says more follow."""
    default = server.settings.limits.page_size_default
    for n in range(default + 1):
        await create(tenant, f"u{n:03d}")
    headers = await tenant.backend_headers()
    page = (await tenant.http.get("/v1/users", headers=headers)).json()
    assert len(page["data"]) == default
    assert page["next_cursor"] == page["data"][-1]["id"]
    rest = (
        await tenant.http.get("/v1/users", params={"after": page["next_cursor"]}, headers=headers)
    ).json()
    assert len(rest["data"]) == 1
    assert rest["next_cursor"] is None


async def test_limit_above_the_maximum_is_422_limit_exceeded(
    tenant: Tenant, server: ServerThread
) -> None:
    """A limit above the configured maximum is refused, not silently clamped."""
    maximum = server.settings.limits.page_size_max
    headers = await tenant.backend_headers()
    at_max = await tenant.http.get("/v1/users", params={"limit": maximum}, headers=headers)
    assert at_max.status_code == 200
    over = await tenant.http.get("/v1/users", params={"limit": maximum + 1}, headers=headers)
    body = problem(over, 422, "limit-exceeded")
    assert [e["field"] for e in body["errors"]] == ["query.limit"]


@pytest.mark.parametrize("limit", ["0", "-1", "ten", "1.5"])
async def test_invalid_limit_is_422(tenant: Tenant, limit: str) -> None:
    """limit must be a positive integer."""
    response = await tenant.http.get(
        "/v1/users", params={"limit": limit}, headers=await tenant.backend_headers()
    )
    assert error_fields(response) == {"query.limit"}
    problem(response, 422, "validation-failed")


@pytest.mark.parametrize("limit", [1, 2, 4, 5, 6])
async def test_list_pages_both_ways(tenant: Tenant, limit: int) -> None:
    """next_cursor (as after) walks on, prev_cursor (as before) back; both see every user
    once in id order, and a cursor is null exactly at an end of the list."""
    ids = [(await create(tenant, f"user-{n}"))["id"] for n in range(5)]
    forward, backward = await walk_both_ways(
        tenant.http, "/v1/users", await tenant.backend_headers(), limit=limit
    )
    assert forward == backward == sorted(ids)


async def test_list_pages_back_with_a_filter(tenant: Tenant) -> None:
    """``before`` keeps the ``active`` filter, and the first page has no prev_cursor."""
    ids = sorted([(await create(tenant, f"user-{n}"))["id"] for n in range(4)])
    headers = await tenant.backend_headers()
    gone = await tenant.http.post(f"/v1/users/{ids[1]}/deactivation", headers=headers)
    assert gone.status_code == 200
    forward, backward = await walk_both_ways(
        tenant.http, "/v1/users", headers, limit=1, params={"active": "true"}
    )
    assert forward == backward == [ids[0], ids[2], ids[3]]
    before_all = await tenant.http.get("/v1/users", params={"before": ids[0]}, headers=headers)
    assert before_all.json() == {"data": [], "prev_cursor": None, "next_cursor": None}


@pytest.mark.parametrize("cursor", ["garbage", "ch_01J5ZZZZZZZZZZZZZZZZZZZZZZ", "usr_1"])
@pytest.mark.parametrize("way", ["after", "before"])
async def test_malformed_cursor_is_422(tenant: Tenant, cursor: str, way: str) -> None:
    """A cursor that is not a user id is a validation error naming its parameter."""
    response = await tenant.http.get(
        "/v1/users", params={way: cursor}, headers=await tenant.backend_headers()
    )
    problem(response, 422, "validation-failed")
    assert error_fields(response) == {f"query.{way}"}


async def test_before_and_after_together_are_422(tenant: Tenant) -> None:
    """A page lies after a cursor or before one, not between two."""
    first, second = (await create(tenant, "a"))["id"], (await create(tenant, "b"))["id"]
    response = await tenant.http.get(
        "/v1/users",
        params={"after": first, "before": second},
        headers=await tenant.backend_headers(),
    )
    assert error_fields(response) == {"query"}


async def test_filter_by_external_id_and_active(tenant: Tenant) -> None:
    """external_id finds one user; active splits active from deactivated users."""
    alice = await create(tenant, "alice")
    bob = await create(tenant, "bob")
    headers = await tenant.backend_headers()
    gone = await tenant.http.post(f"/v1/users/{bob['id']}/deactivation", headers=headers)
    assert gone.status_code == 200

    async def ids(**params: str) -> list[str]:
        response = await tenant.http.get("/v1/users", params=params, headers=headers)
        assert response.status_code == 200
        assert response.json()["next_cursor"] is None
        return [user["id"] for user in response.json()["data"]]

    assert await ids(external_id="alice") == [alice["id"]]
    assert await ids(external_id="nobody") == []
    assert await ids(active="true") == [alice["id"]]
    assert await ids(active="false") == [bob["id"]]
    assert await ids(external_id="bob", active="false") == [bob["id"]]
    assert await ids(external_id="bob", active="true") == []
    assert sorted(await ids()) == sorted([alice["id"], bob["id"]])
    bad = await tenant.http.get("/v1/users", params={"active": "maybe"}, headers=headers)
    assert error_fields(bad) == {"query.active"}


# --- update ---------------------------------------------------------------------------------


async def test_patch_merges_and_bumps_the_version(tenant: Tenant) -> None:
    """A merge patch changes only display_name and returns the new version as ETag."""
    created = await create(tenant, "carol", "Carol")
    headers = await tenant.backend_headers()
    response = await tenant.http.patch(
        f"/v1/users/{created['id']}",
        json={"display_name": "Carol Danvers"},
        headers={**headers, "If-Match": '"1"'},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["display_name"] == "Carol Danvers"
    assert body["external_id"] == "carol"
    assert body["version"] == 2
    assert body["created_at"] == created["created_at"]
    assert body["updated_at"] >= created["updated_at"]
    assert response.headers["etag"] == '"2"'
    fetched = await tenant.http.get(f"/v1/users/{created['id']}", headers=headers)
    assert fetched.json() == body


async def test_empty_patch_changes_nothing(tenant: Tenant) -> None:
    """An empty merge patch is a no-op: same body, same version."""
    created = await create(tenant, "dora")
    response = await tenant.http.patch(
        f"/v1/users/{created['id']}", json={}, headers=await tenant.backend_headers()
    )
    assert response.status_code == 200
    assert response.json() == created


async def test_patch_with_stale_if_match_is_412(tenant: Tenant) -> None:
    """If-Match naming an old version fails with 412 and changes nothing."""
    created = await create(tenant, "erin", "Erin")
    headers = await tenant.backend_headers()
    url = f"/v1/users/{created['id']}"
    first = await tenant.http.patch(
        url, json={"display_name": "Erin 2"}, headers={**headers, "If-Match": '"1"'}
    )
    assert first.status_code == 200
    stale = await tenant.http.patch(
        url, json={"display_name": "Erin 3"}, headers={**headers, "If-Match": '"1"'}
    )
    problem(stale, 412, "precondition-failed")
    current = (await tenant.http.get(url, headers=headers)).json()
    assert (current["display_name"], current["version"]) == ("Erin 2", 2)
    star = await tenant.http.patch(
        url, json={"display_name": "Erin 4"}, headers={**headers, "If-Match": "*"}
    )
    assert (star.status_code, star.json()["version"]) == (200, 3)


@pytest.mark.parametrize("if_match", ["1", "abc", '"x"', '"1", "2"', '"1234567890"'])
async def test_malformed_if_match_is_400(tenant: Tenant, if_match: str) -> None:
    """An If-Match that is not a single version ETag is a bad request, and nothing changes."""
    created = await create(tenant, "fay", "Fay")
    headers = await tenant.backend_headers()
    url = f"/v1/users/{created['id']}"
    response = await tenant.http.patch(
        url, json={"display_name": "Changed"}, headers={**headers, "If-Match": if_match}
    )
    problem(response, 400, "bad-request")
    assert (await tenant.http.get(url, headers=headers)).json() == created


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"external_id": "new"}, "body.external_id"),
        ({"active": False}, "body.active"),
        ({"display_name": "x" * 201}, "body.display_name"),
        ({"display_name": "   "}, "body.display_name"),
        ({"display_name": 7}, "body.display_name"),
        ({"display_name": None}, "body.display_name"),
    ],
)
async def test_patch_refuses_immutable_unknown_and_invalid_fields(
    tenant: Tenant, patch: dict[str, Any], field: str
) -> None:
    """Only display_name can be patched, and only to a valid value."""
    created = await create(tenant, "gil")
    headers = await tenant.backend_headers()
    url = f"/v1/users/{created['id']}"
    response = await tenant.http.patch(url, json=patch, headers=headers)
    assert error_fields(response) == {field}
    assert (await tenant.http.get(url, headers=headers)).json() == created


async def test_concurrent_patches_with_one_if_match_apply_once(tenant: Tenant) -> None:
    """PATCHes sent together, all with If-Match of the current version: exactly one applies
    (200), the others see a changed user (412)."""
    headers = await tenant.backend_headers()
    for round_ in range(8):
        created = await create(tenant, f"race-{round_}")
        url = f"/v1/users/{created['id']}"
        answers = await asyncio.gather(
            *(
                tenant.http.patch(
                    url, json={"display_name": f"n{n}"}, headers={**headers, "If-Match": '"1"'}
                )
                for n in range(3)
            )
        )
        assert sorted(a.status_code for a in answers) == [200, 412, 412]
        winner = next(a.json() for a in answers if a.status_code == 200)
        assert (await tenant.http.get(url, headers=headers)).json() == winner
        assert winner["version"] == 2


# --- deactivation ---------------------------------------------------------------------------


async def test_deactivation_is_recorded_once_as_an_admin_change(
    tenant: Tenant, events: MemorySink
) -> None:
    """Deactivating is an admin.change (before/after); doing it again records nothing."""
    user = await tenant.user("gone", "Gone")
    headers = await tenant.backend_headers()
    for _ in range(2):
        response = await tenant.http.post(f"/v1/users/{user.id}/deactivation", headers=headers)
        assert response.status_code == 200, response.text
    (change,) = [
        e
        for e in events.of("admin.change")
        if e.actor.app_id == tenant.app_id and e.resource == f"user:{user.id}"
    ]
    assert change.details == {"change": "user.deactivate", "before": "active", "after": "inactive"}
    assert change.actor.roles == ("service",)


async def test_deactivation_revokes_tokens_and_blocks_exchange(tenant: Tenant) -> None:
    """After deactivation the user's live token is refused and no new one can be minted."""
    user = await tenant.user("hal", "Hal")
    before = await tenant.http.get("/v1/users/me", headers=user.headers)
    assert before.status_code == 200
    response = await tenant.http.post(
        f"/v1/users/{user.id}/deactivation", headers=await tenant.backend_headers()
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["active"], body["version"]) == (user.id, False, 2)
    assert response.headers["etag"] == '"2"'

    for path in ("/v1/users/me", "/v1/channels"):
        refused = await tenant.http.get(path, headers=user.headers)
        problem(refused, 401, "invalid-token")
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]

    for token_type, subject in (
        (rfc8693.USER_ID_TYPE, user.id),
        (rfc8693.EXTERNAL_ID_TYPE, user.external_id),
    ):
        exchanged = await tenant.token_request(
            grant_type=rfc8693.GRANT_TYPE, subject_token=subject, subject_token_type=token_type
        )
        assert exchanged.status_code == 400
        assert exchanged.json()["error"] == "invalid_request"
        assert "access_token" not in exchanged.json()


async def test_deactivating_twice_is_idempotent(tenant: Tenant) -> None:
    """Deactivating an inactive user answers 200 and does not bump the version."""
    created = await create(tenant, "ivy")
    headers = await tenant.backend_headers()
    url = f"/v1/users/{created['id']}/deactivation"
    first = await tenant.http.post(url, headers=headers)
    second = await tenant.http.post(url, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()


async def test_deactivation_leaves_other_users_alone(tenant: Tenant) -> None:
    """Only the deactivated user's tokens stop working."""
    jane = await tenant.user("jane")
    kim = await tenant.user("kim")
    response = await tenant.http.post(
        f"/v1/users/{jane.id}/deactivation", headers=await tenant.backend_headers()
    )
    assert response.status_code == 200
    me = await tenant.http.get("/v1/users/me", headers=kim.headers)
    assert (me.status_code, me.json()["id"]) == (200, kim.id)


# --- /v1/users/me and scopes ----------------------------------------------------------------


async def test_me_returns_the_calling_user(tenant: Tenant) -> None:
    """A user token reads its own user at /v1/users/me."""
    user = await tenant.user("lee", "Lee")
    response = await tenant.http.get("/v1/users/me", headers=user.headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["external_id"], body["display_name"]) == (user.id, "lee", "Lee")
    assert response.headers["etag"] == f'"{body["version"]}"'


async def test_backend_token_on_me_is_insufficient_scope(tenant: Tenant) -> None:
    """The backend is not a user: /v1/users/me needs chat:read."""
    response = await tenant.http.get("/v1/users/me", headers=await tenant.backend_headers())
    problem(response, 403, "insufficient-scope")
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert 'scope="chat:read"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/v1/users", "users:read"),
        ("POST", "/v1/users", "users:write"),
        ("GET", "/v1/users/{me}", "users:read"),
        ("PATCH", "/v1/users/{me}", "users:write"),
        ("POST", "/v1/users/{me}/deactivation", "users:write"),
    ],
)
async def test_user_token_cannot_manage_users(
    tenant: Tenant, method: str, path: str, scope: str
) -> None:
    """A user token on the backend's user routes is 403 insufficient_scope (RFC 6750)."""
    user = await tenant.user("mo")
    body: dict[str, str] | None = None
    if method == "POST" and path == "/v1/users":
        body = {"external_id": "new", "display_name": "New"}
    elif method == "PATCH":
        body = {"display_name": "Self-renamed"}
    response = await tenant.http.request(
        method, path.format(me=user.id), json=body, headers=user.headers
    )
    detail = problem(response, 403, "insufficient-scope")
    assert scope in detail["detail"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="{scope}"' in challenge
    still = await tenant.http.get("/v1/users/me", headers=user.headers)
    assert still.json()["display_name"] == "mo"
    assert still.json()["active"] is True


# --- malformed requests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"body.external_id", "body.display_name"}),
        ({"external_id": "a"}, {"body.display_name"}),
        ({"display_name": "A"}, {"body.external_id"}),
        ({"external_id": "a", "display_name": "A", "is_admin": True}, {"body.is_admin"}),
        ({"external_id": 123, "display_name": ["A"]}, {"body.external_id", "body.display_name"}),
        ({"external_id": None, "display_name": "A"}, {"body.external_id"}),
        ({"external_id": "a", "display_name": "x" * 201}, {"body.display_name"}),
        ({"external_id": "a", "display_name": " \t "}, {"body.display_name"}),
        ({"external_id": "", "display_name": "A"}, {"body.external_id"}),
        ({"external_id": "x" * 256, "display_name": "A"}, {"body.external_id"}),
        ({"external_id": "alice smith", "display_name": "A"}, {"body.external_id"}),
        ({"external_id": "a/b", "display_name": "A"}, {"body.external_id"}),
        ({"external_id": "ålice", "display_name": "A"}, {"body.external_id"}),
        ({"external_id": "a\nb", "display_name": "A"}, {"body.external_id"}),
        ({"external_id": "<script>", "display_name": "A"}, {"body.external_id"}),
    ],
)
async def test_malformed_create_body_is_422_listing_fields(
    tenant: Tenant, body: dict[str, Any], fields: set[str]
) -> None:
    """Each invalid or unknown field is named in errors[].field; nothing is created."""
    headers = await tenant.backend_headers()
    response = await tenant.http.post("/v1/users", json=body, headers=headers)
    assert error_fields(response) == fields
    listed = await tenant.http.get("/v1/users", headers=headers)
    assert listed.json()["data"] == []


async def test_validation_errors_do_not_echo_the_input(tenant: Tenant) -> None:
    """The problem names the field but never reflects the offending value."""
    marker = "<img src=x onerror=alert(1)>"
    response = await tenant.http.post(
        "/v1/users",
        json={"external_id": marker, "display_name": "A"},
        headers=await tenant.backend_headers(),
    )
    assert error_fields(response) == {"body.external_id"}
    assert marker not in response.text
    assert "onerror" not in response.text


@pytest.mark.parametrize("raw", ["[]", "null", '"alice"', "42"])
async def test_body_that_is_not_an_object_is_422(tenant: Tenant, raw: str) -> None:
    """Valid JSON that is not an object fails validation on the body itself."""
    response = await tenant.http.post(
        "/v1/users",
        content=raw,
        headers={**await tenant.backend_headers(), "Content-Type": "application/json"},
    )
    assert error_fields(response) == {"body"}


@pytest.mark.parametrize("raw", ["{", "{'external_id': 'a'}", "external_id=a", '{"a":1}}'])
async def test_non_json_body_is_400(tenant: Tenant, raw: str) -> None:
    """A body that is not JSON at all is a bad request, not a validation error."""
    response = await tenant.http.post(
        "/v1/users",
        content=raw,
        headers={**await tenant.backend_headers(), "Content-Type": "application/json"},
    )
    body = problem(response, 400, "bad-request")
    assert "errors" not in body


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx", "text/json"],
)
async def test_wrong_content_type_is_415(tenant: Tenant, content_type: str | None) -> None:
    """A JSON body under any other media type is refused before it is parsed."""
    headers = await tenant.backend_headers()
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await tenant.http.post(
        "/v1/users", content=b'{"external_id": "a", "display_name": "A"}', headers=headers
    )
    problem(response, 415, "unsupported-media-type")
    assert (await tenant.http.get("/v1/users", headers=headers)).json()["data"] == []


async def test_json_with_charset_parameter_is_accepted(tenant: Tenant) -> None:
    """``application/json; charset=utf-8`` is JSON."""
    response = await tenant.http.post(
        "/v1/users",
        content='{"external_id": "zoë", "display_name": "Zoë"}'.encode(),
        headers={
            **await tenant.backend_headers(),
            "Content-Type": "Application/JSON; charset=utf-8",
        },
    )
    assert error_fields(response) == {"body.external_id"}
    ok = await tenant.http.post(
        "/v1/users",
        content='{"external_id": "zoe", "display_name": "Zoë"}'.encode(),
        headers={
            **await tenant.backend_headers(),
            "Content-Type": "application/json; charset=utf-8",
        },
    )
    assert ok.status_code == 201
    assert ok.json()["display_name"] == "Zoë"


async def test_unknown_method_on_a_user_is_405(tenant: Tenant, http: httpx.AsyncClient) -> None:
    """Users are deactivated, never deleted: DELETE is not allowed."""
    created = await create(tenant, "nia")
    response = await http.delete(
        f"/v1/users/{created['id']}", headers=await tenant.backend_headers()
    )
    problem(response, 405, "method-not-allowed")
    still = await http.get(f"/v1/users/{created['id']}", headers=await tenant.backend_headers())
    assert still.json() == created
