"""Read a whole request body once and hand it on unchanged.

The size guard in ``limits`` has already bounded the body, so the guards after it may
hold it in memory to inspect it.
"""

from __future__ import annotations

from bastion.core.asgi import Message, Receive

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


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields ``body`` once, then defers to the real one."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again
