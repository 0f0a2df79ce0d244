"""Checks on the request target: length (414), encoding and repeated query parameters.

The path and query must decode (after percent-decoding) to valid UTF-8 without NUL or
other control characters, and no query parameter may be named twice: two readers of a
polluted query (a proxy, a framework, a log) could each pick a different value.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from bastion.core.asgi import ASGIApp, Receive, Scope, Send
from bastion.core.errors import BastionError, InvalidRequest, UriTooLong
from bastion.security.guard._respond import send_problem

_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def decoded(raw: bytes) -> str | None:
    """Percent-decode ``raw`` to text; None if it is not clean UTF-8 without controls."""
    data = unquote_to_bytes(raw)
    if _CONTROL.search(data):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def target_problem(raw_path: bytes, query: bytes, max_bytes: int) -> BastionError | None:
    """What is wrong with a request target, or None when it is acceptable."""
    if len(raw_path) + len(query) + 1 > max_bytes:
        return UriTooLong(f"The request target exceeds {max_bytes} bytes.")
    if decoded(raw_path) is None:
        return InvalidRequest("The path is not valid UTF-8 or contains control characters.")
    names: set[str] = set()
    for pair in query.split(b"&") if query else ():
        name_raw, _, value_raw = pair.partition(b"=")
        name = decoded(name_raw.replace(b"+", b" "))
        if name is None or decoded(value_raw.replace(b"+", b" ")) is None:
            return InvalidRequest("The query is not valid UTF-8 or contains control characters.")
        if name in names:
            return InvalidRequest("A query parameter is repeated; send each at most once.")
        names.add(name)
    return None


class RequestTarget:
    """Refuses over-long, badly encoded or polluted request targets."""

    def __init__(self, app: ASGIApp, *, max_url_bytes: int, problem_base: str) -> None:
        self.app = app
        self.max_url_bytes = max_url_bytes
        self.problem_base = problem_base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the raw path and query string before routing."""
        if scope["type"] in ("http", "websocket"):
            raw_path = scope.get("raw_path") or scope["path"].encode()
            error = target_problem(raw_path, scope.get("query_string", b""), self.max_url_bytes)
            if error is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                else:
                    await send_problem(scope, send, error, self.problem_base)
                return
        await self.app(scope, receive, send)
