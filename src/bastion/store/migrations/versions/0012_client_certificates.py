"""client certificate names (RFC 8705 tls_client_auth)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_client_profiles") as batch:
        batch.add_column(sa.Column("tls_auth_field", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("tls_auth_value", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oauth_client_profiles") as batch:
        batch.drop_column("tls_auth_value")
        batch.drop_column("tls_auth_field")
