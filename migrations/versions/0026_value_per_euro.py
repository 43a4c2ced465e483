"""Social value per euro of each project, in ten-thousandths (sortable on every database),
filled for the projects valued or settled before.

Revision ID: 0026_value_per_euro
Revises: 0025_sepa_and_bank_transfer
Create Date: 2026-11-30
"""

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

from valuation import value_for_money

revision = "0026_value_per_euro"
down_revision = "0025_sepa_and_bank_transfer"
branch_labels = None
depends_on = None

projects = sa.table(
    "projects",
    sa.column("id", sa.Integer),
    sa.column("valuation_id", sa.Integer),
    sa.column("state", sa.String),
    sa.column("value_per_euro_bp", sa.BigInteger),
)
snapshots = sa.table(
    "valuation_snapshots",
    sa.column("id", sa.Integer),
    sa.column("total_conservative_value_cents", sa.BigInteger),
    sa.column("budget_cents", sa.BigInteger),
    sa.column("premium_rate", sa.String),
)
settlements = sa.table(
    "settlements",
    sa.column("project_id", sa.Integer),
    sa.column("v_verified_cents", sa.BigInteger),
    sa.column("raised_cents", sa.BigInteger),
    sa.column("refund_total_cents", sa.BigInteger),
)


def _points(ratio: Decimal | None) -> int | None:
    return None if ratio is None else int(ratio * 10_000)


def upgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("value_per_euro_bp", sa.BigInteger(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_projects_value_per_euro_bp_id"),
            ["value_per_euro_bp", "id"],
            unique=False,
        )
    bind = op.get_bind()
    valued = bind.execute(
        sa.select(
            projects.c.id,
            projects.c.state,
            snapshots.c.total_conservative_value_cents,
            snapshots.c.budget_cents,
            snapshots.c.premium_rate,
            settlements.c.v_verified_cents,
            settlements.c.raised_cents,
            settlements.c.refund_total_cents,
        )
        .join(snapshots, snapshots.c.id == projects.c.valuation_id)
        .outerjoin(settlements, settlements.c.project_id == projects.c.id)
    ).all()
    for row in valued:
        if row.v_verified_cents is not None:
            ratio = value_for_money.verified(
                row.v_verified_cents, row.raised_cents, row.refund_total_cents
            )
        else:
            ratio = value_for_money.expected(
                row.total_conservative_value_cents, row.budget_cents, Decimal(row.premium_rate)
            )
        bind.execute(
            projects.update()
            .where(projects.c.id == row.id)
            .values(value_per_euro_bp=_points(ratio))
        )


def downgrade() -> None:
    op.drop_index("ix_projects_value_per_euro_bp_id", table_name="projects")
    # Dropped in place: a batch would rebuild ``projects`` on SQLite and lose the
    # full-text triggers of migration 0012 (SQLite drops a column itself since 3.35).
    op.execute("ALTER TABLE projects DROP COLUMN value_per_euro_bp")
