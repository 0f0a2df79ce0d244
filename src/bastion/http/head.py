"""HEAD on every GET route (RFC 9110 §9.3.2): the GET's status and headers, no content.

FastAPI routes answer only the methods they declare, and declaring HEAD on each route
would add a HEAD operation per path to the OpenAPI document. This pure ASGI wrapper,
just around the API, runs a HEAD request as the GET it stands for and drops the body
of the answer, keeping its ``Content-Length``. Everything outside it (guards, logs,
metrics) sees the request as the HEAD it is.
"""

from __future__ import annotations

from bastion.core.asgi import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """Answers HEAD wherever GET is answered, with the same headers and no body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run a HEAD request as a GET; pass everything else through."""
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        # The routes read the method from this same scope, and so do the middleware and
        # the server around it once the answer starts: GET while routing, HEAD again
        # from the first response message on.
        scope["method"] = "GET"

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.start":
                scope["method"] = "HEAD"
            elif message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(scope, receive, headers_only)
        finally:
            scope["method"] = "HEAD"
