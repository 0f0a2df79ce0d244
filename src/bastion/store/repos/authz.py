"""App role assignments, per-app policy overrides and ACL entries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.db import Database
from bastion.store.repos._sql import insert_row
from bastion.store.tables import acl_entries, app_policies, app_roles

AclRow = tuple[str, str, str]
"""``(subject, level, effect)`` of one ACL entry."""


async def get_user_roles(conn: AsyncConnection, app_id: str, user_id: str) -> frozenset[str] | None:
    """The roles assigned to a user, or None when none were ever assigned."""
    query = select(app_roles.c.roles).where(
        app_roles.c.app_id == app_id, app_roles.c.user_id == user_id
    )
    value = (await conn.execute(query)).scalar_one_or_none()
    return None if value is None else frozenset(value.split())


async def set_user_roles(
    conn: AsyncConnection, app_id: str, user_id: str, roles: frozenset[str], now: datetime
) -> None:
    """Replace a user's roles."""
    await conn.execute(
        delete(app_roles).where(app_roles.c.app_id == app_id, app_roles.c.user_id == user_id)
    )
    values = {"roles": " ".join(sorted(roles)), "updated_at": now}
    await insert_row(conn, app_roles, {"app_id": app_id, "user_id": user_id, **values})


async def list_role_holders(
    conn: AsyncConnection, app_id: str, *, after: str | None, limit: int
) -> list[tuple[str, frozenset[str]]]:
    """Users with explicitly assigned roles, by user id."""
    query = select(app_roles.c.user_id, app_roles.c.roles).where(app_roles.c.app_id == app_id)
    if after is not None:
        query = query.where(app_roles.c.user_id > after)
    query = query.order_by(app_roles.c.user_id).limit(limit)
    return [(row[0], frozenset(row[1].split())) for row in await conn.execute(query)]


async def get_policy_overrides(conn: AsyncConnection, app_id: str) -> dict[str, frozenset[str]]:
    """This app's role definitions that replace the defaults."""
    query = select(app_policies.c.role, app_policies.c.permissions).where(
        app_policies.c.app_id == app_id
    )
    return {row[0]: frozenset(row[1].split()) for row in await conn.execute(query)}


async def set_policy_role(
    conn: AsyncConnection, app_id: str, role: str, permissions: frozenset[str], now: datetime
) -> None:
    """Define (or redefine) a role for one app."""
    await delete_policy_role(conn, app_id, role)
    values = {"permissions": " ".join(sorted(permissions)), "updated_at": now}
    await insert_row(conn, app_policies, {"app_id": app_id, "role": role, **values})


async def delete_policy_role(conn: AsyncConnection, app_id: str, role: str) -> bool:
    """Drop an app's definition of a role (a built-in role returns to its default)."""
    result = await conn.execute(
        delete(app_policies).where(app_policies.c.app_id == app_id, app_policies.c.role == role)
    )
    return bool(result.rowcount)


async def get_acl(conn: AsyncConnection, app_id: str, resource: str) -> list[AclRow]:
    """The ACL entries of one resource, in a stable order."""
    query = (
        select(acl_entries.c.subject, acl_entries.c.level, acl_entries.c.effect)
        .where(acl_entries.c.app_id == app_id, acl_entries.c.resource == resource)
        .order_by(acl_entries.c.subject, acl_entries.c.level, acl_entries.c.effect)
    )
    return [(row[0], row[1], row[2]) for row in await conn.execute(query)]


async def get_acls(
    conn: AsyncConnection, app_id: str, resources: list[str]
) -> dict[str, list[AclRow]]:
    """The ACL entries of several resources (only those that have any)."""
    found: dict[str, list[AclRow]] = {}
    if not resources:
        return found
    query = select(
        acl_entries.c.resource, acl_entries.c.subject, acl_entries.c.level, acl_entries.c.effect
    ).where(acl_entries.c.app_id == app_id, acl_entries.c.resource.in_(resources))
    for row in await conn.execute(query):
        found.setdefault(row[0], []).append((row[1], row[2], row[3]))
    return found


async def replace_acl(
    conn: AsyncConnection,
    app_id: str,
    resource: str,
    entries: list[AclRow],
    *,
    by: str,
    now: datetime,
) -> None:
    """Replace every ACL entry of one resource."""
    await conn.execute(
        delete(acl_entries).where(
            acl_entries.c.app_id == app_id, acl_entries.c.resource == resource
        )
    )
    for subject, level, effect in sorted(set(entries)):
        await insert_row(
            conn,
            acl_entries,
            {
                "app_id": app_id,
                "resource": resource,
                "subject": subject,
                "level": level,
                "effect": effect,
                "created_by": by,
                "created_at": now,
            },
        )


class AuthzReader:
    """What the authorizer reads from the database (its ``AuthzStore``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def user_roles(self, app_id: str, user_id: str) -> frozenset[str] | None:
        """The user's assigned roles, or None for the default."""
        async with self._db.read() as conn:
            return await get_user_roles(conn, app_id, user_id)

    async def policy_overrides(self, app_id: str) -> dict[str, frozenset[str]]:
        """The app's role definitions that replace the defaults."""
        async with self._db.read() as conn:
            return await get_policy_overrides(conn, app_id)
