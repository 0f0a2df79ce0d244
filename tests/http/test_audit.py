"""The auditor API: scope-gated, tenant-scoped, filtered, paged and exported as JSON lines."""

from __future__ import annotations

import json
from typing import Any

import httpx

from bastion.security import scopes
from tests.support.operators import operator_headers
from tests.support.tenants import Tenant


async def _make_changes(tenant: Tenant, count: int) -> None:
    for i in range(count):
        await tenant.user(f"user{i}")


async def test_only_audit_read_tokens_get_in(tenant: Tenant, http: httpx.AsyncClient) -> None:
    """Anonymous is 401; backend, user and metrics-only tokens are 403."""
    alice = await tenant.user("alice")
    assert (await http.get("/v1/audit/events")).status_code == 401
    scraper = await operator_headers(tenant, scopes.METRICS_READ)
    for headers in (await tenant.backend_headers(), alice.headers, scraper):
        response = await http.get("/v1/audit/events", headers=headers)
        assert response.status_code == 403, response.text
        export = await http.get("/v1/audit/events/export", headers=headers)
        assert export.status_code == 403


async def test_pages_filters_and_tenant_scope(
    tenant: Tenant, other_tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """Pages follow next_cursor to the end; nothing from another app ever shows."""
    await _make_changes(tenant, 5)
    await _make_changes(other_tenant, 2)
    auditor = await operator_headers(tenant, scopes.AUDIT_READ)
    seen: list[dict[str, Any]] = []
    params: dict[str, str] = {"action": "data.change", "limit": "2"}
    while True:
        response = await http.get("/v1/audit/events", params=params, headers=auditor)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["data"]) <= 2
        seen += body["data"]
        if body["next_cursor"] is None:
            break
        params["after"] = body["next_cursor"]
    assert len(seen) >= 5
    assert {event["app_id"] for event in seen} == {tenant.app_id}
    assert [e["seq"] for e in seen] == sorted(e["seq"] for e in seen)
    failures = await http.get("/v1/audit/events", params={"outcome": "failure"}, headers=auditor)
    assert failures.json()["data"] == []


async def test_time_window_and_bad_filters(tenant: Tenant, http: httpx.AsyncClient) -> None:
    """since/until take RFC 3339 times; malformed filters and cursors are 422."""
    await _make_changes(tenant, 1)
    auditor = await operator_headers(tenant, scopes.AUDIT_READ)
    future = await http.get(
        "/v1/audit/events", params={"since": "2999-01-01T00:00:00Z"}, headers=auditor
    )
    assert future.json()["data"] == []
    past = await http.get(
        "/v1/audit/events", params={"until": "2999-01-01T00:00:00Z"}, headers=auditor
    )
    assert len(past.json()["data"]) >= 1
    for params in ({"since": "yesterday"}, {"after": "abc"}, {"action": "DROP TABLE"}):
        response = await http.get("/v1/audit/events", params=params, headers=auditor)
        assert response.status_code == 422, params


async def test_export_is_json_lines_and_reads_are_audited(
    tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """The export streams one JSON object per line; the export itself is recorded."""
    await _make_changes(tenant, 3)
    auditor = await operator_headers(tenant, scopes.AUDIT_READ)
    response = await http.get(
        "/v1/audit/events/export", params={"action": "data.change"}, headers=auditor
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) >= 3
    assert all(line["action"] == "data.change" for line in lines)
    assert all(len(line["hash"]) == 64 for line in lines)
    reads = await http.get("/v1/audit/events", params={"action": "audit.export"}, headers=auditor)
    assert len(reads.json()["data"]) == 1
