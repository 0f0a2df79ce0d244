"""Stored responses of requests sent with an ``Idempotency-Key``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.repos._sql import insert_row
from bastion.store.tables import idempotency_keys


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What a keyed request answered the first time."""

    request_hash: str
    status: int
    body: str
    headers: str


async def get(
    conn: AsyncConnection, app_id: str, principal: str, key: str
) -> StoredResponse | None:
    """Return the stored answer for this caller's key, or None."""
    query = select(
        idempotency_keys.c.request_hash,
        idempotency_keys.c.status,
        idempotency_keys.c.body,
        idempotency_keys.c.headers,
    ).where(
        idempotency_keys.c.app_id == app_id,
        idempotency_keys.c.principal == principal,
        idempotency_keys.c.key == key,
    )
    row = (await conn.execute(query)).first()
    return StoredResponse(*row) if row else None


async def put(
    conn: AsyncConnection,
    app_id: str,
    principal: str,
    key: str,
    response: StoredResponse,
    now: datetime,
) -> None:
    """Store an answer; a key stored meanwhile raises ``DuplicateKeyError``."""
    values = {
        "app_id": app_id,
        "principal": principal,
        "key": key,
        "request_hash": response.request_hash,
        "status": response.status,
        "body": response.body,
        "headers": response.headers,
        "created_at": now,
    }
    await insert_row(conn, idempotency_keys, values)
