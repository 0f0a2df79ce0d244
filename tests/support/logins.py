"""Login rows written the way a server before sealed TOTP secrets wrote them."""

from __future__ import annotations

from datetime import UTC, datetime

from bastion.store.db import Database
from bastion.store.tables import apps, login_credentials, users

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
"""A TOTP secret (base32) as an older server stored it: in the clear."""


async def legacy_login(db: Database, app_id: str, user_id: str) -> None:
    """An app, a user and a login whose TOTP secret is stored in the clear (as before 0011)."""
    now = datetime.now(UTC)
    async with db.write() as conn:
        await conn.execute(apps.insert().values(id=app_id, name="legacy", created_at=now))
        await conn.execute(
            users.insert().values(
                id=user_id,
                app_id=app_id,
                external_id="legacy",
                display_name="Legacy",
                active=True,
                created_at=now,
                updated_at=now,
                version=1,
            )
        )
        await conn.execute(
            login_credentials.insert().values(
                user_id=user_id,
                app_id=app_id,
                username="legacy",
                password_hash="x",
                totp_secret=SECRET,
                totp_enabled=True,
                totp_last_step=0,
                mfa_required=False,
                created_at=now,
                updated_at=now,
            )
        )
