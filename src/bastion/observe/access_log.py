"""One log line per HTTP request: id, method, route template, status, latency, caller."""

from __future__ import annotations

import time
from collections.abc import Callable

from bastion.core.asgi import ASGIApp, Message, Receive, Scope, Send
from bastion.observe.logging import get_logger

_log = get_logger("bastion.access")


class AccessLog:
    """Logs after each response; the path is the route template, never the raw URL."""

    def __init__(
        self, app: ASGIApp, client_ip: Callable[[str | None], str | None] | None = None
    ) -> None:
        self.app = app
        # Client addresses are personal data: logged as configured (truncated by default).
        self._client_ip = client_ip or (lambda _address: None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and log it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_tracking(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        finally:
            state = scope.get("state", {})
            route = scope.get("route")
            client = scope.get("client")
            _log.info(
                "request",
                request_id=state.get("request_id"),
                method=scope["method"],
                route=getattr(route, "path", None) or "-",
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 2),
                principal=state.get("principal"),
                ip=self._client_ip(client[0] if client else None),
            )
