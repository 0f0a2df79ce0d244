"""Request count and latency per route template and status (pure ASGI middleware)."""

from __future__ import annotations

import time
from collections.abc import Callable

from bastion.core.asgi import ASGIApp, Message, Receive, Scope, Send
from bastion.observe import metrics

RequestObserver = Callable[[str, str, int, float, Scope], None]
"""Called after each response: method, route template, status, seconds, scope."""


class RequestMetrics:
    """Counts and times every HTTP request; WebSockets are counted while open."""

    def __init__(self, app: ASGIApp, observers: list[RequestObserver] | None = None) -> None:
        self.app = app
        self._observers = observers or []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request and record it."""
        if scope["type"] == "websocket":
            metrics.WEBSOCKETS_ACTIVE.inc()
            try:
                await self.app(scope, receive, send)
            finally:
                metrics.WEBSOCKETS_ACTIVE.dec()
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def tracking(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = str(getattr(scope.get("route"), "path", None) or "unmatched")
        method = str(scope["method"])
        metrics.HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
        metrics.HTTP_LATENCY.labels(method=method, route=route, status=str(status)).observe(seconds)
        for observer in self._observers:
            observer(method, route, status, seconds, scope)
