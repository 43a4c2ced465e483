"""Organisations verified by an administrator: when (who is in the audit log).
Organisations that exist already start unverified.

Revision ID: 0021_organisation_verification
Revises: 0020_claim_integrity
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

import outcomes.db

revision = "0021_organisation_verification"
down_revision = "0020_claim_integrity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("verified_at", outcomes.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("verified_at")
