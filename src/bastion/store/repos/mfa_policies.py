"""Per-app MFA policies: who must use a second factor at login."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.records import MfaPolicyRecord
from bastion.store.repos._sql import insert_row
from bastion.store.tables import app_mfa_policies


async def get_policy(conn: AsyncConnection, app_id: str) -> MfaPolicyRecord | None:
    """The app's own MFA policy, or None when it never set one."""
    query = select(app_mfa_policies).where(app_mfa_policies.c.app_id == app_id)
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    return MfaPolicyRecord(
        app_id=row["app_id"],
        everyone=row["everyone"],
        roles=frozenset(row["roles"].split()),
        updated_at=row["updated_at"],
    )


async def save_policy(
    conn: AsyncConnection, app_id: str, *, everyone: bool, roles: frozenset[str], now: datetime
) -> None:
    """Replace the app's MFA policy."""
    await conn.execute(delete(app_mfa_policies).where(app_mfa_policies.c.app_id == app_id))
    values = {"everyone": everyone, "roles": " ".join(sorted(roles)), "updated_at": now}
    await insert_row(conn, app_mfa_policies, {"app_id": app_id, **values})
