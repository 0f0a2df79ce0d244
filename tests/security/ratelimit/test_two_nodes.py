"""Two server nodes sharing one Redis enforce one global quota."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Databases, make_settings, start_server
from tests.support.ratelimit import (
    SHARED_REDIS,
    fresh_ip,
    policy,
    ratelimit_settings,
    redis_answers,
)
from tests.support.server import ServerThread

pytestmark = pytest.mark.skipif(not redis_answers(), reason="no Redis at 127.0.0.1:6379")
QUOTA = 10


@pytest.fixture(scope="module")
def nodes(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServerThread]]:
    """Two nodes on one database and one Redis, with the same key prefix."""
    rl = ratelimit_settings(SHARED_REDIS, [policy("ip", "reads", "ip", f"{QUOTA}/minute")])
    url = databases.new()
    data = tmp_path_factory.mktemp("nodes")
    running = [start_server(make_settings(data, url, ratelimit=rl)) for _ in range(2)]
    yield running
    for node in running:
        node.stop()


async def test_one_quota_across_both_nodes(nodes: list[ServerThread]) -> None:
    ip = fresh_ip()
    codes = []
    async with httpx.AsyncClient(timeout=10) as http:
        for i in range(2 * QUOTA):
            node = nodes[i % 2]
            response = await http.get(f"{node.base_url}/healthz", headers={"X-Forwarded-For": ip})
            codes.append(response.status_code)
    assert codes.count(200) == QUOTA
    assert codes[:QUOTA] == [200] * QUOTA
    assert set(codes[QUOTA:]) == {429}
