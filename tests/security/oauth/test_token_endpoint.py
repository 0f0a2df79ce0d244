"""``POST /oauth/token`` over real HTTP: RFC 6749 client authentication, grants and errors."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from joserfc import jws

from bastion.core.ids import Kind, new_id
from bastion.security import scopes
from tests.security.guard.test_guards import raw_request
from tests.support.server import ServerThread
from tests.support.tenants import Tenant

TOKEN = "/oauth/token"
BACKEND_SCOPE = "clients:read clients:write tokens:exchange users:read users:write"


def basic(client_id: str, secret: str) -> dict[str, str]:
    """An HTTP Basic Authorization header."""
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def claims_of(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (header, claims) of a compact JWS, without verifying it."""
    parts = jws.extract_compact(token.encode())
    payload: dict[str, Any] = json.loads(parts.payload)
    return dict(parts.protected), payload


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    """An RFC 6749 §5.2 error body, never cached."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    assert isinstance(body["error_description"], str)
    assert body["error_description"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def assert_invalid_client(response: httpx.Response) -> None:
    """401 ``invalid_client`` with a Basic challenge (§5.2)."""
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert 'realm="bastion"' in response.headers["www-authenticate"]


async def test_client_credentials_issues_a_backend_token(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """RFC 6749 §4.4 / §5.1: a Bearer token with expiry and scope, never cached."""
    response = await tenant.token_request(grant_type="client_credentials")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == server.settings.auth.client_token_ttl
    assert body["scope"] == BACKEND_SCOPE

    header, claims = claims_of(body["access_token"])
    assert header == {
        "alg": server.services.keys.alg,
        "typ": "at+jwt",
        "kid": server.services.keys.active.kid,
    }
    assert claims["sub"] == claims["client_id"] == tenant.client_id
    assert claims["app_id"] == tenant.app_id
    assert claims["iss"] == server.settings.issuer
    assert claims["aud"] == server.settings.audience
    assert claims["exp"] - claims["iat"] == server.settings.auth.client_token_ttl
    assert "act" not in claims

    listed = await http.get(
        "/v1/users", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert listed.status_code == 200


async def test_each_request_gets_a_new_token(tenant: Tenant) -> None:
    """Two requests give two different tokens (distinct jti)."""
    first = (await tenant.token_request(grant_type="client_credentials")).json()
    second = (await tenant.token_request(grant_type="client_credentials")).json()
    assert first["access_token"] != second["access_token"]
    assert claims_of(first["access_token"])[1]["jti"] != claims_of(second["access_token"])[1]["jti"]


async def test_wrong_secret_is_invalid_client(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """A wrong secret for a real client is 401 invalid_client."""
    response = await http.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic(tenant.client_id, tenant.client_secret + "x"),
    )
    assert_invalid_client(response)


async def test_unknown_client_is_invalid_client_with_the_same_body(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """An unknown client id gets exactly the answer a wrong secret gets (no enumeration)."""
    unknown = await http.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic(new_id(Kind.CLIENT), tenant.client_secret),
    )
    wrong = await http.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic(tenant.client_id, "not-the-secret"),
    )
    assert_invalid_client(unknown)
    assert unknown.json() == wrong.json()


async def test_another_apps_secret_is_invalid_client(
    http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    """A client id paired with another client's secret is refused."""
    response = await http.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic(tenant.client_id, other_tenant.client_secret),
    )
    assert_invalid_client(response)


async def test_no_authorization_is_invalid_client(http: httpx.AsyncClient) -> None:
    """Without any client authentication the answer is 401 invalid_client with a challenge."""
    response = await http.post(TOKEN, data={"grant_type": "client_credentials"})
    assert_invalid_client(response)


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b":secret-without-id").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Basic " + base64.b64encode(b"cli_x:" + b"s" * 600).decode(),
        "Bearer some-token",
        "Digest username=cli_x",
    ],
)
async def test_malformed_basic_is_invalid_client(
    http: httpx.AsyncClient, authorization: str
) -> None:
    """Credentials that are not well-formed Basic are 401 invalid_client, never a 500."""
    response = await http.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": authorization},
    )
    assert_invalid_client(response)


async def test_lowercase_basic_scheme_is_accepted(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """The auth scheme name is case-insensitive (RFC 9110 §11.1)."""
    raw = base64.b64encode(f"{tenant.client_id}:{tenant.client_secret}".encode()).decode()
    response = await http.post(
        TOKEN, data={"grant_type": "client_credentials"}, headers={"Authorization": f"basic {raw}"}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "extra",
    [{"client_id": "x"}, {"client_secret": "x"}, {"client_id": "x", "client_secret": "y"}],
)
async def test_body_credentials_beside_basic_are_invalid_request(
    tenant: Tenant, extra: dict[str, str]
) -> None:
    """Basic plus credentials in the body is two authentication methods (§2.3, §5.2):
    400 invalid_request."""
    response = await tenant.token_request(grant_type="client_credentials", **extra)
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize("with_id", [True, False])
async def test_a_secret_in_the_body_is_invalid_client(
    http: httpx.AsyncClient, tenant: Tenant, with_id: bool
) -> None:
    """The real secret in the body (client_secret_post, no Basic header) never yields a
    token: §5.2 calls an unsupported authentication method invalid_client, and the Basic
    challenge names the method that is supported."""
    form = {"grant_type": "client_credentials", "client_secret": tenant.client_secret}
    if with_id:
        form["client_id"] = tenant.client_id
    response = await http.post(TOKEN, data=form)
    assert_invalid_client(response)
    assert "access_token" not in response.text


async def test_a_secret_and_an_assertion_in_the_body_are_invalid_request(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A body secret beside a client assertion is two methods at once: invalid_request."""
    form = {
        "grant_type": "client_credentials",
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": "e30.e30.c2ln",
    }
    assert_oauth_error(await http.post(TOKEN, data=form), 400, "invalid_request")


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
async def test_two_authorization_headers_are_invalid_request(
    http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, path: str
) -> None:
    """§5.2: a request with multiple credentials is invalid_request, whichever comes first."""
    ours = basic(tenant.client_id, tenant.client_secret)["Authorization"]
    theirs = basic(other_tenant.client_id, other_tenant.client_secret)["Authorization"]
    form = {"grant_type": "client_credentials", "token": "x"}
    for first, second in ((ours, theirs), (theirs, ours), (ours, ours)):
        headers = [("Authorization", first), ("Authorization", second)]
        response = await http.post(path, data=form, headers=headers)
        assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "form",
    [
        [("grant_type", "client_credentials"), ("grant_type", "client_credentials")],
        [("grant_type", "client_credentials"), ("scope", "users:read"), ("scope", "users:write")],
    ],
)
async def test_a_repeated_parameter_is_invalid_request(
    http: httpx.AsyncClient, tenant: Tenant, form: list[tuple[str, str]]
) -> None:
    """RFC 6749 §3.2: request parameters MUST NOT be included more than once."""
    response = await http.post(
        TOKEN,
        content=urlencode(form).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            **basic(tenant.client_id, tenant.client_secret),
        },
    )
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize("form", [{}, {"grant_type": ""}, {"scope": "users:read"}])
async def test_missing_grant_type_is_invalid_request(tenant: Tenant, form: dict[str, str]) -> None:
    """No (or an empty) grant_type is 400 invalid_request."""
    response = await tenant.token_request(**form)
    assert_oauth_error(response, 400, "invalid_request")


async def test_an_empty_body_is_invalid_request(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """A POST with no body at all is 400 invalid_request."""
    response = await http.post(TOKEN, headers=basic(tenant.client_id, tenant.client_secret))
    assert_oauth_error(response, 400, "invalid_request")


async def test_a_non_utf8_form_is_invalid_request(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """A body that is not a UTF-8 form is 400 invalid_request, not a 500."""
    response = await http.post(
        TOKEN,
        content=b"grant_type=\xff\xfe",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            **basic(tenant.client_id, tenant.client_secret),
        },
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_an_over_long_parameter_is_invalid_request(tenant: Tenant) -> None:
    """A parameter over 4096 characters is refused."""
    response = await tenant.token_request(grant_type="client_credentials", scope="a" * 5000)
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "grant_type",
    [
        "password",
        "implicit",
        "token",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "CLIENT_CREDENTIALS",
    ],
)
async def test_other_grants_are_unsupported(tenant: Tenant, grant_type: str) -> None:
    """Only client_credentials and token exchange exist (password/implicit MUST NOT be used)."""
    response = await tenant.token_request(
        grant_type=grant_type, username="alice", password="pw", code="abc", refresh_token="r"
    )
    assert_oauth_error(response, 400, "unsupported_grant_type")


@pytest.mark.parametrize(
    "scope", ["chat:read", "chat:write", "users:read admin", "users:read users:delete", "*"]
)
async def test_scope_beyond_the_clients_is_invalid_scope(tenant: Tenant, scope: str) -> None:
    """A backend client cannot obtain user scopes or unknown scopes: 400 invalid_scope."""
    response = await tenant.token_request(grant_type="client_credentials", scope=scope)
    assert_oauth_error(response, 400, "invalid_scope")


async def test_requesting_a_subset_narrows_the_token(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A token asked for ``users:read`` only can read users but not create them (403 scope)."""
    response = await tenant.token_request(grant_type="client_credentials", scope="users:read")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == scopes.USERS_READ
    assert claims_of(body["access_token"])[1]["scope"] == scopes.USERS_READ
    headers = {"Authorization": f"Bearer {body['access_token']}"}

    assert (await http.get("/v1/users", headers=headers)).status_code == 200
    refused = await http.post(
        "/v1/users", json={"external_id": "carol", "display_name": "Carol"}, headers=headers
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["status"] == 403
    assert refused.headers["www-authenticate"] == (
        'Bearer realm="bastion", error="insufficient_scope", scope="users:write"'
    )


async def test_scope_order_and_spacing_are_normalised(tenant: Tenant) -> None:
    """The granted scope is returned in a stable, space-delimited order."""
    response = await tenant.token_request(
        grant_type="client_credentials", scope="users:write  users:read"
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "users:read users:write"


OAUTH_ENDPOINTS = ["/oauth/token", "/oauth/revoke", "/oauth/introspect"]


@pytest.mark.parametrize("path", OAUTH_ENDPOINTS)
async def test_a_json_body_is_415_invalid_request(
    http: httpx.AsyncClient, tenant: Tenant, path: str
) -> None:
    """The OAuth endpoints take a form (RFC 6749 §3.2); JSON is 415 in the §5.2 shape."""
    response = await http.post(
        path,
        json={"grant_type": "client_credentials", "token": "x"},
        headers=basic(tenant.client_id, tenant.client_secret),
    )
    assert_oauth_error(response, 415, "invalid_request")
    assert "access_token" not in response.text


@pytest.mark.parametrize("path", OAUTH_ENDPOINTS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_another_method_is_405_invalid_request(
    http: httpx.AsyncClient, tenant: Tenant, path: str, method: str
) -> None:
    """Credentials never travel in a URL: only POST is allowed, and the 405 keeps its
    ``Allow`` header and the §5.2 shape."""
    response = await http.request(
        method,
        path,
        params={"grant_type": "client_credentials"},
        headers=basic(tenant.client_id, tenant.client_secret),
    )
    assert_oauth_error(response, 405, "invalid_request")
    assert response.headers["allow"] == "POST"


async def test_an_oversized_body_is_413_invalid_request(server: ServerThread) -> None:
    """A body over server.max_body_bytes is refused by the size guard, in the §5.2 shape
    (only the head is sent: see ``raw_request``)."""
    status, headers, body = await raw_request(
        server,
        "POST /oauth/token HTTP/1.1\nHost: 127.0.0.1\n"
        "Content-Type: application/x-www-form-urlencoded\n"
        f"Content-Length: {server.settings.server.max_body_bytes + 1}\n",
    )
    assert status == 413
    assert headers["content-type"].startswith("application/json")
    assert headers["cache-control"] == "no-store"
    assert json.loads(body)["error"] == "invalid_request"


async def test_an_unknown_query_parameter_is_400_invalid_request(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A query parameter the endpoint does not know is a plain 400 invalid_request, not
    a 422 problem document."""
    response = await http.post(
        f"{TOKEN}?grant_typo=client_credentials",
        data={"grant_type": "client_credentials"},
        headers=basic(tenant.client_id, tenant.client_secret),
    )
    assert_oauth_error(response, 400, "invalid_request")
    assert "grant_typo" in response.json()["error_description"]
