"""Links between users and their (issuer, subject) at trusted external OpenID Providers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.repos._sql import insert_row
from bastion.store.tables import external_identities


async def linked_user(conn: AsyncConnection, app_id: str, issuer: str, subject: str) -> str | None:
    """The id of the user linked to (issuer, subject) in the app, or None."""
    query = select(external_identities.c.user_id).where(
        (external_identities.c.issuer == issuer)
        & (external_identities.c.subject == subject)
        & (external_identities.c.app_id == app_id)
    )
    found = (await conn.execute(query)).scalar_one_or_none()
    return found if isinstance(found, str) else None


async def link(
    conn: AsyncConnection, app_id: str, issuer: str, subject: str, user_id: str, now: datetime
) -> None:
    """Link (issuer, subject) to a user; a second link of the same pair is a duplicate."""
    await insert_row(
        conn,
        external_identities,
        {
            "issuer": issuer,
            "subject": subject,
            "app_id": app_id,
            "user_id": user_id,
            "created_at": now,
        },
    )
