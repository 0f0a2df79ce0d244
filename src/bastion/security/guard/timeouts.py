"""Request-body timeouts against slow clients (408).

A client that trickles its body a byte at a time holds a connection and a task for as
long as it likes unless the body has a deadline. Each chunk must arrive within the idle
timeout and the whole body within the request timeout. (Idle keep-alive connections
are closed by the HTTP server itself, ``timeout_keep_alive``.)
"""

from __future__ import annotations

import asyncio

from bastion.core.asgi import ASGIApp, Message, Receive, Scope, Send
from bastion.core.errors import RequestTimeout
from bastion.security.guard._body import has_body_method
from bastion.security.guard._respond import linger_then_close, send_problem


class _TooSlow(Exception):
    """The body did not arrive in time."""


class BodyTimeouts:
    """Answers 408 when a request body arrives too slowly."""

    def __init__(
        self, app: ASGIApp, *, request_seconds: float, idle_seconds: float, problem_base: str
    ) -> None:
        self.app = app
        self.request_seconds = request_seconds
        self.idle_seconds = idle_seconds
        self.problem_base = problem_base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with a deadline on every read of its body."""
        if scope["type"] != "http" or not has_body_method(scope["method"]):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_seconds
        started = False
        complete = False

        async def timed_receive() -> Message:
            nonlocal complete
            if complete:  # the body is in; later reads only wait for a disconnect
                return await receive()
            remaining = min(self.idle_seconds, deadline - loop.time())
            try:
                async with asyncio.timeout(max(remaining, 0)):
                    message = await receive()
            except TimeoutError:
                raise _TooSlow from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, tracked_send)
        except _TooSlow:
            if not started:
                error = RequestTimeout("The request body did not arrive in time.")
                await send_problem(scope, send, error, self.problem_base, finish=False)
                await linger_then_close(receive, send, self.idle_seconds)
