"""API tokens get scopes (read, write, money; tokens made before keep all three) and an
optional expiry.

Revision ID: 0011_token_scopes
Revises: 0010_audit
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

import outcomes.db

revision = "0011_token_scopes"
down_revision = "0010_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "scopes", sa.String(length=40), server_default="read write money", nullable=False
            )
        )
        batch_op.add_column(
            sa.Column("expires_at", outcomes.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("scopes")
