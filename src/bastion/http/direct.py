"""A busy route served ahead of FastAPI's middleware and router, for its plain requests.

Every request FastAPI serves passes its exception and exit-stack middleware, is matched
against the routes one by one, and has its dependencies resolved generically. On the
busiest route (sending a message) that bookkeeping cost more than the checks it leads
to. :class:`DirectRoute` sits just in front of the FastAPI application: a request for its
route, with its method, without a query string, is given to a handler that makes the
calls the route declares, in its order, and answers; the handler answers None for a
request it does not take (a body its schema refuses, say), which then goes to FastAPI
with its body replayed, for FastAPI's canonical answer. Nothing with a side effect runs
before that choice.

The request looks to everything around it as it would through FastAPI: the scope names
the application, the route, its endpoint and its path parameters, and an exception
gets the application's own exception handler (an unexpected one its 500, then raised
on, as Starlette's server-error middleware does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from bastion.core.asgi import Receive, Scope, Send, replay

DirectHandler = Callable[[Request], Awaitable[Response | None]]
"""Answers a request of the route, or None to leave it to FastAPI."""


class DirectRoute:
    """Serves ``route``'s plain requests with ``handler``, everything else with ``api``."""

    def __init__(self, api: FastAPI, route: APIRoute, handler: DirectHandler) -> None:
        self.api = api
        self.route = route
        self.handler = handler
        self._methods = frozenset(route.methods or ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection."""
        params = self._params(scope)
        if params is None:
            await self.api(scope, receive, send)
            return
        # What Starlette's application and router put in the scope on the way.
        scope["app"] = self.api
        scope["router"] = self.api.router
        scope["route"] = self.route
        scope["endpoint"] = self.route.endpoint
        scope["path_params"] = params
        request = Request(scope, receive, send)
        try:
            body = await request.body()
            response = await self.handler(request)
        except Exception as exc:  # noqa: BLE001 - every error gets the application's answer
            await self._answer_error(request, exc, send)
            return
        if response is None:
            await self.api(scope, replay(body, receive), send)
            return
        await response(scope, receive, send)

    def _params(self, scope: Scope) -> dict[str, Any] | None:
        """The path parameters of a plain request for the route, or None."""
        if (
            scope["type"] != "http"
            or scope["method"] not in self._methods
            or scope.get("query_string")
            or scope.get("root_path")
        ):
            return None
        match = self.route.path_regex.match(scope["path"])
        if match is None:
            return None
        convert = self.route.param_convertors
        return {name: convert[name].convert(value) for name, value in match.groupdict().items()}

    async def _answer_error(self, request: Request, exc: Exception, send: Send) -> None:
        """Answer with the application's handler for ``exc``; raise on what it has none
        for, and on an unexpected error once its 500 is sent."""
        handlers = self.api.exception_handlers
        kind = next((k for k in type(exc).__mro__ if k in handlers), None)
        if kind is None:
            raise exc
        answer = handlers[kind](request, exc)
        response: Response = await answer if isinstance(answer, Awaitable) else answer
        await response(request.scope, request.receive, send)
        if kind is Exception:
            raise exc
