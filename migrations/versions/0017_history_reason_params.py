"""History reasons with figures: the template stays in ``reason``, its figures go to
``reason_params`` (JSON), so each reader sees the reason in their language with the
money formatted.

Revision ID: 0017_history_reason_params
Revises: 0016_account_link_count
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_history_reason_params"
down_revision = "0016_account_link_count"
branch_labels = None
depends_on = None

TABLES = ("project_state_changes", "pledge_state_changes", "evaluation_state_changes")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("reason_params", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("reason_params")
