"""pending search terms: a message's blind-index terms, kept on its row until indexed

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_PENDING = sa.text("pending_terms IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("pending_terms", sa.Text(), nullable=True))
    op.create_index(
        "ix_messages_pending_terms",
        "messages",
        ["channel_id"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_pending_terms", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("pending_terms")
