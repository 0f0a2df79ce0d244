"""Client registration (admin API) and client authentication at the token endpoint."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from bastion.security.oauth import rfc7523
from bastion.store.repos import apps as apps_repo
from tests.support.oauth import (
    CALLBACK,
    obtain_code,
    redeem,
    register_client,
    user_with_password,
)
from tests.support.server import ServerThread
from tests.support.tenants import Tenant


async def test_a_secret_is_shown_once_and_stored_hashed(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """201 with Location and the secret; reads never show it; the database holds argon2id."""
    client = await register_client(tenant)
    assert client.secret is not None
    assert client.body["client_type"] == "confidential"
    headers = await tenant.backend_headers()
    read = await http.get(f"/v1/clients/{client.id}", headers=headers)
    assert read.status_code == 200
    assert "client_secret" not in read.json()
    listed = await http.get("/v1/clients", headers=headers)
    assert client.id in [c["id"] for c in listed.json()["data"]]
    assert all("client_secret" not in c for c in listed.json()["data"])

    async def stored() -> str:
        async with server.services.db.read() as conn:
            record = await apps_repo.get_client(conn, client.id)
        assert record is not None
        return record.secret_hash

    secret_hash = server.run(stored())
    assert secret_hash.startswith("$argon2id$")
    assert client.secret not in secret_hash


async def test_rotation_keeps_the_old_secret_for_the_overlap(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Both secrets work during the overlap; without overlap the old one dies at once."""
    client = await register_client(
        tenant, grant_types=["client_credentials"], scopes=["users:read"], redirect_uris=[]
    )
    headers = await tenant.backend_headers()
    rotated = await http.post(
        f"/v1/clients/{client.id}/secret", json={"overlap_seconds": 3600}, headers=headers
    )
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["client_secret"]
    assert rotated.json()["previous_secret_expires_at"] is not None
    form = {"grant_type": "client_credentials"}
    for secret in (client.secret or "", new_secret):
        response = await http.post("/oauth/token", data=form, auth=(client.id, secret))
        assert response.status_code == 200, response.text
    again = await http.post(
        f"/v1/clients/{client.id}/secret", json={"overlap_seconds": 0}, headers=headers
    )
    newest = again.json()["client_secret"]
    for secret, status in ((new_secret, 401), (client.secret or "", 401), (newest, 200)):
        response = await http.post("/oauth/token", data=form, auth=(client.id, secret))
        assert response.status_code == status


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"redirect_uris": ["http://evil.example/cb"]}, "body.redirect_uris"),
        ({"redirect_uris": ["https://app.example/cb#frag"]}, "body.redirect_uris"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "body.redirect_uris"),
        ({"redirect_uris": []}, "body.redirect_uris"),
        ({"client_type": "public", "auth_method": "client_secret_basic"}, "body.auth_method"),
        ({"client_type": "public", "grant_types": ["client_credentials"]}, "body.grant_types"),
        ({"auth_method": "private_key_jwt"}, "body.jwks"),
        ({"scopes": ["chat:read", "admin:everything"]}, "body.scopes"),
    ],
)
async def test_insecure_registrations_are_refused(
    http: httpx.AsyncClient, tenant: Tenant, fields: dict[str, Any], field: str
) -> None:
    """422 naming the field for http redirects, fragments, odd schemes, unsafe combinations."""
    body = {"name": "x", "redirect_uris": [CALLBACK], **fields}
    response = await http.post("/v1/clients", json=body, headers=await tenant.backend_headers())
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_loopback_http_redirects_are_allowed_for_native_apps(
    tenant: Tenant,
) -> None:
    """RFC 8252 loopback redirects may use http."""
    client = await register_client(
        tenant, client_type="public", redirect_uris=["http://127.0.0.1:8765/callback"]
    )
    assert client.secret is None
    assert client.body["auth_method"] == "none"


async def test_user_tokens_cannot_manage_clients(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """Registering clients needs clients:write, which user tokens never carry."""
    user = await tenant.user("nick")
    response = await http.post("/v1/clients", json={"name": "x"}, headers=user.headers)
    assert response.status_code == 403


async def test_other_apps_clients_are_not_found(
    http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    """A client of another app is 404 on read, update and rotation."""
    theirs = await register_client(other_tenant)
    headers = await tenant.backend_headers()
    assert (await http.get(f"/v1/clients/{theirs.id}", headers=headers)).status_code == 404
    patch = await http.patch(f"/v1/clients/{theirs.id}", json={"name": "x"}, headers=headers)
    assert patch.status_code == 404
    rotate = await http.post(f"/v1/clients/{theirs.id}/secret", json={}, headers=headers)
    assert rotate.status_code == 404


async def test_a_disabled_client_cannot_authenticate(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """PATCH disabled=true: its secret stops working."""
    client = await register_client(
        tenant, grant_types=["client_credentials"], scopes=["users:read"], redirect_uris=[]
    )
    headers = await tenant.backend_headers()
    patched = await http.patch(f"/v1/clients/{client.id}", json={"disabled": True}, headers=headers)
    assert patched.json()["disabled"] is True
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client.id, client.secret or ""),
    )
    assert response.status_code == 401


def assertion(key: ECKey, client_id: str, audience: str, **claims: Any) -> str:
    """A private_key_jwt client assertion (RFC 7523 §3)."""
    now = int(time.time())
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
        **claims,
    }
    return jwt.encode({"alg": "ES256", "kid": key.kid}, body, key)


async def test_private_key_jwt_authenticates_once_per_jti(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """A signed assertion authenticates; the same assertion again is a replay (401)."""
    key = ECKey.generate_key("P-256", auto_kid=True)
    client = await register_client(
        tenant,
        auth_method="private_key_jwt",
        jwks={"keys": [key.as_dict(private=False)]},
        grant_types=["client_credentials"],
        scopes=["users:read"],
        redirect_uris=[],
    )
    assert client.secret is None
    signed = assertion(key, client.id, f"{server.settings.issuer}/oauth/token")
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": rfc7523.ASSERTION_TYPE,
        "client_assertion": signed,
    }
    first = await http.post("/oauth/token", data=form)
    assert first.status_code == 200, first.text
    replay = await http.post("/oauth/token", data=form)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "change",
    [
        {"aud": "https://another.example/token"},
        {"exp": int(time.time()) - 600},
        {"exp": int(time.time()) + 3600},
        {"iss": "cli_01M8HJ8M34DFH1DMEJA0ZRW8J9"},
        {"jti": None},
    ],
)
async def test_bad_assertions_are_refused(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant, change: dict[str, Any]
) -> None:
    """Wrong audience, expired, too long-lived, wrong issuer, no jti: 401 invalid_client."""
    key = ECKey.generate_key("P-256", auto_kid=True)
    client = await register_client(
        tenant,
        auth_method="private_key_jwt",
        jwks={"keys": [key.as_dict(private=False)]},
        grant_types=["client_credentials"],
        scopes=["users:read"],
        redirect_uris=[],
    )
    claims = {k: v for k, v in change.items() if v is not None}
    signed = assertion(key, client.id, server.settings.issuer, **claims)
    if change.get("jti", "") is None:
        signed = jwt.encode(
            {"alg": "ES256", "kid": key.kid},
            {
                "iss": client.id,
                "sub": client.id,
                "aud": server.settings.issuer,
                "exp": int(time.time()) + 60,
            },
            key,
        )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": rfc7523.ASSERTION_TYPE,
        "client_assertion": signed,
    }
    response = await http.post("/oauth/token", data=form)
    assert response.status_code == 401, response.text


async def test_public_clients_use_the_code_flow_with_pkce_only(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """A public client identifies itself by client_id and needs no secret; PKCE protects it."""
    spa = await register_client(tenant, client_type="public")
    await user_with_password(tenant, "olga")
    code, verifier, _ = await obtain_code(server.base_url, spa, "olga")
    response = await redeem(http, spa, code, verifier)
    assert response.status_code == 200, response.text
    backend = await http.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": spa.id}
    )
    assert backend.status_code == 400
    assert backend.json()["error"] == "unauthorized_client"
