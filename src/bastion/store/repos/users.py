"""Users of an app."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.records import UserRecord
from bastion.store.repos._sql import insert_row
from bastion.store.sealing import Cell, Owner, open_value, seal
from bastion.store.tables import users

_NAME = "display_name"


def _cell(app_id: str, user_id: str) -> Cell:
    return Cell(app_id, "users", _NAME, user_id)


async def _sealed_name(conn: AsyncConnection, app_id: str, user_id: str, name: str) -> str:
    """A display name is personal data: sealed under the user's own data key."""
    return await seal(conn, _cell(app_id, user_id), Owner("user", user_id), name)


async def _user(conn: AsyncConnection, row: Any) -> UserRecord:
    values = dict(row)
    values[_NAME] = await open_value(conn, _cell(values["app_id"], values["id"]), values[_NAME])
    return UserRecord(**values)


async def insert_user(
    conn: AsyncConnection,
    app_id: str,
    *,
    user_id: str,
    external_id: str,
    display_name: str,
    now: datetime,
) -> UserRecord:
    """Create a user; an external id already taken raises ``DuplicateKeyError``."""
    record = UserRecord(
        id=user_id,
        app_id=app_id,
        external_id=external_id,
        display_name=display_name,
        active=True,
        created_at=now,
        updated_at=now,
        version=1,
    )
    values = _values(record)
    values[_NAME] = await _sealed_name(conn, app_id, user_id, display_name)
    await insert_row(conn, users, values)
    return record


def _values(record: UserRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


async def get_user(
    conn: AsyncConnection, app_id: str, user_id: str, *, lock: bool = False
) -> UserRecord | None:
    """Return the app's user, or None; ``lock`` holds its row until the transaction ends
    (``SELECT … FOR UPDATE``: a version check then holds until the change commits)."""
    query = select(users).where(users.c.app_id == app_id, users.c.id == user_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    return await _user(conn, row) if row else None


async def get_user_by_external_id(
    conn: AsyncConnection, app_id: str, external_id: str
) -> UserRecord | None:
    """Return the app's user with this external id, or None."""
    query = select(users).where(users.c.app_id == app_id, users.c.external_id == external_id)
    row = (await conn.execute(query)).mappings().first()
    return await _user(conn, row) if row else None


async def list_users(
    conn: AsyncConnection,
    app_id: str,
    *,
    after: str | None,
    before: str | None = None,
    limit: int,
    active: bool | None,
) -> list[UserRecord]:
    """Return up to ``limit`` users in id order: the first ones after the id ``after``, or
    the last ones before the id ``before``."""
    query = select(users).where(users.c.app_id == app_id)
    if after is not None:
        query = query.where(users.c.id > after)
    if before is not None:
        query = query.where(users.c.id < before)
    if active is not None:
        query = query.where(users.c.active == active)
    order = users.c.id.desc() if before is not None else users.c.id.asc()
    rows = (await conn.execute(query.order_by(order).limit(limit))).mappings().all()
    found = [await _user(conn, row) for row in rows]
    return found[::-1] if before is not None else found


async def update_user(
    conn: AsyncConnection, app_id: str, user_id: str, *, changes: dict[str, Any], now: datetime
) -> None:
    """Apply changes to a user and bump its version."""
    if _NAME in changes:
        changes = {**changes, _NAME: await _sealed_name(conn, app_id, user_id, changes[_NAME])}
    await conn.execute(
        update(users)
        .where(users.c.app_id == app_id, users.c.id == user_id)
        .values(**changes, updated_at=now, version=users.c.version + 1)
    )


async def active_user_ids(conn: AsyncConnection, app_id: str, ids: Collection[str]) -> set[str]:
    """Return which of ``ids`` are active users of the app."""
    if not ids:
        return set()
    query = select(users.c.id).where(
        users.c.app_id == app_id, users.c.id.in_(list(ids)), users.c.active.is_(True)
    )
    return set((await conn.execute(query)).scalars())
