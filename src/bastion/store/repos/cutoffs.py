"""Revoke-before cutoffs: per app (subject "") or per subject, only ever moved forward."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.repos._sql import insert_ignoring_duplicates
from bastion.store.tables import apps, token_cutoffs

WHOLE_APP = ""


async def raise_cutoff(
    conn: AsyncConnection, app_id: str, subject: str, issued_before: datetime, now: datetime
) -> datetime:
    """Set the cutoff to ``issued_before`` unless a later one exists; return the result."""
    await conn.execute(
        insert_ignoring_duplicates(conn, token_cutoffs).values(
            app_id=app_id, subject=subject, issued_before=issued_before, updated_at=now
        )
    )
    key = (token_cutoffs.c.app_id == app_id) & (token_cutoffs.c.subject == subject)
    await conn.execute(
        update(token_cutoffs)
        .where(key & (token_cutoffs.c.issued_before < issued_before))
        .values(issued_before=issued_before, updated_at=now)
    )
    found = (await conn.execute(select(token_cutoffs.c.issued_before).where(key))).scalar_one()
    value: datetime = found
    return value


async def app_exists(conn: AsyncConnection, app_id: str) -> bool:
    """Tell whether the app exists (the CLI checks before writing)."""
    found = await conn.execute(select(apps.c.id).where(apps.c.id == app_id))
    return found.first() is not None
