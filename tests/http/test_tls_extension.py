"""The ASGI TLS extension: what a handshake reports, and how it reaches each scope.

The handshakes run in memory (``ssl.MemoryBIO``) between the server's real TLS context
and a client, so the SSL object is the one uvicorn's transport would hold.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from bastion.core.asgi import Message, Scope
from bastion.core.settings import TransportSettings
from bastion.http import tls_extension
from bastion.security.guard.tls import server_context
from tests.support.certs import Authority

SUBJECT = "CN=reporter,O=Example Corp"


class Handshake:
    """A server and a client context, and a way to connect them in memory."""

    def __init__(self, tmp: Path) -> None:
        server_ca, self.client_ca = Authority.create("Server CA"), Authority.create("Client CA")
        server_ca.issue(["localhost"], tmp / "srv.crt", tmp / "srv.key")
        self.client_cert, self.client_key = tmp / "cli.crt", tmp / "cli.key"
        self.der = self.client_ca.issue_client(SUBJECT, self.client_cert, self.client_key)
        settings = TransportSettings(
            mtls="tls", client_ca_file=self.client_ca.write_ca(tmp / "client-ca.pem")
        )
        self.server = server_context(settings, tmp / "srv.crt", tmp / "srv.key")
        self.trust = server_ca.write_ca(tmp / "server-ca.pem")

    def connect(self, *, with_certificate: bool, version: ssl.TLSVersion) -> ssl.SSLObject:
        """Finish a handshake; return the server's end."""
        client_context = ssl.create_default_context(cafile=str(self.trust))
        client_context.minimum_version = client_context.maximum_version = version
        if with_certificate:
            client_context.load_cert_chain(self.client_cert, self.client_key)
        wires = [ssl.MemoryBIO() for _ in range(4)]
        client = client_context.wrap_bio(wires[0], wires[1], server_hostname="localhost")
        server = self.server.wrap_bio(wires[2], wires[3], server_side=True)
        ends = ((client, wires[1], wires[2]), (server, wires[3], wires[0]))
        for _ in range(20):
            finished = 0
            for end, outgoing, peer_incoming in ends:
                try:
                    end.do_handshake()
                    finished += 1
                except ssl.SSLWantReadError:
                    pass
                peer_incoming.write(outgoing.read())
            if finished == len(ends):
                return server
        raise AssertionError("the handshake did not finish")


@pytest.fixture(scope="module")
def handshake(tmp_path_factory: pytest.TempPathFactory) -> Handshake:
    """Contexts for in-memory handshakes."""
    return Handshake(tmp_path_factory.mktemp("tlsext"))


@pytest.mark.parametrize(
    ("version", "number"), [(ssl.TLSVersion.TLSv1_2, 0x0303), (ssl.TLSVersion.TLSv1_3, 0x0304)]
)
def test_a_client_certificate_is_reported(
    handshake: Handshake, version: ssl.TLSVersion, number: int
) -> None:
    """The client's certificate as PEM, its subject, the TLS version and IANA suite code."""
    server = handshake.connect(with_certificate=True, version=version)
    tls = tls_extension.tls_extension(server)
    assert tls is not None
    assert [ssl.PEM_cert_to_DER_cert(pem) for pem in tls["client_cert_chain"]] == [handshake.der]
    assert tls["client_cert_name"] == SUBJECT
    assert tls["tls_version"] == number
    names = {c["name"]: c["id"] & 0xFFFF for c in handshake.server.get_ciphers()}
    cipher = server.cipher()
    assert cipher is not None
    assert tls["cipher_suite"] == names[cipher[0]]
    assert tls["server_cert"] is None
    assert tls["client_cert_error"] is None


def test_no_certificate_is_an_empty_chain(handshake: Handshake) -> None:
    """Mutual TLS is optional: a client without a certificate connects, chain empty."""
    server = handshake.connect(with_certificate=False, version=ssl.TLSVersion.TLSv1_3)
    tls = tls_extension.tls_extension(server)
    assert tls is not None
    assert tls["client_cert_chain"] == []
    assert tls["client_cert_name"] is None


def test_plain_connections_get_no_extension() -> None:
    """The specification forbids the extension on a connection without TLS."""
    assert tls_extension.tls_extension(None) is None


async def test_each_scope_gets_the_connection_extension() -> None:
    """The wrapper adds the extension beside any the server already set."""
    seen: list[Scope] = []

    async def app(scope: Scope, _receive: Any, _send: Any) -> None:
        seen.append(scope)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(_message: Message) -> None:
        return None

    tls: dict[str, Any] = {"client_cert_chain": []}
    wrapped = tls_extension.WithTls(app, tls)
    await wrapped({"type": "http"}, receive, send)
    await wrapped(
        {"type": "websocket", "extensions": {"websocket.http.response": {}}}, receive, send
    )
    assert seen[0]["extensions"] == {"tls": tls}
    assert seen[1]["extensions"] == {"websocket.http.response": {}, "tls": tls}


def test_protocols_replace_the_chosen_http_implementation() -> None:
    """auto and httptools map to the httptools subclass, h11 to the h11 one."""
    assert tls_extension.protocols("auto")["http"] is tls_extension.TlsHttpToolsProtocol
    assert tls_extension.protocols("h11")["http"] is tls_extension.TlsH11Protocol
    assert tls_extension.protocols()["ws"] is tls_extension.TlsWebSocketsProtocol
    with pytest.raises(ValueError, match="zttp"):
        tls_extension.protocols("zttp")
