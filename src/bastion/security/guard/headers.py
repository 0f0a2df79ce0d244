"""Security headers on every HTTP response.

Every response gets ``nosniff``, ``no-referrer``, a closed CSP with
``frame-ancestors 'none'`` (the API serves no scripts, styles or frames; the few HTML
pages need none either) and, unless the route chose otherwise, ``Cache-Control:
no-store``. A route that sets its own ``Content-Security-Policy`` keeps it instead of
the default one (the login pages, whose forms must be allowed to post and redirect).
Responses over HTTPS get ``Strict-Transport-Security``. A ``Server``
header is never sent, so the version of the stack is not advertised.
"""

from __future__ import annotations

from bastion.core.asgi import ASGIApp, Message, Receive, Scope, Send

_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_NO_STORE = (b"cache-control", b"no-store")
_CSP = b"content-security-policy"


def hsts_value(max_age: int, *, include_subdomains: bool, preload: bool) -> bytes:
    """The ``Strict-Transport-Security`` value (RFC 6797 §6.1)."""
    parts = [f"max-age={max_age}"]
    if include_subdomains:
        parts.append("includeSubDomains")
    if preload:
        parts.append("preload")
    return "; ".join(parts).encode()


class SecurityHeaders:
    """Adds the headers above; HSTS only on responses sent over HTTPS (RFC 6797 §7.2)."""

    def __init__(self, app: ASGIApp, hsts: bytes | None = None) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Decorate the response start message."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(_HEADERS)
        if self.hsts is not None and scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", self.hsts))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append(_NO_STORE)
                added = extra
                if any(k.lower() == _CSP for k, _ in headers):
                    added = [(k, v) for k, v in extra if k != _CSP]
                message["headers"] = [*headers, *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)
