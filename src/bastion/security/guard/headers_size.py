"""Limits on the number and total size of request header fields (431, RFC 6585 §5).

The HTTP server bounds a single header block too (uvicorn: 16 KiB with h11); this
guard holds a stricter, configured limit under any server and answers problem+json.
"""

from __future__ import annotations

from bastion.core.asgi import ASGIApp, Receive, Scope, Send
from bastion.core.errors import HeadersTooLarge
from bastion.security.guard._respond import send_problem


class HeaderLimits:
    """Refuses requests with too many header fields or too many header bytes."""

    def __init__(
        self, app: ASGIApp, *, max_headers: int, max_header_bytes: int, problem_base: str
    ) -> None:
        self.app = app
        self.max_headers = max_headers
        self.max_header_bytes = max_header_bytes
        self.problem_base = problem_base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the fields and their bytes (name, value and the ': ' and CRLF)."""
        if scope["type"] in ("http", "websocket"):
            headers = scope.get("headers", ())
            error = None
            if len(headers) > self.max_headers:
                error = HeadersTooLarge(f"Send at most {self.max_headers} header fields.")
            elif sum(len(k) + len(v) + 4 for k, v in headers) > self.max_header_bytes:
                error = HeadersTooLarge(f"Send at most {self.max_header_bytes} bytes of headers.")
            if error is not None:
                await self._refuse(scope, send, error)
                return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, error: HeadersTooLarge) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send_problem(scope, send, error, self.problem_base)
