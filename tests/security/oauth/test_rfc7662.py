"""RFC 7662 token introspection through the real server."""

from __future__ import annotations

import httpx

from tests.support.oauth import (
    obtain_code,
    redeem,
    register_client,
    token_call,
    user_with_password,
)
from tests.support.server import ServerThread
from tests.support.tenants import Tenant


async def test_live_tokens_are_described(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """§2.2: an active access token and refresh token with their scope, client and subject."""
    client = await register_client(tenant)
    user_id = await user_with_password(tenant, "liam")
    code, verifier, _ = await obtain_code(server.base_url, client, "liam")
    tokens = (await redeem(http, client, code, verifier)).json()
    access = await token_call(http, client, {"token": tokens["access_token"]}, "/oauth/introspect")
    assert access.status_code == 200
    body = access.json()
    assert body["active"] is True
    assert body["sub"] == user_id
    assert body["client_id"] == client.id
    assert body["scope"] == "chat:read chat:write"
    assert body["iss"] == server.settings.issuer
    refresh = await token_call(
        http, client, {"token": tokens["refresh_token"]}, "/oauth/introspect"
    )
    assert refresh.json()["active"] is True
    assert refresh.json()["token_type"] == "refresh_token"


async def test_dead_tokens_are_exactly_inactive(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Revoked, unknown, malformed and other apps' tokens: exactly {"active": false}."""
    client = await register_client(tenant)
    await user_with_password(tenant, "mia")
    code, verifier, _ = await obtain_code(server.base_url, client, "mia")
    tokens = (await redeem(http, client, code, verifier)).json()
    stranger = await register_client(other_tenant)
    foreign = await token_call(
        http, stranger, {"token": tokens["access_token"]}, "/oauth/introspect"
    )
    assert foreign.json() == {"active": False}
    await token_call(http, client, {"token": tokens["refresh_token"]}, "/oauth/revoke")
    for token in (tokens["access_token"], tokens["refresh_token"], "unknown", "a.b.c"):
        response = await token_call(http, client, {"token": token}, "/oauth/introspect")
        assert response.status_code == 200
        assert response.json() == {"active": False}


async def test_introspection_requires_client_authentication(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """§2.1: anonymous callers and public clients are refused with 401."""
    anonymous = await http.post("/oauth/introspect", data={"token": "x"})
    assert anonymous.status_code == 401
    spa = await register_client(tenant, client_type="public")
    response = await token_call(http, spa, {"token": "x"}, "/oauth/introspect")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_backend_tokens_can_be_introspected(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """The app backend may introspect its own client_credentials tokens."""
    token = await tenant.backend_token()
    response = await http.post(
        "/oauth/introspect", data={"token": token}, auth=(tenant.client_id, tenant.client_secret)
    )
    assert response.json()["active"] is True
    assert response.json()["sub"] == tenant.client_id
