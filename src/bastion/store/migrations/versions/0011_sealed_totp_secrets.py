"""TOTP secrets sealed at rest

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28

Seals every TOTP secret still stored in the clear under its user's data key, with the
cipher of the server running the migration (``bastion migrate`` or ``serve``). Until a
node runs this code, reads accept both forms: a plaintext value is used as it is.
Downgrading opens the secrets again, for the older code that reads them in the clear.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bastion.store.migrate import async_connection, run_async
from bastion.store.repos import cross_tenant

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A sealed secret is longer than 64 characters; SQLite ignores VARCHAR lengths.
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "login_credentials",
            "totp_secret",
            type_=sa.Text(),
            existing_type=sa.String(length=64),
            existing_nullable=True,
        )
    run_async(cross_tenant.seal_plaintext_totp_secrets(async_connection()))


def downgrade() -> None:
    run_async(cross_tenant.open_sealed_totp_secrets(async_connection()))
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "login_credentials",
            "totp_secret",
            type_=sa.String(length=64),
            existing_type=sa.Text(),
            existing_nullable=True,
        )
