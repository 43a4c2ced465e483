"""Count the onboarding links made for each payout account, so each link's Stripe
idempotency key is derived from the row (``connect-organisation-4-link-2``).

Revision ID: 0016_account_link_count
Revises: 0015_organisation_name_keys
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_account_link_count"
down_revision = "0015_organisation_name_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connected_accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("links_issued", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("connected_accounts", schema=None) as batch_op:
        batch_op.drop_column("links_issued")
