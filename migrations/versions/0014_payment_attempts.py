"""A pledge's payment attempts, guarded by the database: at most one live attempt and
at most one success per pledge (partial unique indexes); attempts can be cancelled
(superseded) or a surplus (a second success, refunded); the card actually charged.

Revision ID: 0014_payment_attempts
Revises: 0013_user_language
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_payment_attempts"
down_revision = "0013_user_language"
branch_labels = None
depends_on = None

OLD = ("created", "requires_action", "succeeded", "failed")
NEW = (*OLD, "cancelled", "surplus")
LIVE = "state IN ('created', 'requires_action')"
SUCCEEDED = "state = 'succeeded'"


def _states(values: tuple[str, ...]) -> str:
    return "state IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("card_brand", sa.String(length=20), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("card_last4", sa.String(length=4), nullable=False, server_default="")
        )
        batch_op.drop_constraint(batch_op.f("ck_payments_payment_state"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_payments_payment_state"), sa.text(_states(NEW))
        )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.alter_column("card_brand", server_default=None)
        batch_op.alter_column("card_last4", server_default=None)
    op.create_index(
        "uq_payments_live_pledge",
        "payments",
        ["pledge_id"],
        unique=True,
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )
    op.create_index(
        "uq_payments_succeeded_pledge",
        "payments",
        ["pledge_id"],
        unique=True,
        sqlite_where=sa.text(SUCCEEDED),
        postgresql_where=sa.text(SUCCEEDED),
    )


def downgrade() -> None:
    op.drop_index("uq_payments_succeeded_pledge", table_name="payments")
    op.drop_index("uq_payments_live_pledge", table_name="payments")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_payments_payment_state"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_payments_payment_state"), sa.text(_states(OLD))
        )
        batch_op.drop_column("card_last4")
        batch_op.drop_column("card_brand")
