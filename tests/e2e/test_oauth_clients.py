"""Off-the-shelf clients against the running server: Authlib's OAuth client and PyJWT.

Authlib (httpx integration) runs client_credentials, the authorization code flow with
PKCE S256, refresh and revocation; PyJWT verifies the issued tokens with keys fetched
from the published JWKS. Neither shares code with the server.
"""

from __future__ import annotations

import warnings

import jwt as pyjwt
import pytest

from tests.support.oauth import Browser, register_client, user_with_password
from tests.support.server import ServerThread
from tests.support.tenants import Tenant

with warnings.catch_warnings():
    # Authlib's httpx integration recommends its httpx2 fork at import; httpx is used here.
    # authlib.deprecate installs an "always" filter when imported, so import it first.
    import authlib.deprecate  # noqa: F401

    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.common.security import generate_token
    from authlib.integrations.httpx_client import OAuth2Client

pytestmark = pytest.mark.e2e


def _verify(server: ServerThread, token: str, audience: str, typ: str) -> dict[str, object]:
    """Verify a JWT with PyJWT's JWKS client, as a relying party would."""
    jwks = pyjwt.PyJWKClient(f"{server.base_url}/.well-known/jwks.json")
    key = jwks.get_signing_key_from_jwt(token)
    assert pyjwt.get_unverified_header(token)["typ"] == typ
    claims: dict[str, object] = pyjwt.decode(
        token,
        key,
        algorithms=["ES256", "EdDSA"],
        audience=audience,
        issuer=server.settings.issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    return claims


async def test_authlib_client_credentials(server: ServerThread, tenant: Tenant) -> None:
    """client_credentials with client_secret_basic; the token verifies with PyJWT."""
    with OAuth2Client(
        tenant.client_id,
        tenant.client_secret,
        token_endpoint_auth_method="client_secret_basic",
        scope="users:read",
    ) as client:
        token = client.fetch_token(
            f"{server.base_url}/oauth/token", grant_type="client_credentials"
        )
        response = client.get(f"{server.base_url}/v1/users")
    assert token["scope"] == "users:read"
    assert response.status_code == 200
    claims = _verify(server, token["access_token"], server.settings.audience, "at+jwt")
    assert claims["sub"] == tenant.client_id


async def test_authlib_code_flow_refresh_and_revocation(
    server: ServerThread, tenant: Tenant
) -> None:
    """Code + PKCE S256 through the login page, refresh, then revocation kills the tokens."""
    registered = await register_client(tenant)
    user_id = await user_with_password(tenant, "alice")
    base = server.base_url
    client = OAuth2Client(
        registered.id,
        registered.secret,
        scope="openid chat:read chat:write",
        redirect_uri=registered.redirect_uri,
        code_challenge_method="S256",
    )
    verifier = generate_token(48)
    url, state = client.create_authorization_url(
        f"{base}/oauth/authorize", code_verifier=verifier, nonce="n-abc"
    )
    browser = Browser(base)
    page = await browser.follow(await browser.http.get(url))
    answer = await browser.submit(
        "/oauth/login", page, username="alice", password="correct horse battery staple"
    )
    await browser.close()
    callback = answer.headers["location"]
    token = client.fetch_token(
        f"{base}/oauth/token", authorization_response=callback, code_verifier=verifier, state=state
    )
    access = _verify(server, token["access_token"], server.settings.audience, "at+jwt")
    assert access["sub"] == user_id
    identity = _verify(server, token["id_token"], registered.id, "JWT")
    assert identity["nonce"] == "n-abc"
    assert identity["sub"] == user_id

    refreshed = client.refresh_token(f"{base}/oauth/token", refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    me = client.get(f"{base}/v1/users/me")
    assert me.status_code == 200

    revoked = client.revoke_token(
        f"{base}/oauth/revoke", token=refreshed["refresh_token"], token_type_hint="refresh_token"
    )
    assert revoked.status_code == 200
    assert client.get(f"{base}/v1/users/me").status_code == 401
    client.close()
