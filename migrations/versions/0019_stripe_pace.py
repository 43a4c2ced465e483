"""Stripe's rate limits kept by every process together: the next free moment of the
account's global limit and of each endpoint's.

Revision ID: 0019_stripe_pace
Revises: 0018_account_links
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_stripe_pace"
down_revision = "0018_account_links"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stripe_pace",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("next_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_stripe_pace")),
    )


def downgrade() -> None:
    op.drop_table("stripe_pace")
