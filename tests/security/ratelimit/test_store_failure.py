"""The shared store stopped and restarted mid-test: each policy's fail mode is observed.

The test runs its own redis-server on a free port (the shared one is never stopped).
Policies: ``auth`` falls back to local counting, ``reads`` fails open, ``writes`` fails
closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from bastion.observe.events import MemorySink
from tests.conftest import Databases, make_settings, start_server
from tests.support.problem_checks import problem
from tests.support.ratelimit import OwnRedis, fresh_ip, own_redis, policy, ratelimit_settings
from tests.support.server import ServerThread

POLICIES = [
    policy("auth", "auth", "ip", "3/minute", on_store_failure="local"),
    policy("reads", "reads", "ip", "3/minute", on_store_failure="open"),
    policy("writes", "writes", "ip", "3/minute", on_store_failure="closed"),
]


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnRedis]:
    """A private Redis this module may stop and start."""
    yield from own_redis(tmp_path_factory.mktemp("redis"))


@pytest.fixture(scope="module")
def node(
    redis: OwnRedis, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server counting in the private Redis."""
    rl = ratelimit_settings(redis.url, POLICIES, store_retry_seconds=0.5)
    settings = make_settings(tmp_path_factory.mktemp("sf"), databases.new(), ratelimit=rl)
    running = start_server(settings)
    yield running
    running.stop()


async def _codes(http: httpx.AsyncClient, method: str, path: str, ip: str, n: int) -> list[int]:
    codes = []
    for _ in range(n):
        response = await http.request(method, path, headers={"X-Forwarded-For": ip})
        codes.append(response.status_code)
    return codes


async def test_fail_modes_while_redis_is_down_and_after_it_returns(
    node: ServerThread, redis: OwnRedis
) -> None:
    sink = MemorySink()
    node.services.events.add_sink(sink)
    async with httpx.AsyncClient(base_url=node.base_url, timeout=10) as http:
        ip = fresh_ip()
        assert await _codes(http, "GET", "/healthz", ip, 4) == [200, 200, 200, 429]

        redis.stop()
        # reads fail open: no limit at all while the store is down
        assert await _codes(http, "GET", "/healthz", fresh_ip(), 6) == [200] * 6
        # auth falls back to local counting: the quota still holds on this node
        auth = await _codes(http, "POST", "/oauth/revoke", fresh_ip(), 4)
        assert auth[:3] != [429] * 3
        assert auth[3] == 429
        # writes fail closed: 503 with Retry-After
        closed = await http.delete("/v1/messages/msg_x", headers={"X-Forwarded-For": fresh_ip()})
        problem(closed, 503, "temporary-reduced-capacity")
        assert int(closed.headers["retry-after"]) >= 1
        failures = sink.of("ratelimit.store_failure")
        assert len(failures) == 1
        assert failures[0].outcome == "failure"

        redis.start()
        await asyncio.sleep(0.6)  # past store_retry_seconds
        ip = fresh_ip()
        assert await _codes(http, "GET", "/healthz", ip, 4) == [200, 200, 200, 429]
        assert "ratelimit" in {k.lower() for k in (await http.get("/healthz")).headers}
        assert len(sink.of("ratelimit.store_recovered")) == 1
