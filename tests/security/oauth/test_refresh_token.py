"""The refresh_token grant: rotation on every use, reuse detection, lifetimes."""

from __future__ import annotations

import httpx

from bastion.observe.events import MemorySink
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


async def _tokens(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant, username: str
) -> tuple[RegisteredClient, dict[str, str]]:
    client = await register_client(tenant)
    await user_with_password(tenant, username)
    code, verifier, _ = await obtain_code(server.base_url, client, username)
    response = await redeem(http, client, code, verifier)
    assert response.status_code == 200, response.text
    return client, response.json()


async def _refresh(
    http: httpx.AsyncClient, client: RegisteredClient, token: str, **extra: str
) -> httpx.Response:
    return await token_call(
        http, client, {"grant_type": "refresh_token", "refresh_token": token, **extra}
    )


async def test_every_refresh_rotates_the_token(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """Each use returns a new refresh token and a working access token."""
    client, first = await _tokens(http, server, tenant, "erin")
    second = await _refresh(http, client, first["refresh_token"])
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    me = await http.get("/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200


async def test_replaying_a_rotated_token_revokes_the_family(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """RFC 9700 §4.14.2: the old token again kills every token of the family, with an event."""
    sink = MemorySink()
    server.services.events.add_sink(sink)
    client, first = await _tokens(http, server, tenant, "frank")
    second = (await _refresh(http, client, first["refresh_token"])).json()
    replay = await _refresh(http, client, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # The legitimate holder's newest tokens die too.
    again = await _refresh(http, client, second["refresh_token"])
    assert again.json()["error"] == "invalid_grant"
    for token in (first["access_token"], second["access_token"]):
        me = await http.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401
    reuse = [e for e in sink.of("token.reuse_detected") if e.actor.client_id == client.id]
    assert len(reuse) == 1
    assert reuse[0].outcome == "denied"


async def test_a_refresh_may_narrow_the_scope_but_not_widen_it(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """RFC 6749 §6: the scope must not exceed the original grant."""
    client, first = await _tokens(http, server, tenant, "gina")
    narrowed = await _refresh(http, client, first["refresh_token"], scope="chat:read")
    assert narrowed.json()["scope"] == "chat:read"
    wider = await _refresh(
        http, client, narrowed.json()["refresh_token"], scope="chat:read users:write"
    )
    assert wider.json()["error"] == "invalid_scope"


async def test_another_client_cannot_use_the_refresh_token(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """RFC 6749 §10.4: refresh tokens are bound to their client."""
    _, first = await _tokens(http, server, tenant, "hank")
    thief = await register_client(tenant)
    stolen = await _refresh(http, thief, first["refresh_token"])
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"


async def test_unknown_refresh_tokens_are_invalid_grant(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A made-up refresh token is 400 invalid_grant."""
    client = await register_client(tenant)
    response = await _refresh(http, client, "not-a-real-refresh-token")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
