"""Two nodes appending to one audit log at once still write one valid chain.

Two real servers share one database (and data folder, as nodes share their
configuration); concurrent writes through both are each recorded once, in one chain
that ``bastion audit verify`` accepts, and the chain's head row names its last record.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from bastion.app import secret_hasher
from bastion.chat.apps import create_app
from bastion.cli import cli
from bastion.core.clock import SystemClock
from tests.conftest import Databases, make_settings, start_server
from tests.support.operators import execute_sql
from tests.support.server import ServerThread

WRITES_PER_NODE = 30
IN_FLIGHT_PER_NODE = 6


def _bearer(server: ServerThread, app_id: str, client_id: str) -> dict[str, str]:
    # Minted directly: a token request would add a token.issue record of its own.
    token = server.services.tokens.issue(
        app_id=app_id,
        client_id=client_id,
        subject=client_id,
        scopes=frozenset({"users:write"}),
        ttl=600,
    ).token
    return {"Authorization": f"Bearer {token}"}


async def _create_users(base_url: str, headers: dict[str, str], prefix: str) -> None:
    """``WRITES_PER_NODE`` user creations, ``IN_FLIGHT_PER_NODE`` at a time."""
    gate = asyncio.Semaphore(IN_FLIGHT_PER_NODE)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def one(i: int) -> None:
            async with gate:
                body = {"external_id": f"{prefix}{i}", "display_name": f"{prefix}{i}"}
                response = await client.post("/v1/users", json=body, headers=headers)
            assert response.status_code == 201, response.text

        await asyncio.gather(*(one(i) for i in range(WRITES_PER_NODE)))


async def _write_through_both(nodes: list[ServerThread], headers: dict[str, str]) -> None:
    await asyncio.gather(
        *(_create_users(node.base_url, headers, f"n{i}-") for i, node in enumerate(nodes))
    )


def test_two_nodes_appending_at_once_keep_one_chain(databases: Databases, tmp_path: Path) -> None:
    """Every concurrent write from either node has its record; the chain verifies intact."""
    url = databases.new()
    first = start_server(make_settings(tmp_path, url))
    # One deployment behind one public address, so either node accepts the other's tokens.
    public = {"public_url": first.settings.public_url}
    second = start_server(make_settings(tmp_path, url, server=public))
    try:
        tenant = first.run(
            create_app(first.services.db, secret_hasher(first.settings), SystemClock(), name="t")
        )
        headers = _bearer(first, tenant.app.id, tenant.client.id)
        asyncio.run(_write_through_both([first, second], headers))
    finally:
        first.stop()
        second.stop()
    (log,) = execute_sql(url, "SELECT seq, hash, action FROM audit_log ORDER BY seq")
    assert [row.action for row in log] == ["data.change"] * (2 * WRITES_PER_NODE)
    assert [row.seq for row in log] == list(range(1, 2 * WRITES_PER_NODE + 1))
    (head,) = execute_sql(url, "SELECT id, seq, hash FROM audit_chain_head")
    assert [tuple(row) for row in head] == [(1, log[-1].seq, log[-1].hash)]
    result = CliRunner().invoke(
        cli,
        ["audit", "verify", "--json", "--data-dir", str(tmp_path)],
        env={"BASTION_DATABASE__URL": url},
    )
    report = json.loads(result.stdout)
    assert report["intact"], report
    assert report["records"] == 2 * WRITES_PER_NODE
