"""Rate limits and load shedding for every HTTP request and WebSocket handshake.

Every response carries ``RateLimit-Policy`` and ``RateLimit``; a refused request gets
429 ``quota-exceeded`` with ``Retry-After``; a fail-closed policy whose store is down,
or low-priority traffic on an overloaded node, gets 503 with ``Retry-After``. A
refused WebSocket handshake is accepted, sent one ``error`` frame carrying the same
problem and ``retry_after``, and closed with 4008, or with 1011 when the server is busy
or cannot check the limits (the house's "server trouble, reconnect later" code; the
frame before it says which).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bastion.core.asgi import ASGIApp, Message, Receive, Scope, Send, header
from bastion.core.errors import BastionError, RateLimited, ReducedCapacity, problem
from bastion.observe.events import Origin
from bastion.security.ratelimit.fields import policy_field, usage_field, usage_policy_field
from bastion.security.ratelimit.policies import classify
from bastion.security.ratelimit.service import RateLimiting
from bastion.security.ratelimit.throttle import Verdict

CLOSE_RATE_LIMITED = 4008
CLOSE_TOO_MANY = 4009
CLOSE_SERVER_ERROR = 1011


class RateLimits:
    """The rate-limit guard; does nothing until the services exist or when disabled."""

    def __init__(
        self, app: ASGIApp, runtime: Callable[[], RateLimiting | None], *, problem_base: str
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.problem_base = problem_base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Shed, count, refuse or pass the request on with its rate-limit fields."""
        rl = self.runtime() if scope["type"] in ("http", "websocket") else None
        if rl is None or not rl.settings.enabled:
            await self.app(scope, receive, send)
            return
        group = classify(scope["type"], scope.get("method", "GET"), scope["path"])
        if group in rl.settings.shed_groups:
            reason = rl.load.overloaded()
            if reason is not None:
                await self._shed(rl, scope, receive, send, group, reason)
                return
        client = scope.get("client")
        caller = rl.caller(client[0] if client else None, header(scope, b"authorization"))
        verdict = await rl.throttle.check(group, caller, lambda: _origin(scope))
        fields = _fields(rl, group, verdict)
        if not verdict.allowed:
            await self._refuse(scope, receive, send, verdict, fields)
            return
        if scope["type"] == "websocket":
            await self._socket(rl, caller.network, scope, receive, send)
            return
        started = rl.load.started()
        try:
            await self.app(scope, receive, _adding(send, fields))
        finally:
            rl.load.finished(started)

    async def _socket(
        self, rl: RateLimiting, network: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Cap open sockets per client network (close code 4009 past the cap)."""
        if not rl.sockets.acquire(network):
            count = rl.reports.admit(f"sockets/{network}")
            if count is not None:
                await rl.throttle.events.emit(
                    "ratelimit.block",
                    "denied",
                    origin=_origin(scope),
                    reason="too many connections",
                    details={"policy": "ws-connections-per-ip", "scope": "ip", "count": count},
                )
            if (await receive())["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
                await send(
                    {
                        "type": "websocket.close",
                        "code": CLOSE_TOO_MANY,
                        "reason": "too many connections",
                    }
                )
            return
        try:
            await self.app(scope, receive, send)
        finally:
            rl.sockets.release(network)

    async def _shed(
        self, rl: RateLimiting, scope: Scope, receive: Receive, send: Send, group: str, reason: str
    ) -> None:
        rl.throttle.metrics.shed.labels(group, reason).inc()
        count = rl.reports.admit(f"shed/{group}/{reason}")
        if count is not None:  # one event a second at most: shedding is cheap, events are not
            await rl.throttle.events.emit(
                "ratelimit.shed",
                "denied",
                origin=_origin(scope),
                reason=reason,
                details={"group": group, "count": count},
            )
        error = ReducedCapacity("The server is busy; retry shortly.", retry_after=1)
        await self._respond(scope, receive, send, error, [(b"retry-after", b"1")], None)

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        verdict: Verdict,
        fields: list[tuple[bytes, bytes]],
    ) -> None:
        retry = str(max(1, verdict.retry_after)).encode()
        headers = [*fields, (b"retry-after", retry)]
        if verdict.unavailable and not verdict.refused_by:
            error: BastionError = ReducedCapacity(
                "Rate limits cannot be checked right now; retry shortly.",
                retry_after=verdict.retry_after,
            )
            await self._respond(scope, receive, send, error, headers, None)
            return
        error = RateLimited(verdict.retry_after, "Too many requests: slow down and retry later.")
        await self._respond(scope, receive, send, error, headers, verdict.refused_by)

    async def _respond(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        error: BastionError,
        headers: list[tuple[bytes, bytes]],
        violated: list[str] | None,
    ) -> None:
        body_doc: dict[str, Any] = problem(
            error, instance=scope.get("state", {}).get("request_id"), base=self.problem_base
        )
        if violated:
            body_doc["violated-policies"] = violated
        if scope["type"] == "websocket":
            await _refuse_socket(receive, send, body_doc, error)
            return
        body = json.dumps(body_doc).encode()
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _refuse_socket(
    receive: Receive, send: Send, body_doc: dict[str, Any], error: BastionError
) -> None:
    """Accept, send one ``error`` frame with ``retry_after``, and close (4008 or 1011).

    Frames rather than an HTTP denial response: every client library can read them,
    and every ASGI server supports them.
    """
    if (await receive())["type"] != "websocket.connect":
        return
    body_doc["retry_after"] = getattr(error, "retry_after", 1)
    frame = {"type": "error", "id": None, "data": body_doc}
    code = CLOSE_RATE_LIMITED if error.status == 429 else CLOSE_SERVER_ERROR
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps(frame)})
    await send({"type": "websocket.close", "code": code, "reason": error.title.lower()})


def _fields(rl: RateLimiting, group: str, verdict: Verdict) -> list[tuple[bytes, bytes]]:
    if not verdict.usages:
        return [(b"ratelimit-policy", policy_field(rl.throttle.policies.for_group(group)))]
    return [
        (b"ratelimit-policy", usage_policy_field(verdict.usages)),
        (b"ratelimit", usage_field(verdict.usages)),
    ]


def _adding(send: Send, fields: list[tuple[bytes, bytes]]) -> Send:
    async def send_with_fields(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *fields]
        await send(message)

    return send_with_fields


def _origin(scope: Scope) -> Origin:
    client = scope.get("client")
    agent = header(scope, b"user-agent")
    return Origin(
        ip=client[0] if client else None,
        user_agent=agent.decode("latin-1")[:256] if agent else None,
        request_id=scope.get("state", {}).get("request_id"),
    )
