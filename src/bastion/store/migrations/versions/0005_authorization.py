"""authorization: app roles, per-app policies, ACL entries, timed member roles

Revision ID: 0005
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0009"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "app_roles",
        sa.Column("app_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("roles", sa.String(length=1000), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_app_roles_app_id_apps"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_app_roles_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("app_id", "user_id", name=op.f("pk_app_roles")),
    )
    op.create_table(
        "app_policies",
        sa.Column("app_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("permissions", sa.Text(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_app_policies_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("app_id", "role", name=op.f("pk_app_policies")),
    )
    op.create_table(
        "acl_entries",
        sa.Column("app_id", sa.String(length=40), nullable=False),
        sa.Column("resource", sa.String(length=60), nullable=False),
        sa.Column("subject", sa.String(length=50), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("effect", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_acl_entries_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "app_id", "resource", "subject", "level", "effect", name=op.f("pk_acl_entries")
        ),
    )
    with op.batch_alter_table("channel_members") as batch:
        batch.add_column(sa.Column("role_expires_at", _TS, nullable=True))
        batch.add_column(sa.Column("role_after", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("channel_members") as batch:
        batch.drop_column("role_after")
        batch.drop_column("role_expires_at")
    op.drop_table("acl_entries")
    op.drop_table("app_policies")
    op.drop_table("app_roles")
