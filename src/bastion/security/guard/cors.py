"""CORS closed by default, and the WebSocket ``Origin`` check.

https://fetch.spec.whatwg.org/#http-cors-protocol. Only origins on the allow-list (and
the server's own origin) get ``Access-Control-Allow-Origin``; a preflight from any
other origin is refused with 403. Credentials (cookies) are never allowed: the API
authenticates with bearer tokens. A browser opening a WebSocket always sends
``Origin``; one that is not allowed is refused before the handshake completes (ASVS
4.4.2), which stops cross-site WebSocket hijacking. Clients that are not browsers
send no ``Origin`` and are not affected.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from bastion.core.asgi import ASGIApp, Message, Receive, Scope, Send, header
from bastion.core.errors import Forbidden
from bastion.security.guard._respond import send_problem

_ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE"
_ALLOW_HEADERS = b"Authorization, Content-Type, Idempotency-Key, If-Match, X-Request-Id"
_EXPOSE_HEADERS = b"ETag, Location, Retry-After, Idempotent-Replayed, X-Request-Id"
_VARY = (b"vary", b"Origin")


def origin_of(url: str) -> str:
    """The serialised origin (scheme://host[:port]) of a URL, lower case."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class OriginPolicy:
    """Guards HTTP (CORS) and WebSocket handshakes by the request's ``Origin``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed: tuple[str, ...],
        own_origin: str,
        max_age: int,
        problem_base: str,
    ) -> None:
        self.app = app
        self.allowed = frozenset(origin_of(o) for o in allowed) | {origin_of(own_origin)}
        self.max_age = str(max_age).encode()
        self.problem_base = problem_base

    def allows(self, origin: bytes) -> bool:
        """Whether this ``Origin`` value is on the allow-list."""
        return origin.decode("latin-1").lower() in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the origin, answer preflights, tag allowed responses."""
        origin = header(scope, b"origin") if scope["type"] in ("http", "websocket") else None
        if origin is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send, origin)
        elif scope["method"] == "OPTIONS" and header(scope, b"access-control-request-method"):
            await self._preflight(scope, send, origin)
        elif self.allows(origin):
            await self.app(scope, receive, _with_cors(send, origin))
        else:
            await self.app(scope, receive, _with_vary(send))

    async def _websocket(self, scope: Scope, receive: Receive, send: Send, origin: bytes) -> None:
        if self.allows(origin):
            await self.app(scope, receive, send)
            return
        await receive()  # websocket.connect
        # Closing before accepting makes the server answer the handshake with 403.
        await send({"type": "websocket.close", "code": 1008, "reason": "origin not allowed"})

    async def _preflight(self, scope: Scope, send: Send, origin: bytes) -> None:
        if not self.allows(origin):
            await send_problem(
                scope, send, Forbidden("This origin may not call the API."), self.problem_base
            )
            return
        headers = [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", _ALLOW_METHODS),
            (b"access-control-allow-headers", _ALLOW_HEADERS),
            (b"access-control-max-age", self.max_age),
            _VARY,
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _with_vary(send: Send) -> Send:
    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), _VARY]
        await send(message)

    return sender


def _with_cors(send: Send, origin: bytes) -> Send:
    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [
                *message.get("headers", []),
                (b"access-control-allow-origin", origin),
                (b"access-control-expose-headers", _EXPOSE_HEADERS),
                _VARY,
            ]
        await send(message)

    return sender
