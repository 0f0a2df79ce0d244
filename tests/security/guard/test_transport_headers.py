"""Security headers for every route class, CORS, the WebSocket Origin check, HTTPS redirect."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import Databases, make_settings, start_server
from tests.security.guard.conftest import ALLOWED_ORIGIN, trust
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, new_tenant

FOREIGN_ORIGIN = "https://evil.example"
CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


@pytest.fixture
def tls_tenant(tls_server: ServerThread, https: httpx.AsyncClient) -> Tenant:
    """An app on the HTTPS server."""
    return new_tenant(tls_server, https)


async def route_classes(https: httpx.AsyncClient, tenant: Tenant) -> dict[str, httpx.Response]:
    """One response from each class of route, over HTTPS."""
    user = await tenant.user("header-user")
    return {
        "health": await https.get("/healthz"),
        "discovery": await https.get("/.well-known/oauth-authorization-server"),
        "jwks": await https.get("/.well-known/jwks.json"),
        "openapi": await https.get("/openapi.json"),
        "token": await tenant.token_request(grant_type="client_credentials"),
        "api": await https.get("/v1/users/me", headers=user.headers),
        "api-401": await https.get("/v1/users/me"),
        "not-found": await https.get("/no/such/route"),
        "page": await https.get("/problems/not-found"),
    }


async def test_every_route_class_gets_the_security_headers(
    https: httpx.AsyncClient, tls_tenant: Tenant
) -> None:
    """HSTS, nosniff, no-referrer, a closed CSP with frame-ancestors, and no Server header."""
    for name, response in (await route_classes(https, tls_tenant)).items():
        headers = response.headers
        assert headers["strict-transport-security"].startswith("max-age=31536000"), name
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["referrer-policy"] == "no-referrer", name
        assert headers["content-security-policy"] == CSP, name
        assert headers["x-frame-options"] == "DENY", name
        assert "server" not in headers, name
        assert "access-control-allow-origin" not in headers, name


async def test_private_responses_are_not_stored(
    https: httpx.AsyncClient, tls_tenant: Tenant
) -> None:
    """API, token and error responses say no-store; only public discovery may be cached."""
    responses = await route_classes(https, tls_tenant)
    for name in ("api", "api-401", "token", "not-found", "health", "openapi", "page"):
        assert responses[name].headers["cache-control"] == "no-store", name
    assert responses["discovery"].headers["cache-control"].startswith("public")
    assert responses["page"].headers["content-type"].startswith("text/html")


async def test_foreign_origin_gets_no_cors_grant(
    https: httpx.AsyncClient, tls_tenant: Tenant
) -> None:
    """A request from an origin not on the list is answered without any ACAO header."""
    user = await tls_tenant.user("cors-user")
    response = await https.get("/v1/users/me", headers={**user.headers, "Origin": FOREIGN_ORIGIN})
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers
    assert response.headers["vary"] == "Origin"


async def test_foreign_origin_preflight_is_refused(https: httpx.AsyncClient) -> None:
    """A preflight from an unknown origin is a 403 problem without CORS grants."""
    response = await https.options(
        "/v1/channels",
        headers={"Origin": FOREIGN_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "access-control-allow-origin" not in response.headers


async def test_allowed_origin_preflight_and_request(
    https: httpx.AsyncClient, tls_tenant: Tenant
) -> None:
    """The allow-listed origin gets its preflight and its response granted, without credentials."""
    preflight = await https.options(
        "/v1/channels",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in preflight.headers
    user = await tls_tenant.user("cors-allowed")
    response = await https.get("/v1/users/me", headers={**user.headers, "Origin": ALLOWED_ORIGIN})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "X-Request-Id" in response.headers["access-control-expose-headers"]


async def ws_status(server: ServerThread, origin: str | None, token: str) -> int | None:
    """Open the WebSocket with this Origin; None when it opened, else the HTTP status."""
    assert server.tls is not None
    try:
        async with connect(
            server.ws_url,
            origin=origin,  # type: ignore[arg-type]
            additional_headers={"Authorization": f"Bearer {token}"},
            ssl=trust(server.tls.certificate.cert_file),
            open_timeout=5,
        ):
            return None
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_websocket_from_a_foreign_origin_is_refused(
    tls_server: ServerThread, tls_tenant: Tenant
) -> None:
    """Cross-site WebSocket hijacking: a foreign Origin gets 403 before the upgrade."""
    user = await tls_tenant.user("ws-origin")
    assert await ws_status(tls_server, FOREIGN_ORIGIN, user.token) == 403
    assert await ws_status(tls_server, "null", user.token) == 403


async def test_websocket_from_allowed_or_no_origin_opens(
    tls_server: ServerThread, tls_tenant: Tenant
) -> None:
    """The allowed origin, the server's own origin and non-browser clients (no Origin) connect."""
    user = await tls_tenant.user("ws-ok")
    assert await ws_status(tls_server, ALLOWED_ORIGIN, user.token) is None
    assert await ws_status(tls_server, tls_server.settings.public_url, user.token) is None
    assert await ws_status(tls_server, None, user.token) is None


@pytest.fixture(scope="module")
def proxied_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """Plain HTTP behind a trusted TLS-terminating proxy at 127.0.0.1."""
    settings = make_settings(
        tmp_path_factory.mktemp("proxied"),
        databases.new(),
        server={"public_url": "https://chat.example.com", "forwarded_allow_ips": "127.0.0.1"},
        transport={"tls": False, "behind_tls_proxy": True},
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture
async def proxied(proxied_server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """A client talking to the proxied server as the proxy would."""
    async with httpx.AsyncClient(base_url=proxied_server.base_url) as client:
        yield client


async def test_behind_a_proxy_plain_http_only_redirects(proxied: httpx.AsyncClient) -> None:
    """X-Forwarded-Proto: http → 308 to the public https URL, whatever the Host says."""
    response = await proxied.get(
        "/v1/users/me?x=1", headers={"X-Forwarded-Proto": "http", "Host": "evil.example"}
    )
    assert response.status_code == 308
    assert response.headers["location"] == "https://chat.example.com/v1/users/me?x=1"
    secure = await proxied.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert secure.status_code == 200
    assert secure.headers["strict-transport-security"].startswith("max-age=")
