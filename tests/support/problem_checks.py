"""Assertions on RFC 9457 problem responses, shared by the REST resource tests."""

from __future__ import annotations

from typing import Any

import httpx


def problem(response: httpx.Response, status: int, type_: str | None = None) -> dict[str, Any]:
    """Assert ``response`` is a problem document with ``status`` (and type slug); return it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["instance"] == response.headers["x-request-id"]
    if type_ is not None:
        assert body["type"] == f"/problems/{type_}"
    return body


def error_fields(response: httpx.Response, status: int = 422) -> set[str]:
    """Assert a validation problem and return the set of fields it lists."""
    body = problem(response, status)
    assert body["type"] in ("/problems/validation-failed", "/problems/limit-exceeded")
    assert body["errors"], body
    return {item["field"] for item in body["errors"]}


def without_instance(body: dict[str, Any]) -> dict[str, Any]:
    """A problem body without its per-request ``instance``."""
    return {key: value for key, value in body.items() if key != "instance"}


def same_not_found(*responses: httpx.Response) -> None:
    """Assert every response is a 404 with the same body apart from ``instance``."""
    bodies = [without_instance(problem(r, 404, "not-found")) for r in responses]
    assert all(body == bodies[0] for body in bodies), bodies
    first = responses[0].headers
    for response in responses[1:]:
        assert response.headers.get("www-authenticate") == first.get("www-authenticate")
