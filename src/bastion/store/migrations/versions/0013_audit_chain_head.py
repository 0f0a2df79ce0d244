"""audit chain head: where the chain ends, in one row

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_GENESIS = "0" * 64

# The head starts where the log already ends (an empty log: 0 and the genesis hash).
_START = (
    "UPDATE audit_chain_head SET "
    "seq = (SELECT max(seq) FROM audit_log), "
    "hash = (SELECT hash FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)) "
    "WHERE EXISTS (SELECT 1 FROM audit_log)"
)
# SQLite has one writer, whose appends are plain inserts: the head follows each of them.
# PostgreSQL appenders move the head in the statement that inserts (store.repos.audit).
_SQLITE_FOLLOW = (
    "CREATE TRIGGER audit_chain_head_follows AFTER INSERT ON audit_log "
    "BEGIN UPDATE audit_chain_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1; END"
)


def upgrade() -> None:
    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", _SEQ, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": _GENESIS}])
    op.execute(_START)
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_SQLITE_FOLLOW)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_chain_head_follows")
    op.drop_table("audit_chain_head")
