"""Read a whole request body once (``core.asgi.replay`` hands it on unchanged).

The size guard in ``limits`` has already bounded the body, so the guards after it may
hold it in memory to inspect it.
"""

from __future__ import annotations

from bastion.core.asgi import Receive

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def has_body_method(method: str) -> bool:
    """Whether requests with this method may carry a body the API reads."""
    return method in _BODY_METHODS


async def read_body(receive: Receive) -> bytes | None:
    """The complete body, or None if the client went away first."""
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(chunks)
