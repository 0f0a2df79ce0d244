"""Request count and latency per route template and status (pure ASGI middleware)."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import Counter, Histogram

from bastion.core.asgi import ASGIApp, Message, Receive, Scope, Send
from bastion.observe import metrics

_CHILDREN_MAX = 4096

RequestObserver = Callable[[str, str, int, float, Scope], None]
"""Called after each response: method, route template, status, seconds, scope."""


class RequestMetrics:
    """Counts and times every HTTP request; WebSockets are counted while open."""

    def __init__(self, app: ASGIApp, observers: list[RequestObserver] | None = None) -> None:
        self.app = app
        self._observers = observers or []
        # Label sets are bounded (route templates, numeric statuses); the cap is a backstop.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

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
        count, latency = self._series(method, route, status)
        count.inc()
        latency.observe(seconds)
        for observer in self._observers:
            observer(method, route, status, seconds, scope)

    def _series(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        """The two labelled series of a method, route and status, looked up once."""
        key = (method, route, status)
        found = self._children.get(key)
        if found is None:
            labels = {"method": method, "route": route, "status": str(status)}
            found = (metrics.HTTP_REQUESTS.labels(**labels), metrics.HTTP_LATENCY.labels(**labels))
            if len(self._children) >= _CHILDREN_MAX:
                self._children.clear()
            self._children[key] = found
        return found
