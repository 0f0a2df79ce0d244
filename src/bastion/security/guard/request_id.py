"""Give every request an id (echoing a well-formed incoming ``X-Request-Id``)."""

from __future__ import annotations

import re

from bastion.core.asgi import ASGIApp, Message, Receive, Scope, Send, header
from bastion.core.ids import Kind, new_id

_WELL_FORMED = re.compile(rb"^[A-Za-z0-9._:-]{8,64}$")


class RequestId:
    """Stores the id in ``scope["state"]["request_id"]`` and returns it as a header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Tag the request and its response."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = header(scope, b"x-request-id")
        if incoming and _WELL_FORMED.match(incoming):
            request_id = incoming.decode()
        else:
            request_id = new_id(Kind.REQUEST)
        scope.setdefault("state", {})["request_id"] = request_id
        if scope["type"] == "websocket":
            # A socket's frames carry no headers; don't add a layer to every one of them.
            await self.app(scope, receive, send)
            return
        encoded = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", encoded)]
            await send(message)

        await self.app(scope, receive, send_with_id)
