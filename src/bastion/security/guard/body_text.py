"""Request bodies must be valid UTF-8 without NUL, raw or escaped.

NUL truncates strings in C libraries and PostgreSQL refuses it in text columns, so it
is stopped here for every body: a raw ``0x00`` byte, ``\\u0000`` in JSON, ``%00`` in
form data.
"""

from __future__ import annotations

import re

from bastion.core.asgi import ASGIApp, Receive, Scope, Send
from bastion.core.errors import InvalidRequest
from bastion.security.guard._body import has_body_method, read_body, replay
from bastion.security.guard._respond import send_problem
from bastion.security.guard.media_types import FORM, body_media_type
from bastion.security.guard.request_target import decoded

# An escape is a backslash preceded by an even number of backslashes.
_ESCAPE = rb"(?<!\\)(?:\\\\)*\\u"
_JSON_NUL = re.compile(_ESCAPE + rb"0000", re.IGNORECASE)
# A high surrogate not followed by a low one, or a low one not after a high one.
_LONE_SURROGATE = re.compile(
    _ESCAPE + rb"d[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})|"
    rb"(?<!\\ud[89ab][0-9a-f]{2})" + _ESCAPE + rb"d[c-f][0-9a-f]{2}",
    re.IGNORECASE,
)


def body_problem(body: bytes, media_type: bytes | None) -> InvalidRequest | None:
    """What is wrong with the text of a body, or None when it is clean."""
    if b"\x00" in body:
        return InvalidRequest("The request body contains a NUL byte.")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return InvalidRequest("The request body is not valid UTF-8.")
    if media_type == FORM:
        for pair in body.split(b"&"):
            name, _, value = pair.partition(b"=")
            if decoded(name.replace(b"+", b" ")) is None or (
                decoded(value.replace(b"+", b" ")) is None
            ):
                return InvalidRequest("The form is not valid UTF-8 or contains control characters.")
    elif _JSON_NUL.search(body):
        return InvalidRequest("The request body contains a NUL character.")
    elif _LONE_SURROGATE.search(body):
        return InvalidRequest("The request body contains an unpaired surrogate escape.")
    return None


class BodyText:
    """Refuses bodies that are not clean UTF-8 (400)."""

    def __init__(self, app: ASGIApp, *, problem_base: str) -> None:
        self.app = app
        self.problem_base = problem_base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the (already size-checked) body and check its bytes."""
        if scope["type"] != "http" or not has_body_method(scope["method"]):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return
        error = body_problem(body, body_media_type(scope)) if body else None
        if error is not None:
            await send_problem(scope, send, error, self.problem_base)
            return
        await self.app(scope, replay(body, receive), send)
