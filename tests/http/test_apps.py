"""``GET /v1/app``: a backend reads its own app (tenant), nothing about any other."""

from __future__ import annotations

import httpx

from bastion.core.ids import Kind, is_id
from tests.support.problem_checks import problem
from tests.support.tenants import Tenant


async def test_a_backend_reads_its_own_app(tenant: Tenant, other_tenant: Tenant) -> None:
    """The backend's token names its app: id, name, status and creation time, nothing else."""
    response = await tenant.http.get("/v1/app", headers=await tenant.backend_headers())
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "name", "status", "created_at"}
    assert (body["id"], body["name"], body["status"]) == (tenant.app_id, "test app", "active")
    assert body["created_at"].endswith("Z")
    other = await other_tenant.http.get("/v1/app", headers=await other_tenant.backend_headers())
    assert other.json()["id"] == other_tenant.app_id != tenant.app_id
    assert is_id(Kind.APP, other.json()["id"])


async def test_a_user_token_may_not_read_the_app(tenant: Tenant) -> None:
    """A chat user's token lacks the clients:read scope app:read needs: 403."""
    alice = await tenant.user("alice")
    response = await tenant.http.get("/v1/app", headers=alice.headers)
    problem(response, 403)


async def test_no_token_is_401(http: httpx.AsyncClient) -> None:
    """Without a token the app is not shown."""
    response = await http.get("/v1/app")
    problem(response, 401)
