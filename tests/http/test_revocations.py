"""Revoke-before-T through the real server: per user, per app, and the sockets it closes."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from joserfc import jwt

from bastion.core.clock import rfc3339
from bastion.observe.events import MemorySink
from tests.http.test_websocket import closed_with
from tests.support.server import ServerThread
from tests.support.tenants import Tenant
from tests.support.ws import socket


@pytest.fixture(scope="module")
def events(server: ServerThread) -> MemorySink:
    """Every security event the session's server emits from now on."""
    sink = MemorySink()
    server.services.events.add_sink(sink)
    return sink


async def next_second() -> None:
    """Wait until the wall clock enters a new second (token ``iat`` is whole seconds)."""
    await asyncio.sleep(1.05 - (time.time() % 1))


async def revoke(tenant: Tenant, path: str, **body: str) -> httpx.Response:
    """POST a revoke-before as the app's backend."""
    return await tenant.http.post(path, json=body, headers=await tenant.backend_headers())


async def status_of(http: httpx.AsyncClient, token: str) -> int:
    """The status of GET /v1/users/me (user) or /v1/users (backend) with ``token``."""
    response = await http.get("/v1/channels", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def test_a_user_cutoff_refuses_that_users_older_tokens_only(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Alice's older tokens are refused on the next request; Bob and new tokens work."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    await next_second()
    response = await revoke(tenant, f"/v1/users/{alice.id}/token-revocation")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["app_id"] == tenant.app_id
    assert body["user_id"] == alice.id
    assert await status_of(http, alice.token) == 401
    assert await status_of(http, bob.token) == 200
    await next_second()
    assert await status_of(http, await tenant.user_token(alice.id)) == 200


async def test_an_app_cutoff_refuses_every_token_of_the_app_only(
    http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    """Users and the backend of the app are cut off; another app is untouched."""
    alice = await tenant.user("alice")
    stranger = await other_tenant.user("stranger")
    backend = await tenant.backend_token()
    await next_second()
    response = await revoke(tenant, "/v1/token-revocation")
    assert response.status_code == 200, response.text
    assert response.json()["user_id"] is None
    assert await status_of(http, alice.token) == 401
    users = await http.get("/v1/users", headers={"Authorization": f"Bearer {backend}"})
    assert users.status_code == 401
    assert users.headers["www-authenticate"] == 'Bearer realm="bastion", error="invalid_token"'
    assert await status_of(http, stranger.token) == 200


async def test_an_explicit_time_cuts_only_tokens_issued_before_it(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A cutoff in the past leaves tokens issued after it alone."""
    alice = await tenant.user("alice")
    past = datetime.now(UTC) - timedelta(minutes=5)
    response = await revoke(
        tenant, f"/v1/users/{alice.id}/token-revocation", issued_before=rfc3339(past)
    )
    assert response.status_code == 200
    assert await status_of(http, alice.token) == 200


async def test_a_cutoff_never_moves_backwards(tenant: Tenant) -> None:
    """An earlier cutoff after a later one keeps the later one in force."""
    alice = await tenant.user("alice")
    path = f"/v1/users/{alice.id}/token-revocation"
    later = (await revoke(tenant, path)).json()["issued_before"]
    earlier = rfc3339(datetime.now(UTC) - timedelta(hours=1))
    response = await revoke(tenant, path, issued_before=earlier)
    assert response.json()["issued_before"] == later


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"issued_before": "2999-01-01T00:00:00Z"}, 422),
        ({"issued_before": "2020-01-01T00:00:00"}, 422),
        ({"issued_before": "yesterday"}, 422),
        ({"everything": True}, 422),
    ],
)
async def test_bad_bodies_are_422(tenant: Tenant, body: dict[str, object], status: int) -> None:
    """Future or zone-less times and unknown fields are refused; nothing is revoked."""
    alice = await tenant.user("alice")
    response = await tenant.http.post(
        f"/v1/users/{alice.id}/token-revocation", json=body, headers=await tenant.backend_headers()
    )
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await status_of(tenant.http, alice.token) == 200


async def test_unknown_and_foreign_users_are_404(tenant: Tenant, other_tenant: Tenant) -> None:
    """Another app's user, an unknown id and a malformed id all look the same: 404."""
    stranger = await other_tenant.user("stranger")
    for user_id in (stranger.id, "usr_01JD0000000000000000000000", "nope"):
        response = await revoke(tenant, f"/v1/users/{user_id}/token-revocation")
        assert response.status_code == 404, user_id
    assert await status_of(other_tenant.http, stranger.token) == 200


async def test_a_user_token_may_not_revoke(tenant: Tenant) -> None:
    """Revocation needs the backend's users:write scope (403 insufficient_scope)."""
    alice = await tenant.user("alice")
    response = await tenant.http.post("/v1/token-revocation", json={}, headers=alice.headers)
    assert response.status_code == 403
    assert await status_of(tenant.http, alice.token) == 200


async def test_a_revocation_is_a_security_event(tenant: Tenant, events: MemorySink) -> None:
    """token.revoke names the scope and time, never a token."""
    alice = await tenant.user("alice")
    await revoke(tenant, f"/v1/users/{alice.id}/token-revocation")
    found = [e for e in events.of("token.revoke") if e.resource == f"user:{alice.id}"]
    assert len(found) == 1
    event = found[0]
    assert event.actor.app_id == tenant.app_id
    assert event.details["scope"] == "user"
    assert alice.token not in str(event.as_dict())


async def test_a_user_cutoff_closes_that_users_sockets_within_seconds(
    server: ServerThread, tenant: Tenant
) -> None:
    """Alice's open sockets close with 4001 right after the cutoff; Bob's stays open."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    async with (
        socket(server.ws_url, alice.token) as phone,
        socket(server.ws_url, bob.token) as other,
    ):
        await next_second()
        started = time.monotonic()
        await revoke(tenant, f"/v1/users/{alice.id}/token-revocation")
        code, _ = await closed_with(phone.connection, within=3.0)
        assert code == 4001
        assert time.monotonic() - started < 3.0
        await other.send({"type": "ping", "id": "p"})
        assert (await other.expect("pong"))["id"] == "p"


async def test_an_app_cutoff_closes_every_socket_of_the_app(
    server: ServerThread, tenant: Tenant
) -> None:
    """An app-wide cutoff closes all of its users' sockets with 4001."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    async with (
        socket(server.ws_url, alice.token) as one,
        socket(server.ws_url, bob.token) as two,
    ):
        await next_second()
        await revoke(tenant, "/v1/token-revocation")
        assert (await closed_with(one.connection, within=3.0))[0] == 4001
        assert (await closed_with(two.connection, within=3.0))[0] == 4001


async def test_revoking_one_token_closes_only_the_sockets_using_it(
    server: ServerThread, tenant: Tenant
) -> None:
    """A single-token revocation (as RFC 7009 does) closes that token's socket at once."""
    alice = await tenant.user("alice")
    other_token = await tenant.user_token(alice.id)
    async with (
        socket(server.ws_url, alice.token) as revoked,
        socket(server.ws_url, other_token) as kept,
    ):
        claims = jwt.decode(alice.token, server.services.keys.verification).claims

        async def revoke() -> None:
            server.services.tokens.revocations.revoke_token(claims["jti"], claims["exp"])

        server.run(revoke())
        assert (await closed_with(revoked.connection, within=3.0))[0] == 4001
        await kept.send({"type": "ping", "id": "p"})
        assert (await kept.expect("pong"))["id"] == "p"
