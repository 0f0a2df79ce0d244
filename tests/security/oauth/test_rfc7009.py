"""RFC 7009 token revocation through the real server."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.support.oauth import (
    RegisteredClient,
    obtain_code,
    redeem,
    register_client,
    token_call,
    user_with_password,
)
from tests.support.server import ServerThread
from tests.support.tenants import Tenant
from tests.support.ws import socket


async def _login(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant, username: str
) -> tuple[RegisteredClient, dict[str, str]]:
    client = await register_client(tenant)
    await user_with_password(tenant, username)
    code, verifier, _ = await obtain_code(server.base_url, client, username)
    return client, (await redeem(http, client, code, verifier)).json()


async def _me(http: httpx.AsyncClient, token: str) -> int:
    response = await http.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def test_revoking_a_refresh_token_kills_its_access_tokens(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """§2.1: the refresh token and every access token of its grant stop working."""
    client, tokens = await _login(http, server, tenant, "ivy")
    assert await _me(http, tokens["access_token"]) == 200
    form = {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
    response = await token_call(http, client, form, "/oauth/revoke")
    assert response.status_code == 200
    assert await _me(http, tokens["access_token"]) == 401
    refresh = await token_call(
        http, client, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refresh.json()["error"] == "invalid_grant"


async def test_revoking_an_access_token_takes_effect_on_the_next_request(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """An access token (even with a wrong hint) is refused right after revocation."""
    client, tokens = await _login(http, server, tenant, "jack")
    form = {"token": tokens["access_token"], "token_type_hint": "refresh_token"}
    assert (await token_call(http, client, form, "/oauth/revoke")).status_code == 200
    assert await _me(http, tokens["access_token"]) == 401


async def test_unknown_tokens_are_answered_200(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """§2.2: an invalid token is not an error."""
    client = await register_client(tenant)
    for token in ("garbage", "a.b.c", "x" * 300):
        response = await token_call(http, client, {"token": token}, "/oauth/revoke")
        assert response.status_code == 200


async def test_a_client_cannot_revoke_another_clients_token(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """§2.1: only the client the token was issued to may revoke it (others get a silent 200)."""
    _, tokens = await _login(http, server, tenant, "kate")
    other = await register_client(tenant)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        response = await token_call(http, other, {"token": token}, "/oauth/revoke")
        assert response.status_code == 200
    assert await _me(http, tokens["access_token"]) == 200


async def test_revocation_requires_client_authentication(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """No credentials, or a wrong secret: 401 invalid_client."""
    client = await register_client(tenant)
    anonymous = await http.post("/oauth/revoke", data={"token": "x"})
    assert anonymous.status_code == 401
    wrong = await http.post("/oauth/revoke", data={"token": "x"}, auth=(client.id, "nope"))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"


async def test_an_unsupported_hint_is_refused(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """§2.2.1 unsupported_token_type for hints the server does not know."""
    client = await register_client(tenant)
    form = {"token": "x", "token_type_hint": "id_token"}
    response = await token_call(http, client, form, "/oauth/revoke")
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_token_type"


async def test_revocation_closes_the_sockets_of_the_revoked_tokens(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """A WebSocket opened with a code-flow access token closes (4001) once its grant is revoked."""
    client, tokens = await _login(http, server, tenant, "sock")
    async with socket(server.ws_url, tokens["access_token"]) as live:
        form = {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
        assert (await token_call(http, client, form, "/oauth/revoke")).status_code == 200
        with pytest.raises(ConnectionClosed) as closed:
            await _drain(live.connection)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4001


async def _drain(connection: ClientConnection) -> None:
    """Read frames until the server closes the socket (or 5 s pass)."""
    async with asyncio.timeout(5):
        while True:
            await connection.recv()
