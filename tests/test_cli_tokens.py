"""``bastion tokens revoke-before`` against the running server's database."""

from __future__ import annotations

import asyncio
import json
import os
import time

import httpx
import pytest
from typer.testing import CliRunner

from bastion.cli import cli
from tests.http.test_revocations import next_second, status_of
from tests.support.server import ServerThread
from tests.support.tenants import Tenant


@pytest.fixture
def env(server: ServerThread, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The CLI's environment: the session server's database, nothing from the shell."""
    for name in list(os.environ):
        if name.startswith("BASTION_"):
            monkeypatch.delenv(name)
    return {
        "BASTION_DATABASE__URL": server.settings.database_url,
        "BASTION_SERVER__DATA_DIR": str(server.settings.server.data_dir),
    }


async def test_the_cli_cutoff_reaches_the_running_server_within_seconds(
    http: httpx.AsyncClient, tenant: Tenant, env: dict[str, str]
) -> None:
    """A cutoff written by the CLI is applied by the running server within the refresh time."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    await next_second()
    args = ["tokens", "revoke-before", "--app", tenant.app_id, "--user", alice.id]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["user_id"] == alice.id
    deadline = time.monotonic() + 15  # a 2 s refresh, on a busy CI machine
    while await status_of(http, alice.token) == 200:
        assert time.monotonic() < deadline, "the server never applied the cutoff"
        await asyncio.sleep(0.2)
    assert await status_of(http, bob.token) == 200


@pytest.mark.parametrize(
    "extra",
    [
        ["--user", "usr_01JD0000000000000000000000"],
        ["--user", "not-an-id"],
        ["--before", "2999-01-01T00:00:00Z"],
        ["--before", "2020-01-01T00:00:00"],
    ],
)
async def test_the_cli_refuses_bad_input(
    tenant: Tenant, env: dict[str, str], extra: list[str]
) -> None:
    """Unknown users, malformed ids, future or zone-less times: exit 2, nothing written."""
    args = ["tokens", "revoke-before", "--app", tenant.app_id, *extra]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    assert result.exit_code == 2, result.output


async def test_the_cli_refuses_an_unknown_app(env: dict[str, str]) -> None:
    """An app id that does not exist is refused."""
    args = ["tokens", "revoke-before", "--app", "app_01JD0000000000000000000000"]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    assert result.exit_code == 2
