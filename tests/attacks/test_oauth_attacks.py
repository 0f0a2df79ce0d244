"""Attacks on the authorization server, one test per item of the threat list.

PKCE downgrade and mismatch, redirect-URI tampering, code replay, refresh-token
replay, client impersonation, private_key_jwt replay, and user enumeration by the
response or its timing. Credential stuffing is in ``tests/security/test_lockout.py``.
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from bastion.security.oauth import rfc7523
from tests.conftest import Databases, make_settings, start_server
from tests.support.oauth import (
    Browser,
    authorize_params,
    form_fields,
    obtain_code,
    pkce_pair,
    query_of,
    redeem,
    register_client,
    token_call,
    user_with_password,
)
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, new_tenant


async def _me(http: httpx.AsyncClient, token: str) -> int:
    response = await http.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


@pytest.mark.parametrize(
    "change",
    [
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},
        {"code_challenge": "too-short"},
    ],
)
async def test_pkce_downgrade_at_the_authorization_endpoint(
    server: ServerThread, tenant: Tenant, change: dict[str, str | None]
) -> None:
    """No challenge, plain, a missing method or a malformed challenge: invalid_request."""
    client = await register_client(tenant)
    _, challenge = pkce_pair()
    params = {k: v for k, v in {**authorize_params(client, challenge), **change}.items() if v}
    browser = Browser(server.base_url)
    response = await browser.authorize(**params)
    await browser.close()
    assert response.status_code == 303
    query = query_of(response.headers["location"])
    assert query["error"] == "invalid_request"
    assert query["state"] == params["state"]


async def test_pkce_verifier_missing_or_wrong_at_the_token_endpoint(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """A code redeemed without its verifier, or with another, is invalid_grant (and burnt)."""
    client = await register_client(tenant)
    await user_with_password(tenant, "xena")
    for verifier in (None, pkce_pair()[0]):
        code, real, _ = await obtain_code(server.base_url, client, "xena")
        response = await redeem(http, client, code, verifier)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
        assert (await redeem(http, client, code, real)).status_code == 400


@pytest.mark.parametrize(
    "tampered",
    [
        "https://app.example.com/callback/../evil",
        "https://app.example.com/callback/extra",
        "https://app.example.com/callbac",
        "https://app.example.com/Callback",
        "https://APP.example.com/callback",
        "https://app.example.com/callback?x=1",
        "https://app.example.com:8443/callback",
        "https://app.example.com.evil.example/callback",
        "https://app.example.com/callback%2F..%2Fevil",
        "http://app.example.com/callback",
    ],
)
async def test_redirect_uri_tampering_is_never_redirected(
    server: ServerThread, tenant: Tenant, tampered: str
) -> None:
    """Prefix, suffix, case, path traversal, query, port, host: an error page, no Location."""
    client = await register_client(tenant)
    _, challenge = pkce_pair()
    params = authorize_params(client, challenge, redirect_uri=tampered)
    browser = Browser(server.base_url)
    response = await browser.authorize(**params)
    await browser.close()
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_redirect_uri_must_match_at_the_token_endpoint(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """RFC 6749 §4.1.3: the code is bound to the exact redirect_uri of its request."""
    client = await register_client(
        tenant, redirect_uris=["https://app.example.com/callback", "https://app.example.com/other"]
    )
    await user_with_password(tenant, "yuri")
    code, verifier, _ = await obtain_code(server.base_url, client, "yuri")
    response = await redeem(
        http, client, code, verifier, redirect_uri="https://app.example.com/other"
    )
    assert response.json()["error"] == "invalid_grant"


async def test_code_replay_revokes_what_the_code_issued(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """RFC 6749 §4.1.2: the second redemption fails and the first one's tokens die."""
    client = await register_client(tenant)
    await user_with_password(tenant, "zara")
    code, verifier, _ = await obtain_code(server.base_url, client, "zara")
    first = (await redeem(http, client, code, verifier)).json()
    assert await _me(http, first["access_token"]) == 200
    second = await redeem(http, client, code, verifier)
    assert second.json()["error"] == "invalid_grant"
    assert await _me(http, first["access_token"]) == 401
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    assert (await token_call(http, client, refresh)).json()["error"] == "invalid_grant"


async def test_refresh_token_replay_after_rotation_revokes_the_family(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """An attacker replaying a stolen, already rotated refresh token ends the whole family."""
    client = await register_client(tenant)
    await user_with_password(tenant, "abel")
    code, verifier, _ = await obtain_code(server.base_url, client, "abel")
    stolen = (await redeem(http, client, code, verifier)).json()
    form = {"grant_type": "refresh_token", "refresh_token": stolen["refresh_token"]}
    victim = (await token_call(http, client, form)).json()
    assert (await token_call(http, client, form)).json()["error"] == "invalid_grant"
    assert await _me(http, victim["access_token"]) == 401


async def test_client_impersonation(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """Another client cannot redeem a code; a confidential client cannot pose as public."""
    victim = await register_client(tenant)
    attacker = await register_client(tenant)
    await user_with_password(tenant, "bert")
    code, verifier, _ = await obtain_code(server.base_url, victim, "bert")
    stolen = await redeem(http, attacker, code, verifier)
    assert stolen.json()["error"] == "invalid_grant"
    assert (await redeem(http, victim, code, verifier)).status_code == 400
    code, verifier, _ = await obtain_code(server.base_url, victim, "bert")
    posing = await http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": victim.redirect_uri,
            "client_id": victim.id,
        },
    )
    assert posing.status_code == 401
    wrong_secret = await http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(victim.id, "guess")
    )
    assert wrong_secret.status_code == 401


async def test_private_key_jwt_replay(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """A captured client assertion cannot be used a second time."""
    key = ECKey.generate_key("P-256", auto_kid=True)
    client = await register_client(
        tenant,
        auth_method="private_key_jwt",
        jwks={"keys": [key.as_dict(private=False)]},
        grant_types=["client_credentials"],
        scopes=["users:read"],
        redirect_uris=[],
    )
    now = int(time.time())
    captured = jwt.encode(
        {"alg": "ES256", "kid": key.kid},
        {
            "iss": client.id,
            "sub": client.id,
            "aud": server.settings.issuer,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(16),
        },
        key,
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": rfc7523.ASSERTION_TYPE,
        "client_assertion": captured,
    }
    assert (await http.post("/oauth/token", data=form)).status_code == 200
    replay = await http.post("/oauth/token", data=form)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"


def _visible(html: str) -> str:
    """The page without its per-request hidden values."""
    fields = form_fields(html)
    for value in fields.values():
        html = html.replace(value, "")
    return html


@pytest.fixture(scope="module")
def timing_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server with a realistic argon2 cost and no lockout, for timing measurements."""
    settings = make_settings(
        tmp_path_factory.mktemp("timing"),
        databases.new(),
        auth={"argon2_time_cost": 2, "argon2_memory_kib": 19_456, "argon2_parallelism": 1},
        oauth={"brute_force": False},
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture
async def timing_tenant(timing_server: ServerThread) -> AsyncIterator[Tenant]:
    """A fresh app on the timing server."""
    async with httpx.AsyncClient(base_url=timing_server.base_url, timeout=30) as client:
        yield new_tenant(timing_server, client)


async def test_user_enumeration_by_response_or_timing(
    timing_server: ServerThread, timing_tenant: Tenant
) -> None:
    """Unknown user, wrong password, deactivated user: same page, same time (within noise)."""
    tenant = timing_tenant
    client = await register_client(tenant)
    await user_with_password(tenant, "known")
    gone = await user_with_password(tenant, "gone")
    deactivate = await tenant.http.post(
        f"/v1/users/{gone}/deactivation", headers=await tenant.backend_headers()
    )
    assert deactivate.status_code == 200
    _, challenge = pkce_pair()
    browser = Browser(timing_server.base_url)
    cases = {
        "unknown": ("nobody", "whatever-pass"),
        "wrong": ("known", "not-the-pass"),
        "inactive": ("gone", "correct horse battery staple"),
    }
    timings: dict[str, list[float]] = {name: [] for name in cases}
    bodies: dict[str, set[str]] = {name: set() for name in cases}
    for _ in range(12):
        for name, (username, password) in cases.items():
            page = await browser.follow(
                await browser.authorize(**authorize_params(client, challenge))
            )
            start = time.perf_counter()
            answer = await browser.submit(
                "/oauth/login", page, username=username, password=password
            )
            timings[name].append(time.perf_counter() - start)
            assert answer.status_code == 200
            bodies[name].add(_visible(answer.text))
    await browser.close()
    assert len(set().union(*bodies.values())) == 1
    # The fastest answer of each kind is its true cost; a busy machine only adds to it.
    # Without the dummy hash an unknown user would answer in a fraction of the hash time
    # (about a tenth here); the same work gives the same floor.
    floor = {name: min(values) for name, values in timings.items()}
    medians = {name: statistics.median(values) for name, values in timings.items()}
    assert max(floor.values()) < 2 * min(floor.values()), (floor, medians)
