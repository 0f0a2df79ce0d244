"""Answer a request with a problem document straight from ASGI."""

from __future__ import annotations

import asyncio
import contextlib
import json

from bastion.core.asgi import Receive, Scope, Send
from bastion.core.errors import BastionError, OAuthError, RateLimited, problem
from bastion.security.oauth import rfc6749


async def send_problem(
    scope: Scope, send: Send, error: BastionError, base: str, *, finish: bool = True
) -> None:
    """Send an RFC 9457 response for ``error`` and close the connection after it.

    A refused request to the OAuth endpoints gets the RFC 6749 §5.2 body instead
    (``invalid_request``), which OAuth clients expect. With ``finish=False`` the whole
    body is sent but the ASGI response stays open, so the caller can linger first.
    """
    request_id = scope.get("state", {}).get("request_id")
    headers = [(b"connection", b"close")]
    oauth = _oauth_refusal(scope.get("path", ""), error)
    if oauth is not None:
        body = json.dumps({"error": oauth.error, "error_description": oauth.description})
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
    status = error.status if oauth is None else oauth.status
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode(), "more_body": not finish})


def _oauth_refusal(path: str, error: BastionError) -> OAuthError | None:
    """The §5.2 body for an OAuth endpoint, and for any malformed (400) /oauth/ request."""
    refusal = rfc6749.request_refusal(path, error.status, error.detail)
    if refusal is None and error.status == 400 and path.startswith("/oauth/"):
        refusal = OAuthError("invalid_request", error.detail)
    return refusal


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
