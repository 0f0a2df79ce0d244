"""Answer a request with a problem document straight from ASGI."""

from __future__ import annotations

import asyncio
import contextlib
import json

from bastion.core.asgi import Receive, Scope, Send
from bastion.core.errors import BastionError, RateLimited, problem


async def send_problem(
    scope: Scope, send: Send, error: BastionError, base: str, *, finish: bool = True
) -> None:
    """Send an RFC 9457 response for ``error`` and close the connection after it.

    A malformed request to the OAuth endpoints gets the RFC 6749 §5.2 body instead
    (``invalid_request``), which OAuth clients expect. With ``finish=False`` the whole
    body is sent but the ASGI response stays open, so the caller can linger first.
    """
    request_id = scope.get("state", {}).get("request_id")
    headers = [(b"connection", b"close")]
    if error.status == 400 and scope.get("path", "").startswith("/oauth/"):
        body = json.dumps({"error": "invalid_request", "error_description": error.detail})
        headers += [
            (b"content-type", b"application/json; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"pragma", b"no-cache"),
        ]
    else:
        body = json.dumps(problem(error, instance=request_id, base=base))
        headers.append((b"content-type", b"application/problem+json"))
    headers.append((b"content-length", str(len(body)).encode()))
    if isinstance(error, RateLimited):
        headers.append((b"retry-after", str(error.retry_after).encode()))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode(), "more_body": not finish})


async def linger_then_close(receive: Receive, send: Send, seconds: float) -> None:
    """Discard what the client still sends for up to ``seconds``, then end the response.

    Closing a socket that has unread input makes the kernel answer with a reset, which
    can destroy a response the client has not read yet (RFC 9112 §9.6). Reading on for
    a bounded time lets a client that is still sending see the error first.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(deadline):
            while (await receive())["type"] != "http.disconnect":
                continue
    await send({"type": "http.response.body", "body": b""})
