"""Request body limits and media types, enforced before the body is parsed.

The size limit holds for bodies with a ``Content-Length`` and for chunked bodies:
the body is read up to the limit before the application sees any of it, and a
body that grows past the limit is answered with 413 at once.
"""

from __future__ import annotations

from bastion.core.asgi import ASGIApp, Message, Receive, Scope, Send, header
from bastion.core.errors import PayloadTooLarge, UnsupportedMediaType
from bastion.security.guard._respond import send_problem

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_FORM = b"application/x-www-form-urlencoded"
_JSON = b"application/json"


def _media_type(scope: Scope) -> bytes:
    raw = header(scope, b"content-type") or b""
    return raw.split(b";", 1)[0].strip().lower()


def _expected_media_type(path: str) -> bytes:
    return _FORM if path.startswith("/oauth/") else _JSON


class BodyLimits:
    """Refuses oversized bodies (413) and bodies of the wrong media type (415)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, problem_base: str) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.problem_base = problem_base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared size and type, then count the body as it streams in."""
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await send_problem(scope, send, PayloadTooLarge(self._too_large()), self.problem_base)
            return
        has_body = declared not in (None, b"0") or header(scope, b"transfer-encoding") is not None
        expected = _expected_media_type(scope["path"])
        if has_body and _media_type(scope) != expected:
            error = UnsupportedMediaType(f"Send the body as {expected.decode()}.")
            await send_problem(scope, send, error, self.problem_base)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                error = PayloadTooLarge(self._too_large())
                await send_problem(scope, send, error, self.problem_base)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"The request body exceeds {self.max_body_bytes} bytes."
