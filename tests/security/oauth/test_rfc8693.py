"""RFC 8693 token exchange over real HTTP: an app backend obtains a token for one of its users."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from joserfc import jws

from bastion.app import secret_hasher
from bastion.core.clock import SystemClock
from bastion.core.ids import Kind, new_id
from bastion.security.oauth import rfc8693
from bastion.store.repos import apps as apps_repo
from tests.support.server import ServerThread
from tests.support.tenants import Tenant

EXCHANGE = rfc8693.GRANT_TYPE
USER_ID = rfc8693.USER_ID_TYPE
EXTERNAL_ID = rfc8693.EXTERNAL_ID_TYPE
ACCESS_TOKEN = rfc8693.ACCESS_TOKEN_TYPE


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (header, claims) of a compact JWS, without verifying it."""
    extracted = jws.extract_compact(token.encode())
    claims: dict[str, Any] = json.loads(extracted.payload)
    return dict(extracted.protected), claims


def assert_oauth_error(response: httpx.Response, error: str, status: int = 400) -> None:
    """An RFC 6749 §5.2 error with the given code, never cached."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    assert response.headers["cache-control"] == "no-store"


async def exchange(
    tenant: Tenant, subject: str, type_: str = USER_ID, **extra: str
) -> httpx.Response:
    """A token-exchange request authenticated as ``tenant``'s backend."""
    return await tenant.token_request(
        grant_type=EXCHANGE, subject_token=subject, subject_token_type=type_, **extra
    )


async def add_client(
    server: ServerThread, tenant: Tenant, scopes: frozenset[str]
) -> tuple[str, str]:
    """Register a second backend client for the tenant with only ``scopes``."""
    hasher = secret_hasher(server.settings)
    secret = hasher.new_secret()
    client_id = new_id(Kind.CLIENT)

    async def insert() -> None:
        async with server.services.db.write() as conn:
            await apps_repo.insert_client(
                conn,
                app_id=tenant.app_id,
                client_id=client_id,
                name="limited",
                secret_hash=hasher.hash(secret),
                scopes=scopes,
                now=SystemClock().now(),
            )

    server.run(insert())
    return client_id, secret


async def test_exchange_by_user_id(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """Naming a Bastion user id yields a delegated chat token for that user (§2.2.1)."""
    alice = await tenant.user("alice")
    response = await exchange(tenant, alice.id)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "issued_token_type", "token_type", "expires_in", "scope"}
    assert body["issued_token_type"] == ACCESS_TOKEN
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == server.settings.auth.user_token_ttl
    assert body["scope"] == "chat:read chat:write"

    me = await http.get("/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == alice.id


async def test_exchange_by_external_id(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """Naming the app's own user id (external id) works the same way."""
    bob = await tenant.user("bob-42@example.com")
    response = await exchange(tenant, bob.external_id, EXTERNAL_ID)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert parts(token)[1]["sub"] == bob.id
    me = await http.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["external_id"] == bob.external_id


async def test_issued_token_shows_the_delegation(server: ServerThread, tenant: Tenant) -> None:
    """The token is ``at+jwt``, acts for the user (``sub``) with the client as ``act.sub``."""
    alice = await tenant.user("alice")
    token = (await exchange(tenant, alice.id)).json()["access_token"]
    header, claims = parts(token)
    keys = server.services.keys
    assert header == {"alg": keys.alg, "typ": "at+jwt", "kid": keys.active.kid}
    assert claims["sub"] == alice.id
    assert claims["act"] == {"sub": tenant.client_id}
    assert claims["client_id"] == tenant.client_id
    assert claims["app_id"] == tenant.app_id
    assert claims["iss"] == server.settings.issuer
    assert claims["aud"] == server.settings.audience
    assert claims["exp"] - claims["iat"] == server.settings.auth.user_token_ttl


async def test_subjects_that_are_not_active_users_here_are_invalid_request(
    http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Unknown, malformed, deactivated and other-app users all get one identical answer."""
    stranger = await other_tenant.user("stranger")
    gone = await tenant.user("gone")
    deactivated = await http.post(
        f"/v1/users/{gone.id}/deactivation", headers=await tenant.backend_headers()
    )
    assert deactivated.status_code == 200, deactivated.text

    attempts = [
        (new_id(Kind.USER), USER_ID),
        ("usr_not-an-id", USER_ID),
        (new_id(Kind.CHANNEL), USER_ID),
        ("nobody", EXTERNAL_ID),
        (gone.id, USER_ID),
        (gone.external_id, EXTERNAL_ID),
        (stranger.id, USER_ID),
        (stranger.external_id, EXTERNAL_ID),
    ]
    bodies = []
    for subject, type_ in attempts:
        response = await exchange(tenant, subject, type_)
        assert_oauth_error(response, "invalid_request")
        bodies.append(response.json())
    assert all(body == bodies[0] for body in bodies)


@pytest.mark.parametrize(
    "type_",
    [
        ACCESS_TOKEN,
        "urn:ietf:params:oauth:token-type:jwt",
        "urn:ietf:params:oauth:token-type:id_token",
        "urn:bastion:params:oauth:token-type:USER-ID",
        "user-id",
    ],
)
async def test_wrong_subject_token_type_is_invalid_request(tenant: Tenant, type_: str) -> None:
    """Only Bastion's user-id and external-id subject types are understood."""
    alice = await tenant.user("alice")
    assert_oauth_error(await exchange(tenant, alice.id, type_), "invalid_request")


async def test_a_user_access_token_is_not_a_subject(tenant: Tenant) -> None:
    """A user's own access token, offered as an access_token subject, is refused."""
    alice = await tenant.user("alice")
    assert_oauth_error(await exchange(tenant, alice.token, ACCESS_TOKEN), "invalid_request")


@pytest.mark.parametrize(
    "form",
    [
        {"subject_token_type": USER_ID},
        {"subject_token": "", "subject_token_type": USER_ID},
        {"subject_token": "alice"},
        {},
    ],
)
async def test_missing_subject_is_invalid_request(tenant: Tenant, form: dict[str, str]) -> None:
    """§2.1: subject_token and subject_token_type are both REQUIRED."""
    await tenant.user("alice")
    response = await tenant.token_request(grant_type=EXCHANGE, **form)
    assert_oauth_error(response, "invalid_request")


@pytest.mark.parametrize(
    "target",
    [
        {"audience": "https://other.example"},
        {"audience": "urn:other:api"},
        {"resource": "https://other.example/api"},
    ],
)
async def test_another_audience_is_invalid_target(tenant: Tenant, target: dict[str, str]) -> None:
    """§2.2.2: a token for any audience but ours is ``invalid_target``."""
    alice = await tenant.user("alice")
    assert_oauth_error(await exchange(tenant, alice.id, **target), "invalid_target")


async def test_our_own_audience_is_accepted(server: ServerThread, tenant: Tenant) -> None:
    """Naming this server as audience or resource is allowed."""
    alice = await tenant.user("alice")
    audience = server.settings.audience
    for target in ({"audience": audience}, {"resource": audience}):
        response = await exchange(tenant, alice.id, **target)
        assert response.status_code == 200, response.text
        assert parts(response.json()["access_token"])[1]["aud"] == audience


@pytest.mark.parametrize(
    "scope", ["users:read", "users:write", "tokens:exchange", "chat:read admin", "chat:*"]
)
async def test_scope_beyond_chat_is_invalid_scope(tenant: Tenant, scope: str) -> None:
    """A user token can never carry backend scopes or unknown scopes."""
    alice = await tenant.user("alice")
    assert_oauth_error(await exchange(tenant, alice.id, scope=scope), "invalid_scope")


async def test_a_narrower_scope_is_enforced(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """A ``chat:read`` token can list channels but not create one (403 insufficient_scope)."""
    alice = await tenant.user("alice")
    response = await exchange(tenant, alice.id, scope="chat:read")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "chat:read"
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert (await http.get("/v1/channels", headers=headers)).status_code == 200
    refused = await http.post(
        "/v1/channels", json={"type": "group", "name": "x", "members": []}, headers=headers
    )
    assert refused.status_code == 403
    assert refused.json()["status"] == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]


async def test_a_user_token_cannot_manage_users(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """The exchanged token cannot do the backend's work (list users)."""
    alice = await tenant.user("alice")
    response = await http.get("/v1/users", headers=alice.headers)
    assert response.status_code == 403
    assert response.json()["status"] == 403


async def test_requested_token_type_other_than_access_token_is_invalid_request(
    tenant: Tenant,
) -> None:
    """Only access tokens are issued: asking for a refresh or ID token is refused."""
    alice = await tenant.user("alice")
    for requested in (
        "urn:ietf:params:oauth:token-type:refresh_token",
        "urn:ietf:params:oauth:token-type:id_token",
    ):
        response = await exchange(tenant, alice.id, requested_token_type=requested)
        assert_oauth_error(response, "invalid_request")
    ok = await exchange(tenant, alice.id, requested_token_type=ACCESS_TOKEN)
    assert ok.status_code == 200, ok.text


async def test_the_clients_own_token_as_actor_works(tenant: Tenant) -> None:
    """An actor_token that is this client's own access token is accepted (§2.1)."""
    alice = await tenant.user("alice")
    response = await exchange(
        tenant, alice.id, actor_token=await tenant.backend_token(), actor_token_type=ACCESS_TOKEN
    )
    assert response.status_code == 200, response.text
    assert parts(response.json()["access_token"])[1]["act"] == {"sub": tenant.client_id}


async def test_another_clients_token_as_actor_is_invalid_request(
    server: ServerThread, tenant: Tenant, other_tenant: Tenant
) -> None:
    """An actor_token of another app's client, or another client of this app, is refused."""
    alice = await tenant.user("alice")
    sibling_id, sibling_secret = await add_client(
        server, tenant, frozenset({"users:read", "tokens:exchange"})
    )
    sibling = await tenant.http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(sibling_id, sibling_secret)
    )
    assert sibling.status_code == 200, sibling.text
    for actor in (await other_tenant.backend_token(), sibling.json()["access_token"]):
        response = await exchange(
            tenant, alice.id, actor_token=actor, actor_token_type=ACCESS_TOKEN
        )
        assert_oauth_error(response, "invalid_request")


async def test_a_user_token_as_actor_is_invalid_request(tenant: Tenant) -> None:
    """A token acting for a user is not the client's own token."""
    alice = await tenant.user("alice")
    response = await exchange(
        tenant, alice.id, actor_token=alice.token, actor_token_type=ACCESS_TOKEN
    )
    assert_oauth_error(response, "invalid_request")


@pytest.mark.parametrize("actor", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
async def test_a_garbage_actor_token_is_invalid_request(tenant: Tenant, actor: str) -> None:
    """An actor_token that does not verify is invalid_request, not a 500."""
    alice = await tenant.user("alice")
    response = await exchange(tenant, alice.id, actor_token=actor, actor_token_type=ACCESS_TOKEN)
    assert_oauth_error(response, "invalid_request")


async def test_actor_token_and_type_go_together(tenant: Tenant) -> None:
    """§2.1: actor_token_type is REQUIRED with actor_token and MUST NOT appear without it."""
    alice = await tenant.user("alice")
    own = await tenant.backend_token()
    without_type = await exchange(tenant, alice.id, actor_token=own)
    without_token = await exchange(tenant, alice.id, actor_token_type=ACCESS_TOKEN)
    wrong_type = await exchange(tenant, alice.id, actor_token=own, actor_token_type=USER_ID)
    for response in (without_type, without_token, wrong_type):
        assert_oauth_error(response, "invalid_request")


async def test_a_client_without_tokens_exchange_is_unauthorized_client(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """A backend client not granted ``tokens:exchange`` cannot mint user tokens."""
    alice = await tenant.user("alice")
    client_id, secret = await add_client(server, tenant, frozenset({"users:read"}))
    response = await http.post(
        "/oauth/token",
        data={"grant_type": EXCHANGE, "subject_token": alice.id, "subject_token_type": USER_ID},
        auth=(client_id, secret),
    )
    assert_oauth_error(response, "unauthorized_client")


async def test_exchange_needs_client_authentication(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Without Basic credentials no exchange happens: 401 invalid_client."""
    alice = await tenant.user("alice")
    response = await http.post(
        "/oauth/token",
        data={"grant_type": EXCHANGE, "subject_token": alice.id, "subject_token_type": USER_ID},
    )
    assert_oauth_error(response, "invalid_client", status=401)
    wrong = await http.post(
        "/oauth/token",
        data={"grant_type": EXCHANGE, "subject_token": alice.id, "subject_token_type": USER_ID},
        auth=(tenant.client_id, "wrong"),
    )
    assert_oauth_error(wrong, "invalid_client", status=401)


async def test_exchanged_token_for_a_deactivated_user_stops_working(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Deactivating a user revokes tokens already exchanged for them."""
    alice = await tenant.user("alice")
    assert (await http.get("/v1/users/me", headers=alice.headers)).status_code == 200
    deactivated = await http.post(
        f"/v1/users/{alice.id}/deactivation", headers=await tenant.backend_headers()
    )
    assert deactivated.status_code == 200
    after = await http.get("/v1/users/me", headers=alice.headers)
    assert after.status_code == 401
    assert after.headers["www-authenticate"] == 'Bearer realm="bastion", error="invalid_token"'
