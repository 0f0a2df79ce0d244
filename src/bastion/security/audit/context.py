"""Which request (or socket) the current task serves, so a commit can say who changed what.

A pure ASGI middleware stores the connection's scope in a context variable; FastAPI
fills in the matched route, the path parameters and (through ``http.deps``) the
authenticated caller on that same scope, so by the time a command commits, the audit
record can name the route template, the resource and the principal.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from bastion.core.asgi import ASGIApp, Receive, Scope, Send, header
from bastion.observe.events import Actor, Origin

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CALLER_KEY = "caller"
"""``scope["state"]`` key where the transport stores the authenticated principal."""


@dataclass(frozen=True, slots=True)
class RequestScope:
    """A view of the current connection's ASGI scope."""

    scope: Scope

    @property
    def method(self) -> str:
        """The HTTP method, or ``WS`` for a WebSocket."""
        return str(self.scope.get("method", "WS"))

    @property
    def state_changing(self) -> bool:
        """Whether this request may change state (anything but GET/HEAD/OPTIONS)."""
        return self.method not in SAFE_METHODS

    @property
    def route(self) -> str:
        """The matched route template, never the raw path."""
        return str(getattr(self.scope.get("route"), "path", None) or "-")

    def path_params(self) -> dict[str, str]:
        """The matched path parameters (ids)."""
        params: dict[str, Any] = self.scope.get("path_params") or {}
        return {str(k): str(v)[:100] for k, v in params.items()}

    def resource(self) -> str | None:
        """The most specific object the route names, as ``kind:id``."""
        params = self.path_params()
        if not params:
            return None
        name, value = list(params.items())[-1]
        return f"{name.removesuffix('_id')}:{value}"

    def actor(self) -> Actor:
        """The authenticated caller, if the request got that far."""
        caller = self.scope.get("state", {}).get(CALLER_KEY)
        if caller is None:
            return Actor()
        return Actor(app_id=caller.app_id, subject=caller.subject, client_id=caller.client_id)

    def origin(self) -> Origin:
        """Client address, user agent and request id."""
        client = self.scope.get("client")
        agent = header(self.scope, b"user-agent")
        return Origin(
            ip=client[0] if client else None,
            user_agent=agent.decode("latin-1") if agent else None,
            request_id=self.scope.get("state", {}).get("request_id"),
        )


_current: ContextVar[RequestScope | None] = ContextVar("bastion_request", default=None)


def current_request() -> RequestScope | None:
    """The request the running task serves, if any."""
    return _current.get()


def current_origin() -> Origin:
    """Where the request the running task serves came from (empty outside a request)."""
    request = current_request()
    return request.origin() if request is not None else Origin()


def current_route() -> str:
    """The route template the running task serves (``-`` outside a request)."""
    request = current_request()
    return request.route if request is not None else "-"


class AuditContext:
    """Makes the connection's scope visible to the audit log for the whole request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the connection with its scope as the current request."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = _current.set(RequestScope(scope))
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)
