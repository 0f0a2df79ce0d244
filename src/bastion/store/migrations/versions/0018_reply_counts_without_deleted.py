"""reply counts without deleted replies: a thread root counts only its live replies

Deleting a reply now lowers its root's reply_count; this recounts the roots that
were counted before, so existing threads agree with new ones.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_RECOUNT = sa.text(
    "UPDATE messages SET reply_count = ("
    " SELECT count(*) FROM messages AS reply"
    " WHERE reply.parent_id = messages.id AND reply.deleted_at IS NULL"
    ") WHERE reply_count > 0"
)


def upgrade() -> None:
    op.execute(_RECOUNT)


def downgrade() -> None:
    # Nothing to undo: the code before 0018 only ever adds to a count, and a count of
    # live replies is as good a start for it as any.
    return
