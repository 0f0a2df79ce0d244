"""Request body and WebSocket frame size limits, enforced before anything is parsed.

The size limit holds for bodies with a ``Content-Length`` and for chunked bodies:
the body is read up to the limit before the application sees any of it, and a
body that grows past the limit is answered with 413 at once, without reading on.
WebSocket messages larger than the frame limit close the socket with 1009.
"""

from __future__ import annotations

from bastion.core.asgi import ASGIApp, Message, Receive, Scope, Send, header, replay
from bastion.core.errors import PayloadTooLarge
from bastion.security.guard._body import has_body_method
from bastion.security.guard._respond import send_problem

CLOSE_TOO_BIG = 1009


class BodyLimits:
    """Refuses oversized bodies (413) and oversized WebSocket messages (close 1009)."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, max_frame_bytes: int, problem_base: str
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_frame_bytes = max_frame_bytes
        self.problem_base = problem_base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared size, then count the body as it streams in."""
        if scope["type"] == "websocket":
            await self.app(scope, self._frames(receive, send), send)
            return
        if scope["type"] != "http" or not has_body_method(scope["method"]):
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await send_problem(scope, send, PayloadTooLarge(self._too_large()), self.problem_base)
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
        await self.app(scope, replay(bytes(body), receive), send)

    def _frames(self, receive: Receive, send: Send) -> Receive:
        """A ``receive`` that closes the socket (1009) on a message above the limit.

        The server usually enforces this itself (uvicorn's ``ws_max_size``); this holds
        the limit under any ASGI server.
        """

        async def checked() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive" and self._frame_size(message) > (
                self.max_frame_bytes
            ):
                await send({"type": "websocket.close", "code": CLOSE_TOO_BIG})
                return {"type": "websocket.disconnect", "code": CLOSE_TOO_BIG}
            return message

        return checked

    @staticmethod
    def _frame_size(message: Message) -> int:
        data = message.get("bytes")
        if data is not None:
            return len(data)
        text: str = message.get("text") or ""
        return len(text.encode())

    def _too_large(self) -> str:
        return f"The request body exceeds {self.max_body_bytes} bytes."
