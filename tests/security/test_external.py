"""A real external OpenID Provider (oidc-provider on Node) trusted by a real Bastion server.

Its access tokens are accepted and provision users just in time, keyed by (issuer,
subject); its expired, wrong-audience and ID tokens, tokens of an untrusted issuer
and tokens under unknown keys are refused; its key rotation is picked up; its ID tokens
can be exchanged for Bastion tokens (RFC 8693).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from joserfc import jwt

from bastion.app import database, secret_hasher
from bastion.chat.apps import create_app
from bastion.core.clock import SystemClock
from bastion.core.settings import ExternalIssuerSettings
from bastion.observe.events import SecurityEvents
from bastion.security import external
from bastion.security.external import peek_issuer, role_of
from bastion.security.oauth import rfc8693
from bastion.security.tokens import Revocations
from bastion.store import migrate
from tests.conftest import Databases, make_settings, start_server
from tests.http.test_websocket import closed_with
from tests.support.oidc_provider import OTHER_AUDIENCE, OpenIDProvider, new_key
from tests.support.server import ServerThread, free_port
from tests.support.tenants import Tenant
from tests.support.ws import socket

ACCOUNTS = {
    "alice": {"name": "Alice Liddell", "groups": ["chat-users"]},
    "bob": {"name": "Bob", "groups": ["chat-readers"]},
    "carol": {"name": "Carol", "groups": ["visitors"]},
    "dave": {"name": "Dave", "groups": ["chat-users"]},
    "erin": {"name": "Erin", "groups": ["chat-users"]},
}
INVALID_TOKEN = 'Bearer realm="bastion", error="invalid_token"'


@dataclass(slots=True)
class Setup:
    """The provider, a second (untrusted) provider sharing its key, and the server."""

    provider: OpenIDProvider
    rogue: OpenIDProvider
    server: ServerThread
    app_id: str
    client_id: str
    client_secret: str


async def _new_app(url: str, settings_dir: Path) -> tuple[str, str, str]:
    settings = make_settings(settings_dir, url)
    db = database(settings)
    try:
        await migrate.upgrade(db.engine)
        created = await create_app(db, secret_hasher(settings), SystemClock(), name="idp app")
    finally:
        await db.close()
    return created.app.id, created.client.id, created.client_secret


@pytest.fixture(scope="module")
def setup(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """A Bastion server trusting one provider for one app."""
    workdir = tmp_path_factory.mktemp("idp")
    url = databases.new()
    app_id, client_id, secret = asyncio.run(_new_app(url, workdir / "setup"))
    port = free_port()
    audience = f"http://127.0.0.1:{port}"
    provider = OpenIDProvider(workdir, audience, ACCOUNTS)
    provider.start()
    rogue = OpenIDProvider(workdir, audience, ACCOUNTS, keys=provider.keys[:])
    rogue.start()
    issuer = {
        "issuer": provider.issuer,
        "app_id": app_id,
        "client_ids": ["web"],
        "role_claim": "groups",
        "role_map": {"chat-users": "member", "chat-readers": "reader"},
        "default_role": None,
        "algorithms": ["ES256"],
    }
    settings = make_settings(
        workdir / "data",
        url,
        server={"port": port, "public_url": audience},
        auth={"leeway": 0},
        resource_server={
            "external_issuers": [issuer],
            "allow_http_loopback": True,
            "jwks_min_refresh_seconds": 0.5,
        },
        realtime={"heartbeat_seconds": 2.0},
    )
    server = start_server(settings)
    try:
        yield Setup(provider, rogue, server, app_id, client_id, secret)
    finally:
        server.stop()
        provider.stop()
        rogue.stop()


@pytest.fixture
async def http(setup: Setup) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the provider-trusting server."""
    async with httpx.AsyncClient(base_url=setup.server.base_url, timeout=10) as client:
        yield client


@pytest.fixture
def tenant(setup: Setup, http: httpx.AsyncClient) -> Tenant:
    """The app the provider's users belong to, with its backend credentials."""
    return Tenant(setup.server, http, setup.app_id, setup.client_id, setup.client_secret)


def bearer(token: str) -> dict[str, str]:
    """An Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


async def me(http: httpx.AsyncClient, token: str) -> httpx.Response:
    """GET /v1/users/me with ``token``."""
    return await http.get("/v1/users/me", headers=bearer(token))


def assert_invalid(response: httpx.Response) -> None:
    """The one 401 answer every bad token gets."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == INVALID_TOKEN


async def test_a_provider_access_token_is_accepted_and_provisions_the_user(
    setup: Setup, http: httpx.AsyncClient
) -> None:
    """The user is created on first sight from the sub and name claims."""
    tokens = await setup.provider.login("alice")
    response = await me(http, tokens.access_token)
    assert response.status_code == 200, response.text
    user = response.json()
    assert user["external_id"] == "alice"
    assert user["display_name"] == "Alice Liddell"
    again = await me(http, (await setup.provider.login("alice")).access_token)
    assert again.json()["id"] == user["id"]


async def test_a_member_can_chat_with_a_provider_token(
    setup: Setup, http: httpx.AsyncClient
) -> None:
    """chat-users map to member: create a channel and send a message."""
    token = (await setup.provider.login("alice")).access_token
    channel = await http.post(
        "/v1/channels", json={"type": "group", "name": "idp", "members": []}, headers=bearer(token)
    )
    assert channel.status_code == 201, channel.text
    sent = await http.post(
        f"/v1/channels/{channel.json()['id']}/messages",
        json={"text": "hello from the IdP"},
        headers=bearer(token),
    )
    assert sent.status_code == 201, sent.text


async def test_a_reader_may_read_but_not_write(setup: Setup, http: httpx.AsyncClient) -> None:
    """chat-readers map to reader: chat:read only, so creating a channel is 403."""
    token = (await setup.provider.login("bob")).access_token
    assert (await http.get("/v1/channels", headers=bearer(token))).status_code == 200
    created = await http.post(
        "/v1/channels", json={"type": "group", "name": "x", "members": []}, headers=bearer(token)
    )
    assert created.status_code == 403


async def test_a_user_without_a_mapped_role_is_refused(
    setup: Setup, http: httpx.AsyncClient
) -> None:
    """No mapped group and no default role: the token is refused and nobody is created."""
    assert_invalid(await me(http, (await setup.provider.login("carol")).access_token))


async def test_an_external_id_owned_by_another_user_is_not_taken_over(
    setup: Setup, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """A backend user 'dave' exists: the provider's 'dave' is not linked to that account."""
    created = await http.post(
        "/v1/users",
        json={"external_id": "dave", "display_name": "Local Dave"},
        headers=await tenant.backend_headers(),
    )
    assert created.status_code == 201
    assert_invalid(await me(http, (await setup.provider.login("dave")).access_token))


async def test_an_expired_provider_token_is_refused(setup: Setup, http: httpx.AsyncClient) -> None:
    """The 'short' client's tokens live 3 s: accepted, then refused (cached or not)."""
    cached = (await setup.provider.login("alice", client_id="short")).access_token
    unused = (await setup.provider.login("alice", client_id="short")).access_token
    assert (await me(http, cached)).status_code == 200
    await asyncio.sleep(3.1)
    assert_invalid(await me(http, cached))
    assert_invalid(await me(http, unused))


async def test_a_token_for_another_audience_is_refused(
    setup: Setup, http: httpx.AsyncClient
) -> None:
    """A token the provider issued for another API is not for us."""
    tokens = await setup.provider.login("alice", resource=OTHER_AUDIENCE)
    assert_invalid(await me(http, tokens.access_token))


async def test_an_id_token_is_not_an_access_token(setup: Setup, http: httpx.AsyncClient) -> None:
    """RFC 8725 §3.12: the ID token, same signer, is refused as a bearer token."""
    assert_invalid(await me(http, (await setup.provider.login("alice")).id_token))


async def test_a_token_of_an_untrusted_issuer_is_refused(
    setup: Setup, http: httpx.AsyncClient
) -> None:
    """Another provider signing with the very same key is still not a trusted issuer."""
    assert_invalid(await me(http, (await setup.rogue.login("alice")).access_token))


def _forged(setup: Setup, claims: dict[str, Any]) -> str:
    key = new_key()
    header = {"alg": "ES256", "typ": "at+jwt", "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=["ES256"])


async def test_a_token_under_an_unknown_key_is_refused(
    setup: Setup, http: httpx.AsyncClient
) -> None:
    """The provider's claims signed by a key it never published: refused after a refetch."""
    real = (await setup.provider.login("alice")).access_token
    claims = jwt.decode(real, setup.provider.keys[0]).claims
    assert_invalid(await me(http, _forged(setup, dict(claims))))


async def test_the_providers_key_rotation_is_picked_up(
    setup: Setup, http: httpx.AsyncClient
) -> None:
    """After a rotation, tokens under the new kid are accepted (one JWKS refetch)."""
    before = (await setup.provider.login("alice")).access_token
    assert (await me(http, before)).status_code == 200
    key = await asyncio.to_thread(setup.provider.rotate)
    await asyncio.sleep(0.6)  # the refetch interval of this server
    after = (await setup.provider.login("alice")).access_token
    assert jwt.decode(after, key).header["kid"] == key.kid
    assert (await me(http, after)).status_code == 200
    assert (await me(http, before)).status_code == 200


async def test_deactivation_and_cutoffs_apply_to_provider_users(
    setup: Setup, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """A provisioned user is a normal user: a revoke-before refuses their older tokens."""
    token = (await setup.provider.login("erin")).access_token
    user_id = (await me(http, token)).json()["id"]
    await asyncio.sleep(1.05 - time.time() % 1)
    response = await http.post(
        f"/v1/users/{user_id}/token-revocation", headers=await tenant.backend_headers()
    )
    assert response.status_code == 200
    assert_invalid(await me(http, token))


async def test_a_provider_token_opens_a_socket_that_closes_at_expiry(setup: Setup) -> None:
    """WebSockets accept provider tokens, and close with 4001 when the token expires."""
    token = (await setup.provider.login("alice", client_id="short")).access_token
    async with socket(setup.server.ws_url, token) as sock:
        assert sock.ready["type"] == "ready"
        code, _ = await closed_with(sock.connection, within=5.0)
        assert code == 4001


async def exchange(tenant: Tenant, id_token: str, **extra: str) -> httpx.Response:
    """RFC 8693: the backend exchanges a provider ID token for a Bastion token."""
    return await tenant.token_request(
        grant_type=rfc8693.GRANT_TYPE,
        subject_token=id_token,
        subject_token_type=rfc8693.ID_TOKEN_TYPE,
        **extra,
    )


async def test_an_id_token_is_exchanged_for_a_bastion_token(
    setup: Setup, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """The exchanged token is Bastion's own, for the same provisioned user, with act."""
    tokens = await setup.provider.login("alice")
    response = await exchange(tenant, tokens.id_token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == rfc8693.ACCESS_TOKEN_TYPE
    assert set(body["scope"].split()) == {"chat:read", "chat:write"}
    ours = await me(http, body["access_token"])
    assert ours.status_code == 200
    assert ours.json()["id"] == (await me(http, tokens.access_token)).json()["id"]
    claims = jwt.decode(body["access_token"], setup.server.services.keys.verification).claims
    assert claims["iss"] == setup.server.settings.issuer
    assert claims["act"] == {"sub": setup.client_id}


async def test_an_exchanged_reader_token_keeps_the_readers_scopes(
    setup: Setup, tenant: Tenant
) -> None:
    """The role mapping caps the exchange: a reader cannot obtain chat:write."""
    id_token = (await setup.provider.login("bob")).id_token
    body = (await exchange(tenant, id_token)).json()
    assert body["scope"] == "chat:read"
    refused = await exchange(tenant, id_token, scope="chat:write")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"


@pytest.mark.parametrize("which", ["access token", "rogue id token", "garbage"])
async def test_only_a_trusted_id_token_can_be_exchanged(
    setup: Setup, tenant: Tenant, which: str
) -> None:
    """An access token, another issuer's ID token or garbage: invalid_request."""
    tokens = await setup.provider.login("alice")
    subject = {
        "access token": tokens.access_token,
        "rogue id token": (await setup.rogue.login("alice")).id_token,
        "garbage": "not-a-jwt",
    }[which]
    response = await exchange(tenant, subject)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def _config(**values: Any) -> ExternalIssuerSettings:
    return ExternalIssuerSettings(
        issuer="https://idp.example.com", app_id="app_01JD0000000000000000000000", **values
    )


@pytest.mark.parametrize(
    ("claim", "role"),
    [
        (["chat-readers", "chat-users"], "member"),
        (["chat-readers"], "reader"),
        ("chat-users", "member"),
        (["other"], None),
        (None, None),
        ([1, {"x": 1}], None),
    ],
)
def test_role_of_takes_the_strongest_mapped_role(claim: object, role: str | None) -> None:
    """Mapped groups decide the role; the strongest wins; nothing mapped means the default."""
    config = _config(
        role_claim="groups",
        role_map={"chat-users": "member", "chat-readers": "reader"},
        default_role=None,
    )
    assert role_of(config, {"groups": claim}) == role


def test_without_a_role_claim_everyone_gets_the_default_role() -> None:
    """No role claim configured: the default role applies."""
    assert role_of(_config(default_role="reader"), {"groups": ["admins"]}) == "reader"


@pytest.mark.parametrize("algorithms", [["HS256"], ["none"], ["RS256", "hs512"], []])
def test_symmetric_or_none_algorithms_are_refused_in_settings(algorithms: list[str]) -> None:
    """An external issuer can never be configured with HMAC or none."""
    with pytest.raises(ValueError, match="asymmetric"):
        _config(algorithms=algorithms)


def test_peek_issuer_reads_iss_without_trusting_it() -> None:
    """peek_issuer only routes: any JWT-shaped input gives its iss or None."""
    key = new_key()
    signed = jwt.encode({"alg": "ES256"}, {"iss": "https://x"}, key, algorithms=["ES256"])
    assert peek_issuer(signed) == "https://x"
    assert peek_issuer("a.b.c") is None
    assert peek_issuer("garbage") is None


def test_without_providers_no_token_is_decoded_to_choose_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no external provider configured, every token is Bastion's own: choosing a
    verifier reads nothing from it."""

    def peek(_token: str) -> str:
        raise AssertionError("the token's claims were decoded")

    monkeypatch.setattr(external, "peek_issuer", peek)
    identities = external.ExternalIdentities(
        [],
        store=cast(external.IdentityStore, None),
        revocations=Revocations(),
        events=SecurityEvents(SystemClock(), []),
        clock=SystemClock(),
        cache_size=10,
    )
    assert identities.issuer_of("a.b.c") is None
