"""The authorization-code grant with PKCE, through the real server and login page."""

from __future__ import annotations

import httpx

from tests.support.oauth import (
    Browser,
    authorize_params,
    obtain_code,
    pkce_pair,
    query_of,
    redeem,
    register_client,
    user_with_password,
)
from tests.support.server import ServerThread
from tests.support.tenants import Tenant


async def test_code_flow_issues_tokens_that_work(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """Log in, redeem the code with the verifier: an access token for the user, a refresh token."""
    client = await register_client(tenant)
    user_id = await user_with_password(tenant, "alice")
    code, verifier, _ = await obtain_code(server.base_url, client, "alice")
    response = await redeem(http, client, code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["scope"] == "chat:read chat:write"
    me = await http.get("/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == user_id


async def test_the_redirect_carries_state_and_issuer(server: ServerThread, tenant: Tenant) -> None:
    """RFC 6749 §4.1.2 state and RFC 9207 iss come back with the code."""
    client = await register_client(tenant)
    await user_with_password(tenant, "bob")
    _, challenge = pkce_pair()
    params = authorize_params(client, challenge, state="xyz-123")
    browser = Browser(server.base_url)
    answer = await browser.login("bob", **params)
    await browser.close()
    query = query_of(answer.headers["location"])
    assert query["state"] == "xyz-123"
    assert query["iss"] == server.settings.issuer
    assert len(query["code"]) >= 43


async def test_openid_scope_adds_an_id_token(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """With openid, the response has an ID token for the client carrying the nonce."""
    client = await register_client(tenant)
    await user_with_password(tenant, "carol")
    code, verifier, _ = await obtain_code(
        server.base_url, client, "carol", scope="openid chat:read", nonce="n-0S6_WzA2Mj"
    )
    body = (await redeem(http, client, code, verifier)).json()
    assert body["scope"] == "chat:read openid"
    assert "id_token" in body


async def test_a_session_skips_the_password_next_time(server: ServerThread, tenant: Tenant) -> None:
    """After a login, the same browser is sent straight back with a new code."""
    client = await register_client(tenant)
    await user_with_password(tenant, "dave")
    browser = Browser(server.base_url)
    _, challenge = pkce_pair()
    first = await browser.login("dave", **authorize_params(client, challenge))
    assert first.status_code == 303
    again = await browser.authorize(**authorize_params(client, challenge))
    assert again.status_code == 303
    assert again.headers["location"].startswith(client.redirect_uri + "?code=")
    forced = await browser.authorize(**authorize_params(client, challenge, prompt="login"))
    assert forced.headers["location"].startswith("/oauth/login?")
    await browser.close()
