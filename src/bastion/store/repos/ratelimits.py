"""Rate-limit overrides: new quotas for one policy, per app (subject "*") or per user."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.repos._sql import insert_row
from bastion.store.tables import rate_limit_overrides

SEPARATOR = ","


async def put_override(
    conn: AsyncConnection,
    app_id: str,
    subject: str,
    policy: str,
    quotas: tuple[str, ...],
    now: datetime,
) -> None:
    """Create or replace the override of ``policy`` for ``subject`` in the app."""
    await delete_override(conn, app_id, subject, policy)
    await insert_row(
        conn,
        rate_limit_overrides,
        {
            "app_id": app_id,
            "subject": subject,
            "policy": policy,
            "quotas": SEPARATOR.join(quotas),
            "updated_at": now,
        },
    )


async def delete_override(conn: AsyncConnection, app_id: str, subject: str, policy: str) -> bool:
    """Remove an override; tell whether there was one."""
    t = rate_limit_overrides
    result = await conn.execute(
        delete(t).where((t.c.app_id == app_id) & (t.c.subject == subject) & (t.c.policy == policy))
    )
    return bool(result.rowcount)
