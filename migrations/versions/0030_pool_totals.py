"""Running totals of matchfunding pools: what each pool's live pledges hold, in all and on
each project, kept in one row each (filled from the pledges made before).

Revision ID: 0030_pool_totals
Revises: 0029_pools
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0030_pool_totals"
down_revision = "0029_pools"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pool_projects",
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("committed_cents", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "committed_cents >= 0", name=op.f("ck_pool_projects_committed_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"], ["pools.id"], name=op.f("fk_pool_projects_pool_id_pools")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_pool_projects_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("pool_id", "project_id", name=op.f("pk_pool_projects")),
    )
    with op.batch_alter_table("pools", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("committed_cents", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.execute(
        "INSERT INTO pool_projects (pool_id, project_id, committed_cents) "
        "SELECT pool_id, project_id, SUM(amount_cents) FROM pledges WHERE pool_id IS NOT NULL "
        "AND state IN ('committed', 'payment_failed', 'processing', 'paid') "
        "GROUP BY pool_id, project_id"
    )
    op.execute(
        "UPDATE pools SET committed_cents = COALESCE((SELECT SUM(committed_cents) "
        "FROM pool_projects WHERE pool_projects.pool_id = pools.id), 0)"
    )
    with op.batch_alter_table("pools", schema=None) as batch_op:
        batch_op.create_check_constraint(
            "committed_in_budget", "committed_cents >= 0 AND committed_cents <= budget_cents"
        )


def downgrade() -> None:
    with op.batch_alter_table("pools", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_pools_committed_in_budget"), type_="check")
    with op.batch_alter_table("pools", schema=None) as batch_op:
        batch_op.drop_column("committed_cents")
    op.drop_table("pool_projects")
