"""per-app MFA policies

Revision ID: 0010
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_mfa_policies",
        sa.Column("app_id", sa.String(length=40), nullable=False),
        sa.Column("everyone", sa.Boolean(), nullable=False),
        sa.Column("roles", sa.String(length=1000), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
            name=op.f("fk_app_mfa_policies_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_app_mfa_policies")),
    )


def downgrade() -> None:
    op.drop_table("app_mfa_policies")
