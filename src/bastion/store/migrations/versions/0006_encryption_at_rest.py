"""encryption at rest: data keys, blind index, key jobs

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("app_id", sa.String(length=40), nullable=False),
        sa.Column("owner_kind", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=8), nullable=False),
        sa.Column("kek_version", sa.Integer(), nullable=False),
        sa.Column("wrapped", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_data_keys_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_keys")),
    )
    op.create_index(
        "ix_data_keys_app_id_owner",
        "data_keys",
        ["app_id", "owner_kind", "owner_id", "purpose"],
        unique=False,
    )
    op.create_index("ix_data_keys_kek_version", "data_keys", ["kek_version"], unique=False)
    op.create_table(
        "message_terms",
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("term", sa.String(length=32), nullable=False),
        sa.Column("app_id", sa.String(length=40), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_terms_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", "term", name=op.f("pk_message_terms")),
    )
    op.create_index(
        "ix_message_terms_channel_id_term", "message_terms", ["channel_id", "term"], unique=False
    )
    op.create_table(
        "key_jobs",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("position", sa.String(length=64), nullable=False),
        sa.Column("boundary", sa.String(length=64), nullable=False),
        sa.Column("done", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_key_jobs")),
    )
    # A sealed display name is longer than the plaintext; SQLite ignores VARCHAR lengths
    # (and rebuilding its users table would cascade), so only PostgreSQL changes type.
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("users", "display_name", type_=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "users", "display_name", type_=sa.String(length=1000), existing_nullable=False
        )
    op.drop_table("key_jobs")
    op.drop_index("ix_message_terms_channel_id_term", table_name="message_terms")
    op.drop_table("message_terms")
    op.drop_index("ix_data_keys_kek_version", table_name="data_keys")
    op.drop_index("ix_data_keys_app_id_owner", table_name="data_keys")
    op.drop_table("data_keys")
