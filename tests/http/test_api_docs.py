"""docs/api.md matches the routes and the problem types the server has."""

from __future__ import annotations

import re
from pathlib import Path

from bastion.app.api import create_api
from bastion.core.errors import PROBLEM_TYPES
from bastion.core.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
_MENTION = re.compile(r"`(GET|HEAD|POST|PUT|PATCH|DELETE) (/[^`\s?]*)`")


def _operations() -> set[tuple[str, str]]:
    document = create_api(Settings()).openapi()
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def test_every_operation_is_in_the_api_guide() -> None:
    """Each method and path template of /openapi.json appears as `METHOD /path`."""
    text = DOC.read_text(encoding="utf-8")
    operations = _operations()
    assert len(operations) > 60
    assert sorted(op for op in operations if f"`{op[0]} {op[1]}`" not in text) == []


def test_the_api_guide_names_no_route_that_does_not_exist() -> None:
    """A `METHOD /path` in the guide is an operation of /openapi.json, with its own
    parameter names (``{reaction}``, not ``{emoji}``)."""
    mentioned = set(_MENTION.findall(DOC.read_text(encoding="utf-8")))
    assert sorted(mentioned - _operations()) == []


def test_every_problem_type_is_in_the_api_guide() -> None:
    """The problem-type table lists every type the server can answer with, and its status."""
    text = DOC.read_text(encoding="utf-8")
    missing = [
        (error.type, error.status)
        for error in PROBLEM_TYPES
        if f"| `{error.type}` | {error.status} |" not in text
    ]
    assert missing == []
