"""app status: an app (tenant) can be disabled, and enabled again

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("apps", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # A plain ALTER TABLE (SQLite 3.35+): batch mode would copy and drop the apps table,
    # and with foreign keys on, dropping it deletes every row that belongs to an app.
    op.drop_column("apps", "disabled_at")
