"""Client certificates forwarded by a trusted TLS-terminating proxy (``mtls = "proxy"``)."""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from bastion.core.asgi import Message, Scope
from bastion.security.guard.client_cert import ForwardedClientCert, parse_forwarded
from bastion.security.oauth import rfc8705
from tests.conftest import Databases, make_settings, start_server
from tests.support.certs import Authority
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, new_tenant

SUBJECT = "CN=proxy.client,O=Example Corp"
HEADER = "x-ssl-client-cert"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A client certificate's DER bytes (the proxy verified it; Bastion only reads it)."""
    folder = tmp_path_factory.mktemp("fwd")
    return Authority.create("Proxy client CA").issue_client(
        SUBJECT, folder / "c.crt", folder / "c.key"
    )


def _escaped(der: bytes) -> str:
    """The certificate as nginx's ``$ssl_client_escaped_cert`` sends it."""
    return quote(ssl.DER_cert_to_PEM_cert(der), safe="")


def test_forwarded_formats_are_read(certificate: bytes) -> None:
    """URL-encoded PEM and bare base64 DER both give the certificate; junk gives none."""
    for value in (_escaped(certificate), base64.b64encode(certificate).decode()):
        pem = parse_forwarded(value.encode())
        assert pem is not None
        assert ssl.PEM_cert_to_DER_cert(pem) == certificate
    for junk in (b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----%0Azz"):
        assert parse_forwarded(junk) is None


async def _scope_after(guard: ForwardedClientCert, peer: str, value: str) -> Scope:
    seen: list[Scope] = []

    async def app(scope: Scope, _receive: Any, _send: Any) -> None:
        seen.append(scope)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(_message: Message) -> None:
        return None

    scope: Scope = {
        "type": "http",
        "client": (peer, 5000),
        "headers": [(HEADER.encode(), value.encode())],
    }
    guard.app = app
    await guard(scope, receive, send)
    return seen[0]


async def test_only_a_trusted_proxy_is_believed(certificate: bytes) -> None:
    """The header from the proxy fills the TLS extension; from anyone else it is ignored."""
    guard = ForwardedClientCert(_no_app, header_name=HEADER, trusted="10.0.0.0/8")
    from_proxy = await _scope_after(guard, "10.1.2.3", _escaped(certificate))
    assert rfc8705.certificate_of(from_proxy) == certificate
    from_client = await _scope_after(guard, "203.0.113.9", _escaped(certificate))
    assert rfc8705.certificate_of(from_client) is None
    assert "extensions" not in from_client


async def _no_app(_scope: Scope, _receive: Any, _send: Any) -> None:
    raise AssertionError("replaced by the test")


@pytest.fixture(scope="module")
def proxied_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A plain-HTTP server behind a (simulated) proxy on 127.0.0.1 that forwards certs."""
    settings = make_settings(
        tmp_path_factory.mktemp("proxied"),
        databases.new(),
        server={"forwarded_allow_ips": "127.0.0.1"},
        transport={"behind_tls_proxy": True, "mtls": "proxy", "client_cert_header": HEADER},
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture
async def proxy(proxied_server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """The proxy's side of the connection: it says the client came over https."""
    async with httpx.AsyncClient(
        base_url=proxied_server.base_url, headers={"X-Forwarded-Proto": "https"}, timeout=10
    ) as client:
        yield client


async def test_a_forwarded_certificate_authenticates_and_binds(
    proxied_server: ServerThread, proxy: httpx.AsyncClient, certificate: bytes
) -> None:
    """tls_client_auth through the proxy: token bound to the forwarded certificate."""
    app: Tenant = new_tenant(proxied_server, proxy)
    created = await proxy.post(
        "/v1/clients",
        json={
            "name": "behind proxy",
            "grant_types": ["client_credentials"],
            "scopes": ["users:read"],
            "tls_client_auth_subject_dn": SUBJECT,
        },
        headers=await app.backend_headers(),
    )
    assert created.status_code == 201, created.text
    form = {"grant_type": "client_credentials", "client_id": created.json()["id"]}
    forwarded = {HEADER: _escaped(certificate)}
    response = await proxy.post("/oauth/token", data=form, headers=forwarded)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await proxy.get("/v1/users", headers={**bearer, **forwarded})).status_code == 200
    assert (await proxy.get("/v1/users", headers=bearer)).status_code == 401
    assert (await proxy.post("/oauth/token", data=form)).status_code == 401
