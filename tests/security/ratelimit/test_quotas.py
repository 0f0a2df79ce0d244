"""Each window and each scope enforced through the real server, on memory and on Redis.

One server per store. The policies below give every scope its own quota on four
endpoint groups, one group per window, so a test can exhaust exactly one policy:
ip 3, user 4, app 5, client 6 requests per second (reads), per minute (search), per
hour (channel creation) and per day (invites).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from bastion.observe.events import MemorySink
from bastion.security.ratelimit.overrides import Override
from tests.conftest import Databases, make_settings, start_server
from tests.support.problem_checks import problem
from tests.support.ratelimit import (
    SHARED_REDIS,
    fresh_ip,
    policy,
    ratelimit_settings,
    redis_answers,
)
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User, new_tenant

WINDOWS = {
    "second": ("reads", 1),
    "minute": ("search", 60),
    "hour": ("channel-create", 3600),
    "day": ("invites", 86400),
}
QUOTA = {"ip": 3, "user": 4, "app": 5, "client": 6}


def _policies() -> list[dict[str, Any]]:
    return [
        policy(f"{window}-{scope}", group, scope, f"{QUOTA[scope]}/{window}")
        for window, (group, _) in WINDOWS.items()
        for scope in QUOTA
    ]


STORES = [
    "memory",
    pytest.param(
        "redis", marks=pytest.mark.skipif(not redis_answers(), reason="no Redis at 127.0.0.1:6379")
    ),
]


@pytest.fixture(scope="module", params=STORES)
def limited_server(
    request: pytest.FixtureRequest, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server with the policies above on the selected store."""
    url = "memory://" if request.param == "memory" else SHARED_REDIS
    settings = make_settings(
        tmp_path_factory.mktemp("rl"),
        databases.new(),
        ratelimit=ratelimit_settings(url, _policies(), new_account_seconds=0),
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture
async def client(limited_server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the limited server."""
    async with httpx.AsyncClient(base_url=limited_server.base_url, timeout=10) as http:
        yield http


@pytest.fixture
def app(limited_server: ServerThread, client: httpx.AsyncClient) -> Tenant:
    """A fresh app on the limited server."""
    return new_tenant(limited_server, client)


def _request(
    client: httpx.AsyncClient, window: str
) -> Callable[[dict[str, str]], Awaitable[httpx.Response]]:
    """A request of the endpoint group that ``window``'s policies apply to."""
    group = WINDOWS[window][0]

    async def send(headers: dict[str, str]) -> httpx.Response:
        if group == "reads":
            return await client.get("/v1/users/me", headers=headers)
        if group == "search":
            return await client.get("/v1/search", headers=headers)
        if group == "channel-create":
            return await client.post("/v1/channels", json={}, headers=headers)
        return await client.post("/v1/channels/ch_x/members", json={}, headers=headers)

    return send


def _items(value: str) -> dict[str, dict[str, int]]:
    """Parse a RateLimit or RateLimit-Policy field into {name: {param: value}}."""
    items = {}
    for item in value.split(", "):
        name, *params = item.split(";")
        items[name.strip('"')] = {k: int(v) for k, v in (p.split("=") for p in params)}
    return items


def _assert_refused(response: httpx.Response, name: str, window: int) -> None:
    body = problem(response, 429, "quota-exceeded")
    assert body["violated-policies"] == [name]
    retry = int(response.headers["retry-after"])
    assert 1 <= retry <= window
    usage = _items(response.headers["ratelimit"])
    assert usage[f"{name}-{window}s"]["r"] == 0


@pytest.mark.parametrize("window", list(WINDOWS))
async def test_ip_scope(client: httpx.AsyncClient, window: str) -> None:
    """Anonymous requests count against their network; the headers are exact."""
    send, (_, seconds), ip = _request(client, window), WINDOWS[window], fresh_ip()
    first = await send({"X-Forwarded-For": ip})
    assert first.status_code != 429
    expected_policy = ", ".join(
        f'"{window}-{scope}-{seconds}s";q={QUOTA[scope]};w={seconds}' for scope in QUOTA
    )
    assert first.headers["ratelimit-policy"] == expected_policy
    assert first.headers["ratelimit"] == ", ".join(
        f'"{window}-{scope}-{seconds}s";r={QUOTA[scope] - 1};t={seconds}' for scope in QUOTA
    )
    for _ in range(QUOTA["ip"] - 1):
        assert (await send({"X-Forwarded-For": ip})).status_code != 429
    _assert_refused(await send({"X-Forwarded-For": ip}), f"{window}-ip", seconds)
    assert (await send({"X-Forwarded-For": fresh_ip()})).status_code != 429


@pytest.mark.parametrize("window", list(WINDOWS))
async def test_user_scope(client: httpx.AsyncClient, app: Tenant, window: str) -> None:
    """A user's requests count against the user, whatever address they come from."""
    send, seconds = _request(client, window), WINDOWS[window][1]
    alice, bob = await app.user("alice"), await app.user("bob")
    for _ in range(QUOTA["user"]):
        assert (await send({**alice.headers, "X-Forwarded-For": fresh_ip()})).status_code != 429
    _assert_refused(
        await send({**alice.headers, "X-Forwarded-For": fresh_ip()}), f"{window}-user", seconds
    )
    assert (await send({**bob.headers, "X-Forwarded-For": fresh_ip()})).status_code != 429


async def _users(app: Tenant, count: int) -> list[User]:
    return [await app.user(f"u{i}") for i in range(count)]


@pytest.mark.parametrize("window", list(WINDOWS))
async def test_app_scope(
    client: httpx.AsyncClient, app: Tenant, limited_server: ServerThread, window: str
) -> None:
    """All of an app's users together stop at the app's quota; other apps are unaffected."""
    send, seconds = _request(client, window), WINDOWS[window][1]
    users = await _users(app, QUOTA["app"] + 1)
    for user in users[:-1]:
        assert (await send({**user.headers, "X-Forwarded-For": fresh_ip()})).status_code != 429
    _assert_refused(
        await send({**users[-1].headers, "X-Forwarded-For": fresh_ip()}), f"{window}-app", seconds
    )
    other = await new_tenant(limited_server, client).user("carol")
    assert (await send({**other.headers, "X-Forwarded-For": fresh_ip()})).status_code != 429


@pytest.mark.parametrize("window", list(WINDOWS))
async def test_client_scope(
    client: httpx.AsyncClient, app: Tenant, limited_server: ServerThread, window: str
) -> None:
    """With the app's own quota raised by an override, the OAuth client's quota holds."""
    send, seconds = _request(client, window), WINDOWS[window][1]
    overrides = limited_server.services.ratelimit.throttle.overrides
    overrides.replace([Override(app.app_id, "*", f"{window}-app", (f"100/{window}",))])
    users = await _users(app, QUOTA["client"] + 1)
    for user in users[:-1]:
        assert (await send({**user.headers, "X-Forwarded-For": fresh_ip()})).status_code != 429
    _assert_refused(
        await send({**users[-1].headers, "X-Forwarded-For": fresh_ip()}),
        f"{window}-client",
        seconds,
    )


async def test_retry_after_is_honoured(
    client: httpx.AsyncClient, limited_server: ServerThread
) -> None:
    """A request sent after Retry-After seconds succeeds; the block was reported as an event."""
    sink = MemorySink()
    limited_server.services.events.add_sink(sink)
    ip = fresh_ip()
    for _ in range(QUOTA["ip"]):
        assert (await client.get("/healthz", headers={"X-Forwarded-For": ip})).status_code == 200
    refused = await client.get("/healthz", headers={"X-Forwarded-For": ip})
    assert refused.status_code == 429
    retry = int(refused.headers["retry-after"])
    assert retry == 1
    await asyncio.sleep(retry + 0.05)
    again = await client.get("/healthz", headers={"X-Forwarded-For": ip})
    assert again.status_code == 200
    blocks = [e for e in sink.of("ratelimit.block") if e.origin.ip == ip]
    assert blocks
    assert blocks[0].details["policy"] == "second-ip"
    assert math.isclose(float(blocks[0].details["retry_after"] or 0), 1)
