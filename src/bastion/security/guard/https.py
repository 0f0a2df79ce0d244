"""HTTPS only: behind a TLS-terminating proxy, plain-HTTP requests are redirected.

When Bastion terminates TLS itself it does not listen on plain HTTP at all. When a
trusted proxy terminates TLS (``transport.behind_tls_proxy``), the scheme the client
used comes from the proxy's ``X-Forwarded-Proto`` (or ``Forwarded: proto=``), believed
only from a peer in ``server.forwarded_allow_ips``. A request that did not arrive over
HTTPS gets a 308 to the same path on the configured public ``https://`` URL (never the
request's own ``Host``, which the client controls); a plain WebSocket upgrade is
refused. Secure requests continue with ``scope["scheme"]`` set to ``https``/``wss``.
"""

from __future__ import annotations

from bastion.core.asgi import ASGIApp, Receive, Scope, Send, header
from bastion.security.guard.proxies import TrustedProxies


def forwarded_proto(scope: Scope) -> str | None:
    """The last hop's protocol from ``Forwarded`` (RFC 7239) or ``X-Forwarded-Proto``."""
    forwarded = header(scope, b"forwarded")
    if forwarded is not None:
        last = forwarded.decode("latin-1").split(",")[-1]
        for pair in last.split(";"):
            key, _, value = pair.partition("=")
            if key.strip().lower() == "proto":
                return value.strip().strip('"').lower()
    proto = header(scope, b"x-forwarded-proto")
    if proto is not None:
        return proto.decode("latin-1").split(",")[-1].strip().lower()
    return None


class HttpsOnly:
    """Redirect what did not reach the proxy over HTTPS to ``public_url``; refuse ``ws``."""

    def __init__(self, app: ASGIApp, *, public_url: str, trusted_proxies: str) -> None:
        self.app = app
        self.public_url = public_url.rstrip("/")
        self.proxies = TrustedProxies(app, trusted_proxies)

    def _secure(self, scope: Scope) -> bool:
        peer = scope.get("client")
        if not self.proxies.is_trusted(peer[0] if peer else None):
            return False
        return forwarded_proto(scope) in ("https", "wss")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass secure requests through, marked as such."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
        elif self._secure(scope):
            scope["scheme"] = "https" if scope["type"] == "http" else "wss"
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await self._redirect(scope, send)
        else:
            await receive()
            await send({"type": "websocket.close", "code": 1008, "reason": "use wss"})

    async def _redirect(self, scope: Scope, send: Send) -> None:
        target = self.public_url + scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        headers = [(b"location", target.encode("latin-1")), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 308, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
