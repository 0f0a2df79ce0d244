"""A failed command never half-writes: every write route, with the audit log unwritable.

Generated from the authorization matrix's ``RULES``: each POST, PUT, PATCH and DELETE
route is called by a caller it allows, on an object it may change, while inserts into
the audit log fail. The answer must be 503 problem+json, and every table of the
database must hold exactly the rows it held before the call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bastion.http.permissions import declared
from bastion.store import tables
from tests.conftest import Databases, make_settings, start_server
from tests.http.test_authz_matrix import (
    RULES,
    Caller,
    Case,
    Spec,
    World,
    build_world,
    route_level,
)
from tests.support.audit import block_audit_inserts, unblock_audit_inserts
from tests.support.operators import execute_sql
from tests.support.problem_checks import problem
from tests.support.raw import settle_search_index
from tests.support.server import ServerThread

WRITES = sorted(route for route in RULES if route[0] != "GET")


@pytest.fixture(scope="module")
def closed_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server of its own, so the snapshots see only its tables; no periodic writer
    (checkpoints, rate limits) runs while a snapshot is taken."""
    settings = make_settings(
        tmp_path_factory.mktemp("fail-closed"),
        databases.new(),
        ratelimit={"enabled": False},
        audit={"checkpoint_interval_seconds": 86_400},
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture(scope="module")
async def world(closed_server: ServerThread) -> AsyncIterator[World]:
    """The matrix's tenants, peers and callers, on this server."""
    async with httpx.AsyncClient(base_url=closed_server.base_url, timeout=20) as http:
        yield await build_world(closed_server, http)


def snapshot(server: ServerThread) -> dict[str, list[str]]:
    """Every row of every table, in a stable order."""

    async def read() -> dict[str, list[str]]:
        found = {}
        async with server.services.db.read() as conn:
            for table in tables.metadata.sorted_tables:
                rows = (await conn.execute(select(table))).all()
                found[table.name] = sorted(repr(tuple(row)) for row in rows)
        return found

    settle_search_index(server)
    return server.run(read())


def _allowed(world: World, spec: Spec, permission: str) -> tuple[Caller, str]:
    """A caller and ownership case for which the route succeeds."""
    for case in spec.cases:
        for caller in world.callers.values():
            if caller.name == "anonymous" or route_level(caller, permission) is not None:
                continue
            if spec.rule(caller.name, case) < 300:
                return caller, case
    raise AssertionError(f"nobody may call {spec}")


async def _refused_unchanged(world: World, method: str, call: Case, caller: Caller) -> None:
    """The call answers 503 problem+json and leaves every table as it was."""
    url = world.server.settings.database_url
    before = snapshot(world.server)
    execute_sql(url, *block_audit_inserts(url))
    try:
        response = await world.http.request(
            method, call.url, json=call.body, headers=caller.headers
        )
    finally:
        execute_sql(url, *unblock_audit_inserts(url))
    problem(response, 503, "unavailable")
    after = snapshot(world.server)
    changed = {name: (before[name], rows) for name, rows in after.items() if rows != before[name]}
    assert changed == {}, (method, call.url)


def test_every_write_route_is_covered() -> None:
    """The routes below are every write route of the matrix (which covers every route)."""
    assert len(WRITES) > 30
    assert {method for method, _ in WRITES} == {"POST", "PUT", "PATCH", "DELETE"}


@pytest.mark.parametrize("route", WRITES, ids=lambda r: f"{r[0]} {r[1]}")
async def test_a_write_fails_closed_and_changes_nothing(
    world: World, route: tuple[str, str]
) -> None:
    """Audit log unwritable: 503 problem+json, and no table changed."""
    permissions = {(d.method, d.path): d.permission for d in declared(world.server.app.api)}
    permission = permissions[route]
    assert permission is not None
    spec = RULES[route]
    caller, case = _allowed(world, spec, permission)
    call: Case = await spec.build(world, caller, case)
    await _refused_unchanged(world, route[0], call, caller)


def _group_with(*user_ids: str) -> dict[str, Any]:
    return {"type": "group", "name": "team", "members": list(user_ids)}


async def test_creating_a_channel_with_members_changes_nothing(world: World) -> None:
    """A channel and its members are one command: neither is stored without its record."""
    member = world.callers["member"]
    body = _group_with(world.peer.id, world.third.id)
    await _refused_unchanged(world, "POST", Case("/v1/channels", body), member)
    direct = {"type": "direct", "members": [world.peer.id]}
    await _refused_unchanged(world, "POST", Case("/v1/channels", direct), member)
