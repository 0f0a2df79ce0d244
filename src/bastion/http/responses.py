"""JSON responses with an explicit charset, and the ETag/Location conventions."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response

# Built once: json.dumps with any option set builds a new encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class JSONResponse(Response):
    """``application/json; charset=utf-8``, serialised compactly."""

    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        """Encode ``content`` as UTF-8 JSON."""
        return _ENCODER.encode(content).encode("utf-8")


def json_response(
    content: Any, *, status: int = 200, version: int | None = None, location: str | None = None
) -> JSONResponse:
    """A JSON response, with an ETag when the object is versioned."""
    headers = {}
    if version is not None:
        headers["ETag"] = f'"{version}"'
    if location is not None:
        headers["Location"] = location
    return JSONResponse(content, status_code=status, headers=headers)
