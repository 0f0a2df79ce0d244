"""Helpers for the message, reaction and read-receipt tests: problems, roles, URLs."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from tests.support.tenants import Tenant, User

PROBLEM_JSON = "application/problem+json"


def assert_problem(
    response: httpx.Response, status: int, type_: str | None = None, field: str | None = None
) -> dict[str, Any]:
    """Check an RFC 9457 problem answer (and, optionally, its type and a failing field)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if type_ is not None:
        assert body["type"] == f"/problems/{type_}", body
    if field is not None:
        assert field in [error["field"] for error in body["errors"]], body
    return body


def without_instance(problem: dict[str, Any]) -> dict[str, Any]:
    """A problem body minus its per-request ``instance``, for 'identical to missing' checks."""
    return {key: value for key, value in problem.items() if key != "instance"}


def reaction_url(message_id: str, emoji: str) -> str:
    """The reaction sub-resource, with the emoji percent-encoded as a path segment."""
    return f"/v1/messages/{message_id}/reactions/{quote(emoji, safe='')}"


async def set_role(tenant: Tenant, owner: User, channel_id: str, user: User, role: str) -> None:
    """Give a member another role in a channel (as its owner)."""
    response = await tenant.http.patch(
        f"/v1/channels/{channel_id}/members/{user.id}", json={"role": role}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == role


async def archive(tenant: Tenant, owner: User, channel_id: str) -> None:
    """Archive a channel (as its owner)."""
    response = await tenant.http.patch(
        f"/v1/channels/{channel_id}", json={"archived": True}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["archived"] is True


async def list_messages(
    tenant: Tenant, user: User, channel_id: str, **params: str | int
) -> dict[str, Any]:
    """GET a page of a channel's messages (200 expected)."""
    response = await tenant.http.get(
        f"/v1/channels/{channel_id}/messages", params=params, headers=user.headers
    )
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page
