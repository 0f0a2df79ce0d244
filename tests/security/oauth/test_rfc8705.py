"""RFC 8705: mutual-TLS client authentication and certificate-bound access tokens.

A real HTTPS server asks for client certificates signed by a CA this module makes;
httpx presents them (or not) and the token endpoint and resource server answer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bastion.security.oauth import rfc8693, rfc8705
from tests.conftest import Databases, make_settings, start_server
from tests.support.certs import Authority
from tests.support.dpop import DPoPKey
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, new_tenant

SUBJECT = "CN=billing.backend,O=Example Corp"
BACKEND_SCOPES = ["users:read", "users:write", "tokens:exchange"]
GRANTS = ["client_credentials", rfc8693.GRANT_TYPE]


@dataclass(frozen=True, slots=True)
class Identity:
    """A client certificate and key on disk, and the certificate's DER bytes."""

    cert: Path
    key: Path
    der: bytes


@dataclass(frozen=True, slots=True)
class Pki:
    """The client CA the server trusts, and certificates made by it and by a stranger."""

    ca_file: Path
    backend: Identity
    other_backend: Identity
    wrong_subject: Identity
    by_dns: Identity
    stranger: Identity


def _identity(
    ca: Authority, folder: Path, name: str, subject: str, **kw: tuple[str, ...]
) -> Identity:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    return Identity(cert, key, ca.issue_client(subject, cert, key, **kw))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A client CA, its certificates, and one certificate from a CA nobody trusts."""
    folder = tmp_path_factory.mktemp("pki")
    ca, stranger = Authority.create("Client CA"), Authority.create("Stranger CA")
    return Pki(
        ca_file=ca.write_ca(folder / "client-ca.pem"),
        backend=_identity(ca, folder, "backend", SUBJECT),
        other_backend=_identity(ca, folder, "other", SUBJECT),
        wrong_subject=_identity(ca, folder, "wrong", "CN=intruder,O=Example Corp"),
        by_dns=_identity(ca, folder, "dns", "CN=svc", dns=("svc.internal.example",)),
        stranger=_identity(stranger, folder, "stranger", SUBJECT),
    )


@pytest.fixture(scope="module")
def mtls_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory, pki: Pki
) -> Iterator[ServerThread]:
    """A server terminating TLS itself that asks for (optional) client certificates."""
    settings = make_settings(
        tmp_path_factory.mktemp("mtls"),
        databases.new(),
        transport={"tls": True, "mtls": "tls", "client_ca_file": pki.ca_file},
    )
    public_url = f"https://127.0.0.1:{settings.server.port}"
    server = settings.server.model_copy(update={"public_url": public_url})
    running = start_server(settings.model_copy(update={"server": server}))
    yield running
    running.stop()


def _context(server: ServerThread, identity: Identity | None) -> ssl.SSLContext:
    assert server.tls is not None
    context = ssl.create_default_context(cafile=str(server.tls.certificate.cert_file))
    if identity is not None:
        context.load_cert_chain(identity.cert, identity.key)
    return context


class Clients:
    """httpx clients of the mTLS server: without a certificate, or with one."""

    def __init__(self, server: ServerThread) -> None:
        self.server = server
        self._open: list[httpx.AsyncClient] = []

    def __call__(self, identity: Identity | None = None) -> httpx.AsyncClient:
        """A client presenting ``identity`` (none: no certificate)."""
        client = httpx.AsyncClient(
            base_url=self.server.base_url, verify=_context(self.server, identity), timeout=10
        )
        self._open.append(client)
        return client

    async def close(self) -> None:
        """Close every client made."""
        for client in self._open:
            await client.aclose()


@pytest.fixture
async def clients(mtls_server: ServerThread) -> AsyncIterator[Clients]:
    """A factory of clients of the mTLS server."""
    made = Clients(mtls_server)
    yield made
    await made.close()


@pytest.fixture
def app(mtls_server: ServerThread, clients: Clients) -> Tenant:
    """A fresh app on the mTLS server; its own backend uses a secret, without a certificate."""
    return new_tenant(mtls_server, clients())


async def _register(app: Tenant, **names: str) -> str:
    body = {"name": "billing", "grant_types": GRANTS, "scopes": BACKEND_SCOPES}
    response = await app.http.post(
        "/v1/clients", json={**body, **names}, headers=await app.backend_headers()
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["auth_method"] == rfc8705.TLS_CLIENT_AUTH
    assert "client_secret" not in created
    client_id: str = created["id"]
    return client_id


async def _token(http: httpx.AsyncClient, client_id: str, **form: str) -> httpx.Response:
    return await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, **form},
    )


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return claims


async def test_a_certificate_client_gets_a_bound_token_and_uses_it(
    app: Tenant, clients: Clients, pki: Pki
) -> None:
    """tls_client_auth: the certificate authenticates; the token carries its x5t#S256."""
    client_id = await _register(app, tls_client_auth_subject_dn=SUBJECT)
    with_cert = clients(pki.backend)
    response = await _token(with_cert, client_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert _claims(body["access_token"])["cnf"] == {"x5t#S256": rfc8705.thumbprint(pki.backend.der)}
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    listed = await with_cert.get("/v1/users", headers=headers)
    assert listed.status_code == 200, listed.text


async def test_a_bound_token_without_its_certificate_is_refused(
    app: Tenant, clients: Clients, pki: Pki
) -> None:
    """No certificate, or another one from the same CA and subject: 401 invalid_token."""
    client_id = await _register(app, tls_client_auth_subject_dn=SUBJECT)
    token = (await _token(clients(pki.backend), client_id)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    for http in (clients(), clients(pki.other_backend)):
        response = await http.get("/v1/users", headers=headers)
        assert response.status_code == 401, response.text
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_certificate_with_the_wrong_subject_is_refused(
    app: Tenant, clients: Clients, pki: Pki
) -> None:
    """A valid certificate of the right CA naming someone else: 401 invalid_client."""
    client_id = await _register(app, tls_client_auth_subject_dn=SUBJECT)
    for http in (clients(pki.wrong_subject), clients()):
        response = await _token(http, client_id)
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_client"


async def test_a_certificate_from_another_ca_fails_the_handshake(
    app: Tenant, clients: Clients, pki: Pki
) -> None:
    """The same subject signed by a CA the server does not trust never gets a request in."""
    client_id = await _register(app, tls_client_auth_subject_dn=SUBJECT)
    with pytest.raises(httpx.TransportError):
        await _token(clients(pki.stranger), client_id)


async def test_a_subject_alternative_name_can_identify_the_client(
    app: Tenant, clients: Clients, pki: Pki
) -> None:
    """tls_client_auth_san_dns matches a dNSName of the certificate (case-insensitively)."""
    client_id = await _register(app, tls_client_auth_san_dns="SVC.internal.example")
    assert (await _token(clients(pki.by_dns), client_id)).status_code == 200
    assert (await _token(clients(pki.backend), client_id)).status_code == 401


async def test_a_certificate_client_may_also_bind_to_dpop(
    app: Tenant, clients: Clients, pki: Pki, mtls_server: ServerThread
) -> None:
    """With a DPoP proof the token is bound to both; both proofs are then needed."""
    client_id = await _register(app, tls_client_auth_subject_dn=SUBJECT)
    key, http = DPoPKey(), clients(pki.backend)
    url = mtls_server.settings.public_url
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id},
        headers={"DPoP": key.proof("POST", f"{url}/oauth/token")},
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert response.json()["token_type"] == "DPoP"
    assert set(_claims(token)["cnf"]) == {"jkt", "x5t#S256"}
    for client, status in ((http, 200), (clients(), 401)):
        proof = key.proof("GET", f"{url}/v1/users", token=token)
        headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
        assert (await client.get("/v1/users", headers=headers)).status_code == status


async def test_a_bound_user_token_opens_a_socket_only_with_its_certificate(
    app: Tenant, clients: Clients, pki: Pki, mtls_server: ServerThread
) -> None:
    """Token exchange by a certificate client: the user's WebSocket needs that certificate."""
    client_id = await _register(app, tls_client_auth_subject_dn=SUBJECT)
    user = await app.user("alice")
    exchanged = await _token(
        clients(pki.backend),
        client_id,
        grant_type=rfc8693.GRANT_TYPE,
        subject_token=user.id,
        subject_token_type=rfc8693.USER_ID_TYPE,
    )
    assert exchanged.status_code == 200, exchanged.text
    headers = {"Authorization": f"Bearer {exchanged.json()['access_token']}"}
    with_cert = _context(mtls_server, pki.backend)
    async with connect(mtls_server.ws_url, ssl=with_cert, additional_headers=headers) as conn:
        assert json.loads(await asyncio.wait_for(conn.recv(), 5))["type"] == "ready"
    without = _context(mtls_server, None)
    async with connect(mtls_server.ws_url, ssl=without, additional_headers=headers) as conn:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(conn.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4001


async def test_discovery_advertises_mtls_when_it_is_on(clients: Clients) -> None:
    """tls_client_auth and certificate-bound tokens appear in the metadata."""
    meta = (await clients().get("/.well-known/oauth-authorization-server")).json()
    assert "tls_client_auth" in meta["token_endpoint_auth_methods_supported"]
    assert "tls_client_auth" in meta["introspection_endpoint_auth_methods_supported"]
    assert meta["tls_client_certificate_bound_access_tokens"] is True


@pytest.mark.parametrize(
    ("names", "field"),
    [
        ({"auth_method": "tls_client_auth"}, "body.auth_method"),
        ({"tls_client_auth_subject_dn": "not a dn"}, "body.tls_client_auth_subject_dn"),
        ({"tls_client_auth_san_ip": "300.1.1.1"}, "body.tls_client_auth_san_ip"),
        (
            {"tls_client_auth_subject_dn": SUBJECT, "tls_client_auth_san_dns": "a.example"},
            "body.tls_client_auth_san_dns",
        ),
        (
            {"auth_method": "client_secret_basic", "tls_client_auth_subject_dn": SUBJECT},
            "body.tls_client_auth_subject_dn",
        ),
    ],
)
async def test_malformed_certificate_registrations_are_refused(
    app: Tenant, names: dict[str, str], field: str
) -> None:
    """422 naming the field: no name, a bad name, two names, a name without the method."""
    body = {"name": "x", "grant_types": ["client_credentials"], "scopes": BACKEND_SCOPES}
    response = await app.http.post(
        "/v1/clients", json={**body, **names}, headers=await app.backend_headers()
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
