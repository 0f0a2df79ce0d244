"""Answer a request with a problem document straight from ASGI."""

from __future__ import annotations

import json

from bastion.core.asgi import Scope, Send
from bastion.core.errors import BastionError, problem


async def send_problem(scope: Scope, send: Send, error: BastionError, base: str) -> None:
    """Send an RFC 9457 response for ``error``."""
    request_id = scope.get("state", {}).get("request_id")
    body = json.dumps(problem(error, instance=request_id, base=base)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
