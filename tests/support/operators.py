"""Auditor and scraper tokens, and raw SQL on the server's database (as an attacker has)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import text

from bastion.app import secret_hasher
from bastion.core.clock import SystemClock
from bastion.security.audit.operators import create_operator_client
from bastion.store.db import create_engine
from tests.support.tenants import Tenant


async def operator_headers(tenant: Tenant, *granted: str) -> dict[str, str]:
    """A bearer header for a new client of ``tenant`` holding ``granted`` scopes."""
    server = tenant.server
    client = server.run(
        create_operator_client(
            server.services.db,
            secret_hasher(server.settings),
            SystemClock(),
            app_id=tenant.app_id,
            granted=frozenset(granted),
        )
    )
    response = await tenant.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, client.secret),
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _execute(url: str, statements: list[str], params: dict[str, Any]) -> list[Any]:
    engine = create_engine(url)
    results: list[Any] = []
    try:
        async with engine.begin() as conn:
            for statement in statements:
                result = await conn.execute(text(statement), params)
                results.append(result.all() if result.returns_rows else None)
    finally:
        await engine.dispose()
    return results


def execute_sql(url: str, *statements: str, **params: Any) -> list[Any]:
    """Run statements in one transaction on a connection of its own (not the server's)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _execute(url, list(statements), params)).result()


def drop_append_only_guards(url: str) -> None:
    """Remove the triggers that refuse UPDATE and DELETE, as a database superuser could."""
    if url.startswith("postgresql"):
        execute_sql(
            url,
            "DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log",
            "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
        )
    else:
        execute_sql(
            url,
            "DROP TRIGGER IF EXISTS audit_log_no_update",
            "DROP TRIGGER IF EXISTS audit_log_no_delete",
        )
