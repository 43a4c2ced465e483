"""SEPA Direct Debit and EU bank transfer: payment method types, mandates, the processing
state of payments and pledges, bank-transfer instructions and what has arrived, and the
returns of money no payment needs.

Revision ID: 0025_sepa_and_bank_transfer
Revises: 0024_receipts
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

import outcomes.db

revision = "0025_sepa_and_bank_transfer"
down_revision = "0024_receipts"
branch_labels = None
depends_on = None

PAYMENT_STATES = ("created", "requires_action", "succeeded", "failed", "cancelled", "surplus")
PLEDGE_STATES = ("committed", "cancelled", "released", "payment_failed", "paid", "refunded")
METHOD_TYPES = ("card", "sepa_debit", "bank_transfer")


def _values(allowed: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in allowed)


def _checks(payment_states: tuple[str, ...], pledge_states: tuple[str, ...]) -> None:
    """The state CHECKs with these values (SQLite rebuilds the tables: migrations/env.py
    turns its foreign keys off while it does)."""
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_payments_payment_state"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_payments_payment_state"), f"state IN ({_values(payment_states)})"
        )
    with op.batch_alter_table("pledges", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_pledges_pledge_state"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_pledges_pledge_state"), f"state IN ({_values(pledge_states)})"
        )
    with op.batch_alter_table("pledge_state_changes", schema=None) as batch_op:
        for column, name in (("from_state", "from"), ("to_state", "to")):
            constraint = batch_op.f(f"ck_pledge_state_changes_pledge_{name}_state")
            batch_op.drop_constraint(constraint, type_="check")
            batch_op.create_check_constraint(constraint, f"{column} IN ({_values(pledge_states)})")


def _live_index(states: tuple[str, ...]) -> None:
    op.drop_index("uq_payments_live_pledge", table_name="payments")
    where = sa.text(f"state IN ({_values(states)})")
    op.create_index(
        "uq_payments_live_pledge",
        "payments",
        ["pledge_id"],
        unique=True,
        sqlite_where=where,
        postgresql_where=where,
    )


def upgrade() -> None:
    op.create_table(
        "balance_returns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "created",
                "requires_action",
                "succeeded",
                "failed",
                name="balance_return_state",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("refund_id", sa.String(length=64), nullable=True),
        sa.Column("failure_code", sa.String(length=60), nullable=False),
        sa.Column("created_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_balance_returns_amount_positive")),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_balance_returns_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_returns")),
        sa.UniqueConstraint("refund_id", name=op.f("uq_balance_returns_refund_id")),
    )
    with op.batch_alter_table("balance_returns", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_balance_returns_organisation_id"), ["organisation_id"], unique=False
        )
    open_ = sa.text("state = 'created'")
    op.create_index(
        "uq_balance_returns_open",
        "balance_returns",
        ["organisation_id"],
        unique=True,
        sqlite_where=open_,
        postgresql_where=open_,
    )
    with op.batch_alter_table("payment_setups", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "method_type",
                sa.Enum(
                    *METHOD_TYPES,
                    name="method_type",
                    native_enum=False,
                    create_constraint=True,
                    length=20,
                ),
                nullable=False,
                server_default="card",
            )
        )
        batch_op.add_column(sa.Column("mandate_id", sa.String(length=64), nullable=True))
    bank_transfer = sa.text("method_type = 'bank_transfer'")
    op.create_index(
        "uq_payment_setups_bank_transfer",
        "payment_setups",
        ["organisation_id"],
        unique=True,
        sqlite_where=bank_transfer,
        postgresql_where=bank_transfer,
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "method_type",
                sa.Enum(
                    *METHOD_TYPES,
                    name="payment_method_type",
                    native_enum=False,
                    create_constraint=True,
                    length=20,
                ),
                nullable=False,
                server_default="card",
            )
        )
        batch_op.add_column(sa.Column("instructions", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("received_cents", sa.BigInteger(), nullable=False, server_default="0")
        )
    _checks((*PAYMENT_STATES, "processing"), (*PLEDGE_STATES, "processing"))
    _live_index(("created", "requires_action", "processing"))


def downgrade() -> None:
    _live_index(("created", "requires_action"))
    _checks(PAYMENT_STATES, PLEDGE_STATES)
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_payments_payment_method_type"), type_="check")
        batch_op.drop_column("received_cents")
        batch_op.drop_column("instructions")
        batch_op.drop_column("method_type")
    op.drop_index("uq_payment_setups_bank_transfer", table_name="payment_setups")
    with op.batch_alter_table("payment_setups", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_payment_setups_method_type"), type_="check")
        batch_op.drop_column("mandate_id")
        batch_op.drop_column("method_type")
    op.drop_index("uq_balance_returns_open", table_name="balance_returns")
    with op.batch_alter_table("balance_returns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_balance_returns_organisation_id"))
    op.drop_table("balance_returns")
