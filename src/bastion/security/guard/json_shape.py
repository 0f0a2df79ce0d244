"""JSON nesting-depth and element-count limits, checked in linear time before parsing.

A megabyte of ``[[[[…`` would make a recursive parser recurse a million times, and a
megabyte of ``[0,0,0,…`` builds half a million objects. Both are measured here with
C-speed byte operations: strings are blanked by one regular expression, then brackets
and commas are counted; the exact depth is only computed when the number of opening
brackets alone exceeds the limit.
"""

from __future__ import annotations

import re
from itertools import accumulate

from bastion.core.asgi import ASGIApp, Receive, Scope, Send, replay
from bastion.core.errors import InvalidRequest
from bastion.security.guard._body import has_body_method, read_body
from bastion.security.guard._respond import send_problem
from bastion.security.guard.media_types import JSON_TYPES, body_media_type

_STRING = re.compile(rb'"(?:[^"\\]+|\\.)*"', re.DOTALL)
# Opening brackets become 2, closing ones 0, everything else 1: a running sum minus
# the position is the depth.
_STEPS = bytes(2 if b in b"[{" else 0 if b in b"]}" else 1 for b in range(256))


def max_depth(stripped: bytes) -> int:
    """The deepest nesting of brackets in JSON text whose strings were blanked."""
    brackets = re.sub(rb"[^\[\]{}]", b"", stripped)
    if not brackets:
        return 0
    steps = brackets.translate(_STEPS)
    return max(total - i for i, total in enumerate(accumulate(steps), start=1))


def shape_problem(body: bytes, *, max_depth_allowed: int, max_elements: int) -> str | None:
    """Why a JSON body is too deep or too large, or None when it is within the limits."""
    stripped = _STRING.sub(b'""', body)
    opened = stripped.count(b"[") + stripped.count(b"{")
    # Every value after the first is preceded by a comma or an opening bracket.
    elements = stripped.count(b",") + opened
    if elements > max_elements:
        return f"The JSON body has more than {max_elements} elements."
    if opened > max_depth_allowed and max_depth(stripped) > max_depth_allowed:
        return f"The JSON body nests deeper than {max_depth_allowed} levels."
    return None


class JsonShape:
    """Refuses JSON bodies nested too deeply or holding too many values (400)."""

    def __init__(
        self, app: ASGIApp, *, max_depth: int, max_elements: int, problem_base: str
    ) -> None:
        self.app = app
        self.max_depth = max_depth
        self.max_elements = max_elements
        self.problem_base = problem_base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Measure a JSON body before the application parses it."""
        if scope["type"] != "http" or not has_body_method(scope["method"]):
            await self.app(scope, receive, send)
            return
        if body_media_type(scope) not in JSON_TYPES:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return
        reason = shape_problem(
            body, max_depth_allowed=self.max_depth, max_elements=self.max_elements
        )
        if reason is not None:
            await send_problem(scope, send, InvalidRequest(reason), self.problem_base)
            return
        await self.app(scope, replay(body, receive), send)
