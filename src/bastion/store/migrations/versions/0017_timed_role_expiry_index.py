"""timed role expiry index: the memberships whose ban or mute ends, found by time

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_TIMED = sa.text("role_expires_at IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_channel_members_role_expires_at",
        "channel_members",
        ["role_expires_at"],
        sqlite_where=_TIMED,
        postgresql_where=_TIMED,
    )


def downgrade() -> None:
    op.drop_index("ix_channel_members_role_expires_at", table_name="channel_members")
