"""The ASGI TLS extension for uvicorn: the client certificate in ``scope["extensions"]``.

https://github.com/django/asgiref/blob/main/specs/tls.rst (ASGI TLS extension 0.2)

uvicorn reports nothing about a connection's TLS to the application. These protocol
classes, given to ``uvicorn.Config(http=…, ws=…)``, read it from the connection's SSL
object once, when the connection is made, and add it as ``scope["extensions"]["tls"]``
to every HTTP request and WebSocket of that connection. Limits, as the specification
allows: ``client_cert_chain`` holds only the client's own certificate (Python's ``ssl``
before 3.13 does not expose the rest of the chain it sent), ``server_cert`` is None,
and ``client_cert_error`` is always None because a certificate that fails
verification fails the handshake.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from bastion.core.asgi import ASGIApp, Receive, Scope, Send
from bastion.http.liveness import LivenessWebSocketsProtocol
from bastion.http.parse_errors import (
    AnswersParseErrors,
    ProblemH11Protocol,
    ProblemHttpToolsProtocol,
)
from bastion.security.crypto import aead

_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
# OpenSSL cipher name -> IANA code (the low 16 bits of OpenSSL's id), filled on first use.
_CIPHER_CODES: dict[str, int] = {}


def _cipher_suite(ssl_object: ssl.SSLObject) -> int | None:
    cipher = ssl_object.cipher()
    if cipher is None:
        return None
    name = cipher[0]
    if name not in _CIPHER_CODES:
        for known in ssl_object.context.get_ciphers():
            _CIPHER_CODES[known["name"]] = int(known["id"]) & 0xFFFF
    return _CIPHER_CODES.get(name)


def tls_extension(ssl_object: ssl.SSLObject | None) -> dict[str, Any] | None:
    """The extension's dictionary for a TLS connection (None for plain TCP)."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    version = ssl_object.version()
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": aead.certificate_names(der).subject_dn if der else None,
        "client_cert_error": None,
        "tls_version": _VERSIONS.get(version) if version else None,
        "cipher_suite": _cipher_suite(ssl_object),
    }


class WithTls:
    """Adds one connection's TLS extension to each scope before the application runs."""

    def __init__(self, app: ASGIApp, tls: dict[str, Any]) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, its scope carrying the extension."""
        scope.setdefault("extensions", {})["tls"] = self.tls
        await self.app(scope, receive, send)


class _ReportsTls(asyncio.Protocol):
    """Mixed into a uvicorn protocol: wraps its application when the connection is made.

    uvicorn's HTTP and WebSocket protocols all call ``self.app`` for every scope of the
    connection, so wrapping it once is enough.
    """

    app: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Let uvicorn set the connection up, then read its TLS state."""
        super().connection_made(transport)
        tls = tls_extension(transport.get_extra_info("ssl_object"))
        if tls is not None:
            self.app = WithTls(self.app, tls)


class TlsHttpToolsProtocol(_ReportsTls, ProblemHttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol, reporting TLS (and parse errors as problems)."""


class TlsH11Protocol(_ReportsTls, ProblemH11Protocol):
    """uvicorn's h11 HTTP/1.1 protocol, reporting TLS (and parse errors as problems)."""


class TlsWebSocketsProtocol(_ReportsTls, LivenessWebSocketsProtocol):
    """uvicorn's websockets (sans-I/O) protocol, reporting TLS and liveness."""


HTTP_PROTOCOLS: dict[str, type[AnswersParseErrors]] = {
    "auto": TlsHttpToolsProtocol,
    "httptools": TlsHttpToolsProtocol,
    "h11": TlsH11Protocol,
}
"""uvicorn's ``http`` option names and the protocol class that replaces each."""


def protocols(http: str = "auto") -> dict[str, type[asyncio.Protocol]]:
    """``uvicorn.Config`` options choosing the TLS-reporting protocols for ``http``."""
    if http not in HTTP_PROTOCOLS:
        raise ValueError(f"no TLS-reporting protocol for http={http!r}")
    return {"http": HTTP_PROTOCOLS[http], "ws": TlsWebSocketsProtocol}
