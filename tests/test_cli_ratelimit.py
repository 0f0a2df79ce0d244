"""``bastion ratelimit``: operator overrides reach the running server within the refresh."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from typer.testing import CliRunner

from bastion.cli import cli
from tests.conftest import Databases, make_settings, start_server
from tests.support.ratelimit import policy, ratelimit_settings
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, new_tenant


@pytest.fixture(scope="module")
def rl_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server at scale 1 that rereads overrides twice a second."""
    rl = ratelimit_settings(
        "memory://",
        [policy("ip", "all", "ip", "1000/minute"), policy("reads", "reads", "user", "100/minute")],
        override_refresh_seconds=0.5,
    )
    settings = make_settings(tmp_path_factory.mktemp("cli-rl"), databases.new(), ratelimit=rl)
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture
def env(rl_server: ServerThread, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The CLI's environment: the server's database, nothing from the shell."""
    for name in list(os.environ):
        if name.startswith("BASTION_"):
            monkeypatch.delenv(name)
    return {
        "BASTION_DATABASE__URL": rl_server.settings.database_url,
        "BASTION_SERVER__DATA_DIR": str(rl_server.settings.server.data_dir),
    }


@pytest.fixture
async def app(rl_server: ServerThread) -> AsyncIterator[Tenant]:
    """A fresh app on the server."""
    async with httpx.AsyncClient(base_url=rl_server.base_url, timeout=10) as http:
        yield new_tenant(rl_server, http)


async def _invoke(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    return result.exit_code, result.output


async def test_an_operator_override_of_an_ip_policy_is_applied_then_cleared(
    app: Tenant, env: dict[str, str]
) -> None:
    user = await app.user("alice")
    code, output = await _invoke(["ratelimit", "set", "ip", "3/minute", "--app", app.app_id], env)
    assert code == 0, output
    assert json.loads(output)["quotas"] == ["3/minute"]
    deadline = time.monotonic() + 5
    while True:
        codes = [
            (await app.http.get("/v1/users/me", headers=user.headers)).status_code for _ in range(4)
        ]
        if 429 in codes:
            break
        assert time.monotonic() < deadline, "the server never applied the override"
        await asyncio.sleep(0.3)
    code, output = await _invoke(["ratelimit", "clear", "ip", "--app", app.app_id], env)
    assert code == 0, output
    await asyncio.sleep(1.0)
    listed = await app.http.get("/v1/rate-limits", headers=await app.backend_headers())
    assert listed.json()["overrides"] == []


@pytest.mark.parametrize(
    "args",
    [
        ["set", "nope", "3/minute"],
        ["set", "reads", "lots"],
        ["set", "reads", "3/minute", "--user", "usr_01JD0000000000000000000000"],
        ["clear", "reads"],
    ],
)
async def test_the_cli_refuses_bad_input(app: Tenant, env: dict[str, str], args: list[str]) -> None:
    code, output = await _invoke(["ratelimit", *args, "--app", app.app_id], env)
    assert code == 2, output


async def test_the_cli_refuses_bad_ids(env: dict[str, str]) -> None:
    code, _ = await _invoke(["ratelimit", "set", "reads", "3/minute", "--app", "not-an-app"], env)
    assert code == 2
    code, _ = await _invoke(
        ["ratelimit", "set", "reads", "3/minute", "--app", "app_01JD0000000000000000000000"], env
    )
    assert code == 2
