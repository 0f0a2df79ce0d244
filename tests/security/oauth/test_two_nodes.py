"""Two servers on one database: a revocation made on one is enforced by the other."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Databases, make_settings, start_server
from tests.support.oauth import obtain_code, redeem, register_client, token_call, user_with_password
from tests.support.server import ServerThread
from tests.support.tenants import new_tenant

REFRESH = 0.2


@pytest.fixture(scope="module")
def two_nodes(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerThread, ServerThread]]:
    """Two servers sharing the database and the key folder, re-reading revocations often."""
    data_dir = tmp_path_factory.mktemp("cluster")
    url = databases.new()
    fast = {
        "resource_server": {"revocation_refresh_seconds": REFRESH},
        # One issuer for the cluster, as behind a load balancer.
        "auth": {"issuer": "http://bastion.test"},
    }
    first = start_server(make_settings(data_dir, url, **fast))
    second = start_server(make_settings(data_dir, url, **fast))
    yield first, second
    first.stop()
    second.stop()


async def _me(base_url: str, token: str) -> int:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        response = await http.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        return response.status_code


async def test_a_revocation_on_one_node_holds_on_the_other(
    two_nodes: tuple[ServerThread, ServerThread],
) -> None:
    """Revoke the refresh token on node A: node B refuses its access token shortly after."""
    node_a, node_b = two_nodes
    async with httpx.AsyncClient(base_url=node_a.base_url, timeout=15) as http:
        tenant = new_tenant(node_a, http)
        client = await register_client(tenant)
        await user_with_password(tenant, "roamer")
        code, verifier, _ = await obtain_code(node_a.base_url, client, "roamer")
        tokens = (await redeem(http, client, code, verifier)).json()
        assert await _me(node_b.base_url, tokens["access_token"]) == 200
        await token_call(http, client, {"token": tokens["refresh_token"]}, "/oauth/revoke")
    assert await _me(node_a.base_url, tokens["access_token"]) == 401
    for _ in range(50):
        if await _me(node_b.base_url, tokens["access_token"]) == 401:
            break
        await asyncio.sleep(REFRESH)
    assert await _me(node_b.base_url, tokens["access_token"]) == 401
