"""Lifetimes on a server with a controllable clock: codes, idle and absolute refresh expiry,
and a scheduled signing-key rotation that keeps earlier tokens valid."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import httpx
import pytest

from bastion.app import key_store, rotation_policy
from bastion.core.clock import FakeClock
from bastion.security import key_rotation
from tests.conftest import Databases, make_settings, start_server
from tests.support.oauth import (
    RegisteredClient,
    obtain_code,
    redeem,
    register_client,
    token_call,
    user_with_password,
)
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, new_tenant

CODE_TTL = 30
IDLE = 600
ABSOLUTE = 1000


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    """The server's clock, starting now and moved only by the tests."""
    return FakeClock(time.time())


@pytest.fixture(scope="module")
def timed_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory, clock: FakeClock
) -> Iterator[ServerThread]:
    """Short code and refresh lifetimes, daily key rotation, on the fake clock."""
    settings = make_settings(
        tmp_path_factory.mktemp("timed"),
        databases.new(),
        oauth={
            "code_ttl": CODE_TTL,
            "refresh_idle_ttl": IDLE,
            "refresh_absolute_ttl": ABSOLUTE,
            "key_rotation_days": 1,
            "key_check_seconds": 3600,
        },
    )
    running = start_server(settings, clock)
    yield running
    running.stop()


@pytest.fixture
async def timed(timed_server: ServerThread) -> AsyncIterator[Tenant]:
    """A fresh app on the timed server."""
    async with httpx.AsyncClient(base_url=timed_server.base_url, timeout=15) as client:
        yield new_tenant(timed_server, client)


async def _refresh(http: httpx.AsyncClient, client: RegisteredClient, token: str) -> httpx.Response:
    return await token_call(http, client, {"grant_type": "refresh_token", "refresh_token": token})


async def test_an_expired_code_is_refused(
    timed_server: ServerThread, timed: Tenant, clock: FakeClock
) -> None:
    """A code older than oauth.code_ttl is invalid_grant."""
    client = await register_client(timed)
    await user_with_password(timed, "old-code")
    code, verifier, _ = await obtain_code(timed_server.base_url, client, "old-code")
    clock.advance(CODE_TTL + 1)
    response = await redeem(timed.http, client, code, verifier)
    assert response.json()["error"] == "invalid_grant"


async def test_an_idle_refresh_token_dies(
    timed_server: ServerThread, timed: Tenant, clock: FakeClock
) -> None:
    """Unused for longer than oauth.refresh_idle_ttl: invalid_grant."""
    client = await register_client(timed)
    await user_with_password(timed, "idle")
    code, verifier, _ = await obtain_code(timed_server.base_url, client, "idle")
    tokens = (await redeem(timed.http, client, code, verifier)).json()
    clock.advance(IDLE + 1)
    response = await _refresh(timed.http, client, tokens["refresh_token"])
    assert response.json()["error"] == "invalid_grant"


async def test_the_family_ends_at_its_absolute_lifetime(
    timed_server: ServerThread, timed: Tenant, clock: FakeClock
) -> None:
    """Used every 400 s (well within the idle limit), the family still ends at 1000 s."""
    client = await register_client(timed)
    await user_with_password(timed, "steady")
    code, verifier, _ = await obtain_code(timed_server.base_url, client, "steady")
    token = (await redeem(timed.http, client, code, verifier)).json()["refresh_token"]
    for _ in range(2):
        clock.advance(400)
        response = await _refresh(timed.http, client, token)
        assert response.status_code == 200, response.text
        token = response.json()["refresh_token"]
    clock.advance(250)
    response = await _refresh(timed.http, client, token)
    assert response.json()["error"] == "invalid_grant"


async def test_scheduled_key_rotation_keeps_earlier_tokens_valid(
    timed_server: ServerThread, timed: Tenant, clock: FakeClock
) -> None:
    """After the rotation period: new tokens use the published next key, old ones still work."""
    services = timed_server.services
    store = key_store(timed_server.settings)
    active = next(k for k in store.describe() if k["state"] == "active")
    due = datetime.fromisoformat(active["activated_at"]).timestamp() + 86_400
    clock.advance(max(0.0, due - 300 - clock.timestamp()))
    before = await timed.backend_token()
    old_kid = services.keys.active.kid
    published = {k["kid"] for k in (await timed.http.get("/.well-known/jwks.json")).json()["keys"]}
    clock.advance(400)
    policy = rotation_policy(timed_server.settings)
    timed_server.run(key_rotation.run_once(store, services.keys, policy, services.events, clock))
    new_kid = services.keys.active.kid
    assert new_kid != old_kid
    assert new_kid in published  # it was announced before it signed anything
    response = await timed.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(timed.client_id, timed.client_secret),
    )
    fresh = response.json()["access_token"]
    assert jwt_kid(fresh) == new_kid
    for token in (before, fresh):
        users = await timed.http.get("/v1/users", headers={"Authorization": f"Bearer {token}"})
        assert users.status_code == 200


def jwt_kid(token: str) -> str:
    """The kid of a compact JWS header."""
    head = token.split(".", maxsplit=1)[0]
    kid: str = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]
    return kid
