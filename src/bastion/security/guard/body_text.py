"""Request bodies must be valid UTF-8 without NUL, raw or escaped.

NUL truncates strings in C libraries and PostgreSQL refuses it in text columns, so it
is stopped here for every body: a raw ``0x00`` byte, ``\\u0000`` in JSON, ``%00`` in
form data.
"""

from __future__ import annotations

import re

from bastion.core.asgi import ASGIApp, Receive, Scope, Send, replay
from bastion.core.errors import InvalidRequest
from bastion.security.guard._body import has_body_method, read_body
from bastion.security.guard._respond import send_problem
from bastion.security.guard.media_types import FORM, body_media_type
from bastion.security.guard.request_target import decoded

# A run of backslashes, then u and four hex digits: an escape when the run is odd.
_ESCAPES = re.compile(rb"(\\+)u([0-9a-fA-F]{4})")
_HIGH = range(0xD800, 0xDC00)
_LOW = range(0xDC00, 0xE000)
# Cheap candidate search (each pattern starts with a literal, so the engine skips ahead):
# a \u0000, a high surrogate escape not followed by a low one, a low one not after a high.
_SUSPECT = re.compile(
    rb"\\u0000"
    rb"|\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|\\u[dD][c-fC-F][0-9a-fA-F]{2}(?<!\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})"
)


def escape_problem(body: bytes) -> str | None:
    """A ``\\u0000`` or an unpaired surrogate escape in JSON text, if there is one.

    A regular expression looks for suspects first; only then is every escape walked, so
    clean bodies (emoji pairs included) cost one scan at C speed.
    """
    if b"\\u" not in body or _SUSPECT.search(body) is None:
        return None
    pending: int | None = None  # where the low half of a surrogate pair must start
    for match in _ESCAPES.finditer(body):
        if len(match.group(1)) % 2 == 0:
            continue  # an escaped backslash followed by a literal "u"
        code, start = int(match.group(2), 16), match.end(1) - 1
        if pending is not None:
            if start != pending or code not in _LOW:
                return "an unpaired surrogate escape"
            pending = None
        elif code == 0:
            return "a NUL character"
        elif code in _HIGH:
            pending = match.end()
        elif code in _LOW:
            return "an unpaired surrogate escape"
    return None if pending is None else "an unpaired surrogate escape"


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
    else:
        problem = escape_problem(body)
        if problem is not None:
            return InvalidRequest(f"The request body contains {problem}.")
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
