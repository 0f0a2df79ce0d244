"""Apps (tenants) and their OAuth clients."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.records import AppRecord, ClientRecord
from bastion.store.tables import apps, oauth_clients


async def insert_app(conn: AsyncConnection, *, app_id: str, name: str, now: datetime) -> AppRecord:
    """Create an app."""
    await conn.execute(apps.insert().values(id=app_id, name=name, created_at=now))
    return AppRecord(id=app_id, name=name, created_at=now)


def _client(row: Mapping[Any, Any]) -> ClientRecord:
    return ClientRecord(
        id=row["id"],
        app_id=row["app_id"],
        name=row["name"],
        secret_hash=row["secret_hash"],
        scopes=frozenset(row["scopes"].split()),
        created_at=row["created_at"],
        disabled=row["disabled"],
    )


async def insert_client(
    conn: AsyncConnection,
    *,
    app_id: str,
    client_id: str,
    name: str,
    secret_hash: str,
    scopes: frozenset[str],
    now: datetime,
) -> ClientRecord:
    """Register an OAuth client for an app."""
    values = {
        "id": client_id,
        "app_id": app_id,
        "name": name,
        "secret_hash": secret_hash,
        "scopes": " ".join(sorted(scopes)),
        "created_at": now,
        "disabled": False,
    }
    await conn.execute(oauth_clients.insert().values(**values))
    return _client(values)


async def get_client(conn: AsyncConnection, client_id: str) -> ClientRecord | None:
    """Return a client by its id; the id itself names the tenant it belongs to."""
    query = select(oauth_clients).where(oauth_clients.c.id == client_id)
    row = (await conn.execute(query)).mappings().first()
    return _client(row) if row else None
