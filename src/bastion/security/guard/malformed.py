"""Blocks client addresses that keep sending malformed or oversized requests.

Every answer with a status that means "your request was malformed" (400, 408, 413,
414, 415, 422, 431) counts against the client's address in :class:`Offenders`. Past
the threshold the address is blocked with exponential backoff: its requests get 429
with ``Retry-After`` (WebSocket upgrades are closed with 1008) and the security event
``guard.malformed_block`` is emitted. Other addresses are unaffected.
"""

from __future__ import annotations

from collections.abc import Callable

from bastion.core.asgi import ASGIApp, Message, Receive, Scope, Send, header
from bastion.core.errors import Blocked
from bastion.observe.events import Origin, SecurityEvents
from bastion.security.guard._respond import send_problem
from bastion.security.guard.offenders import Block, Offenders

MALFORMED_STATUSES = frozenset({400, 408, 413, 414, 415, 422, 431})
EVENT = "guard.malformed_block"


def client_address(scope: Scope) -> str:
    """The client's address as the server saw it (after trusted proxy headers)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class MalformedTraffic:
    """Counts malformed requests per address and refuses blocked addresses."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        offenders: Offenders,
        events: Callable[[], SecurityEvents | None],
        problem_base: str,
    ) -> None:
        self.app = app
        self.offenders = offenders
        self.events = events
        self.problem_base = problem_base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a blocked address; otherwise watch the status of the answer."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        address = client_address(scope)
        wait = self.offenders.blocked_for(address)
        if wait:
            await self._refuse(scope, send, wait)
            return
        status = 0

        async def watching(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watching)
        finally:
            if status in MALFORMED_STATUSES:
                block = self.offenders.offend(address)
                if block is not None:
                    await self._report(scope, address, block)

    async def _refuse(self, scope: Scope, send: Send, wait: int) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        detail = "Too many malformed requests from this address; try again later."
        await send_problem(scope, send, Blocked(wait, detail), self.problem_base)

    async def _report(self, scope: Scope, address: str, block: Block) -> None:
        events = self.events()
        if events is None:
            return
        agent = header(scope, b"user-agent")
        origin = Origin(
            ip=address,
            user_agent=agent.decode("latin-1")[:200] if agent else None,
            request_id=scope.get("state", {}).get("request_id"),
        )
        await events.emit(
            EVENT,
            "denied",
            origin=origin,
            reason="repeated malformed requests",
            details={"block_seconds": block.seconds, "strikes": block.strikes},
        )
