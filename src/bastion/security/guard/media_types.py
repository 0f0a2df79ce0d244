"""The media types each route accepts for a request body (415 for anything else).

An allow-list by path: the OAuth token endpoint takes form data (RFC 6749 §4.1.3),
everything else JSON. A ``PATCH`` is a JSON Merge Patch, so it may also say so with
``application/merge-patch+json`` (RFC 7396 §4). A ``charset`` parameter, if given, must
be UTF-8.
"""

from __future__ import annotations

from bastion.core.asgi import ASGIApp, Receive, Scope, Send, header
from bastion.core.errors import UnsupportedMediaType
from bastion.security.guard._body import has_body_method
from bastion.security.guard._respond import send_problem

FORM = b"application/x-www-form-urlencoded"
JSON = b"application/json"
MERGE_PATCH = b"application/merge-patch+json"
JSON_TYPES = frozenset({JSON, MERGE_PATCH})
"""Bodies parsed as JSON (and so measured by the JSON shape guard)."""

ROUTE_MEDIA_TYPES: tuple[tuple[str, frozenset[bytes]], ...] = (
    ("/oauth/", frozenset({FORM})),
    ("/", frozenset({JSON})),
)
"""(path prefix, accepted media types): the first matching prefix decides."""


def accepted(path: str, method: str = "POST") -> frozenset[bytes]:
    """The media types a body sent to ``path`` with ``method`` may have."""
    types = next(types for prefix, types in ROUTE_MEDIA_TYPES if path.startswith(prefix))
    if method == "PATCH" and JSON in types:
        return types | {MERGE_PATCH}
    return types


def parse_content_type(raw: bytes) -> tuple[bytes, bytes | None]:
    """The media type (lower case) and the charset parameter, if any."""
    media, *params = raw.split(b";")
    charset = None
    for param in params:
        name, _, value = param.strip().partition(b"=")
        if name.strip().lower() == b"charset":
            charset = value.strip().strip(b'"').lower()
    return media.strip().lower(), charset


def body_media_type(scope: Scope) -> bytes | None:
    """The media type of a request that carries a body (None without a body)."""
    declared = header(scope, b"content-length")
    if declared in (None, b"0") and header(scope, b"transfer-encoding") is None:
        return None
    media, _ = parse_content_type(header(scope, b"content-type") or b"")
    return media


class MediaTypes:
    """Refuses a body whose ``Content-Type`` the route does not accept (415)."""

    def __init__(self, app: ASGIApp, *, problem_base: str) -> None:
        self.app = app
        self.problem_base = problem_base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared media type and charset before the body is read."""
        if scope["type"] == "http" and has_body_method(scope["method"]):
            problem = self._problem(scope)
            if problem is not None:
                await send_problem(scope, send, problem, self.problem_base)
                return
        await self.app(scope, receive, send)

    def _problem(self, scope: Scope) -> UnsupportedMediaType | None:
        if body_media_type(scope) is None:
            return None
        media, charset = parse_content_type(header(scope, b"content-type") or b"")
        allowed = accepted(scope["path"], scope["method"])
        if media not in allowed:
            names = " or ".join(sorted(t.decode() for t in allowed))
            return UnsupportedMediaType(f"Send the body as {names}.")
        if charset is not None and charset not in (b"utf-8", b"utf8"):
            return UnsupportedMediaType("Send the body in UTF-8.")
        return None
