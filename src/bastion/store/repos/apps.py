"""Apps (tenants) and their OAuth clients."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from bastion.store.records import AppRecord, ClientRecord
from bastion.store.tables import apps, oauth_clients, users

APP_DISABLED_AT = apps.c.disabled_at.label("app_disabled_at")
"""Select it with a client row (joined on its app) so the record knows its app's state."""


async def insert_app(conn: AsyncConnection, *, app_id: str, name: str, now: datetime) -> AppRecord:
    """Create an app."""
    await conn.execute(apps.insert().values(id=app_id, name=name, created_at=now))
    return AppRecord(id=app_id, name=name, created_at=now)


def _app(row: Mapping[Any, Any]) -> AppRecord:
    return AppRecord(
        id=row["id"], name=row["name"], created_at=row["created_at"], disabled_at=row["disabled_at"]
    )


async def get_app(conn: AsyncConnection, app_id: str) -> AppRecord | None:
    """The app with this id, or None."""
    row = (await conn.execute(select(apps).where(apps.c.id == app_id))).mappings().first()
    return _app(row) if row else None


async def list_apps(conn: AsyncConnection) -> list[AppRecord]:
    """Every app, oldest first (ids sort by creation time)."""
    rows = (await conn.execute(select(apps).order_by(apps.c.id))).mappings().all()
    return [_app(row) for row in rows]


async def update_app(conn: AsyncConnection, app_id: str, **values: Any) -> None:
    """Change the app's name or ``disabled_at``."""
    await conn.execute(update(apps).where(apps.c.id == app_id).values(values))


async def count_of_app(conn: AsyncConnection, app_id: str) -> tuple[int, int]:
    """How many users and OAuth clients the app has."""
    user_count = select(func.count()).select_from(users).where(users.c.app_id == app_id)
    client_count = (
        select(func.count()).select_from(oauth_clients).where(oauth_clients.c.app_id == app_id)
    )
    found_users = (await conn.execute(user_count)).scalar_one()
    found_clients = (await conn.execute(client_count)).scalar_one()
    return int(found_users), int(found_clients)


def with_app_state(query: Select[Any]) -> Select[Any]:
    """``query`` over ``oauth_clients`` joined to each client's app, with its state."""
    return query.add_columns(APP_DISABLED_AT).join(apps, apps.c.id == oauth_clients.c.app_id)


def _client(row: Mapping[Any, Any]) -> ClientRecord:
    return ClientRecord(
        id=row["id"],
        app_id=row["app_id"],
        name=row["name"],
        secret_hash=row["secret_hash"],
        scopes=frozenset(row["scopes"].split()),
        created_at=row["created_at"],
        disabled=row["disabled"],
        app_disabled=row.get("app_disabled_at") is not None,
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
    query = with_app_state(select(oauth_clients)).where(oauth_clients.c.id == client_id)
    row = (await conn.execute(query)).mappings().first()
    return _client(row) if row else None
