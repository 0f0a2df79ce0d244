"""Per-app and per-user overrides through the admin API, enforced at once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from bastion.observe.events import MemorySink
from tests.conftest import Databases, make_settings, start_server
from tests.support.problem_checks import problem
from tests.support.ratelimit import policy, ratelimit_settings
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User, new_tenant

POLICIES = [
    policy("ip", "all", "ip", "1000/minute"),
    policy("reads", "reads", "user", "100/minute", on_store_failure="open"),
]


@pytest.fixture(scope="module")
def rl_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server at scale 1 with a generous per-user reads policy."""
    rl = ratelimit_settings("memory://", POLICIES, new_account_seconds=0)
    settings = make_settings(tmp_path_factory.mktemp("ov"), databases.new(), ratelimit=rl)
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture
async def client(rl_server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the server."""
    async with httpx.AsyncClient(base_url=rl_server.base_url, timeout=10) as http:
        yield http


@pytest.fixture
def app(rl_server: ServerThread, client: httpx.AsyncClient) -> Tenant:
    """A fresh app."""
    return new_tenant(rl_server, client)


async def _reads(client: httpx.AsyncClient, user: User, n: int) -> list[int]:
    return [(await client.get("/v1/users/me", headers=user.headers)).status_code for _ in range(n)]


async def test_a_user_override_applies_at_once_to_that_user_only(
    client: httpx.AsyncClient, app: Tenant, rl_server: ServerThread
) -> None:
    sink = MemorySink()
    rl_server.services.events.add_sink(sink)
    alice, bob = await app.user("alice"), await app.user("bob")
    put = await client.put(
        f"/v1/users/{alice.id}/rate-limits/reads",
        json={"quotas": ["2/minute"]},
        headers=await app.backend_headers(),
    )
    assert put.status_code == 200, put.text
    assert put.json() == {"policy": "reads", "user_id": alice.id, "quotas": ["2/minute"]}
    assert await _reads(client, alice, 3) == [200, 200, 429]
    assert await _reads(client, bob, 3) == [200, 200, 200]
    limited = await client.get("/v1/users/me", headers=alice.headers)
    assert '"reads-60s";q=2;w=60' in limited.headers["ratelimit-policy"]
    change = sink.of("admin.change")[-1]
    assert change.resource == "ratelimit:reads"
    assert change.details == {"user_id": alice.id, "quotas": "2/minute"}


async def test_app_override_user_override_and_delete(
    client: httpx.AsyncClient, app: Tenant
) -> None:
    backend = await app.backend_headers()
    carol, dave = await app.user("carol"), await app.user("dave")
    other = await new_tenant(app.server, client, name="other").user("erin")
    assert (
        await client.put("/v1/rate-limits/reads", json={"quotas": ["3/minute"]}, headers=backend)
    ).status_code == 200
    assert (
        await client.put(
            f"/v1/users/{dave.id}/rate-limits/reads", json={"quotas": ["5/minute"]}, headers=backend
        )
    ).status_code == 200
    assert await _reads(client, carol, 4) == [200, 200, 200, 429]
    assert await _reads(client, dave, 6) == [200] * 5 + [429]  # the user's override wins
    assert await _reads(client, other, 4) == [200] * 4  # another app is untouched
    listed = (await client.get("/v1/rate-limits", headers=backend)).json()
    assert {o["user_id"] for o in listed["overrides"]} == {None, dave.id}
    assert {p["name"] for p in listed["policies"]} == {"ip", "reads", "ws-frames"}
    assert (await client.delete("/v1/rate-limits/reads", headers=backend)).status_code == 204
    assert (await client.delete("/v1/rate-limits/reads", headers=backend)).status_code == 404
    fresh = await app.user("frank")
    assert await _reads(client, fresh, 4) == [200] * 4  # back to the configured 100/minute


async def test_overrides_are_checked(client: httpx.AsyncClient, app: Tenant) -> None:
    backend = await app.backend_headers()
    user = await app.user("gina")
    cases = [
        ("/v1/rate-limits/ip", {"quotas": ["5/second"]}, 403),
        ("/v1/rate-limits/nope", {"quotas": ["5/second"]}, 404),
        ("/v1/rate-limits/reads", {"quotas": ["100000/second"]}, 422),
        ("/v1/rate-limits/reads", {"quotas": ["lots"]}, 422),
        ("/v1/rate-limits/reads", {"quotas": []}, 422),
        ("/v1/rate-limits/reads", {"quotas": ["5/second"], "extra": 1}, 422),
        (
            "/v1/users/usr_01ZZZZZZZZZZZZZZZZZZZZZZZZ/rate-limits/reads",
            {"quotas": ["5/second"]},
            404,
        ),
    ]
    for path, body, status in cases:
        problem(await client.put(path, json=body, headers=backend), status)
    refused = await client.put(
        "/v1/rate-limits/reads", json={"quotas": ["5/second"]}, headers=user.headers
    )
    problem(refused, 403)
