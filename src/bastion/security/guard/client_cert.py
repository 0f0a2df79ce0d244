"""The client certificate a trusted TLS-terminating proxy forwards in a header.

With ``transport.mtls = "proxy"`` the proxy verifies client certificates against its
own client CA and forwards the one it accepted in ``transport.client_cert_header``:
URL-encoded PEM (nginx ``$ssl_client_escaped_cert``, AWS ALB) or bare base64 DER
(Traefik). The header is believed only from ``server.forwarded_allow_ips``; from any
other peer it is ignored, so a client cannot claim a certificate it does not hold.
The certificate is placed where the server's own handshake would put it, the ASGI TLS
extension (``scope["extensions"]["tls"]``), so the rest of the app has one place to
look. The proxy must always set or remove the header: a value it passes through from
the client would be believed.
"""

from __future__ import annotations

import binascii
import ssl
import textwrap
from urllib.parse import unquote

from bastion.core.asgi import ASGIApp, Receive, Scope, Send, header
from bastion.security.guard.proxies import is_trusted, parse_networks

_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"


def parse_forwarded(value: bytes) -> str | None:
    """The PEM certificate in a forwarded header value, or None if it holds none."""
    text = unquote(value.decode("latin-1")).strip()
    if not text:
        return None
    if _PEM_BEGIN not in text:
        body = "\n".join(textwrap.wrap("".join(text.split()), 64))
        text = f"{_PEM_BEGIN}\n{body}\n-----END CERTIFICATE-----\n"
    try:
        der = ssl.PEM_cert_to_DER_cert(text)
    except (ValueError, binascii.Error):
        return None
    return ssl.DER_cert_to_PEM_cert(der) if der else None


class ForwardedClientCert:
    """Puts the trusted proxy's forwarded client certificate into the TLS extension."""

    def __init__(self, app: ASGIApp, *, header_name: str, trusted: str) -> None:
        self.app = app
        self.header = header_name.lower().encode("latin-1")
        self.trusted = parse_networks(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the header from a trusted proxy's request, then pass the request on."""
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            if is_trusted(peer[0] if peer else None, self.trusted):
                raw = header(scope, self.header)
                pem = parse_forwarded(raw) if raw is not None else None
                scope.setdefault("extensions", {})["tls"] = {
                    "server_cert": None,
                    "client_cert_chain": [pem] if pem else [],
                    "client_cert_name": None,
                    "client_cert_error": None,
                    "tls_version": None,
                    "cipher_suite": None,
                }
        await self.app(scope, receive, send)
