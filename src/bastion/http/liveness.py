"""When a WebSocket's peer last sent anything, as uvicorn sees it: control frames too.

ASGI hands the application a WebSocket's text and binary messages but none of its
control frames, so a client's protocol-level ping (how native clients keep a socket
alive; browsers cannot send one) and its pongs never reach the heartbeat. This uvicorn
protocol notes the time of every read from the peer and puts it in the connection's
scope as ``scope["extensions"]["bastion.liveness"]``: the heartbeat then counts any
frame at all as a sign of life. Under another ASGI server the extension is absent and
only messages count.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from bastion.core.asgi import ASGIApp, Receive, Scope, Send

EXTENSION = "bastion.liveness"


class Liveness:
    """The loop time of the last bytes received from the peer."""

    __slots__ = ("last_heard",)

    def __init__(self, now: float) -> None:
        self.last_heard = now


def last_heard(scope: Scope) -> float | None:
    """When the transport last heard from this WebSocket's peer (None: not reported)."""
    liveness = scope.get("extensions", {}).get(EXTENSION)
    return liveness.last_heard if isinstance(liveness, Liveness) else None


class WithLiveness:
    """Adds the connection's :class:`Liveness` to the scope before the application runs."""

    def __init__(self, app: ASGIApp, liveness: Liveness) -> None:
        self.app = app
        self.liveness = liveness

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the connection on, its scope carrying the extension."""
        scope.setdefault("extensions", {})[EXTENSION] = self.liveness
        await self.app(scope, receive, send)


class LivenessWebSocketsProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets (sans-I/O) protocol, reporting when the peer was last heard."""

    liveness: Liveness

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Let uvicorn set the connection up, then wrap the app to report liveness."""
        super().connection_made(transport)
        self.liveness = Liveness(self.loop.time())
        self.app = WithLiveness(self.app, self.liveness)

    def data_received(self, data: bytes) -> None:
        """Any bytes from the peer, data or control frame, show it is there."""
        self.liveness.last_heard = self.loop.time()
        super().data_received(data)
