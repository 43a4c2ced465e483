"""Matchfunding pools, their history, and the pool and matched pledge of a pledge.

Revision ID: 0029_pools
Revises: 0028_rounds
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

import outcomes.db

revision = "0029_pools"
down_revision = "0028_rounds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pools",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("payment_setup_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("budget_cents", sa.BigInteger(), nullable=False),
        sa.Column("match_ratio", outcomes.db.ExactDecimal(6, 4), nullable=False),
        sa.Column("cap_per_project_cents", sa.BigInteger(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=True),
        sa.Column("themes", sa.JSON(), nullable=False),
        sa.Column("cities", sa.JSON(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "active",
                "closed",
                name="pool_state",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("created_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "CAST(match_ratio AS NUMERIC) > 0 AND CAST(match_ratio AS NUMERIC) <= 10",
            name=op.f("ck_pools_ratio_range"),
        ),
        sa.CheckConstraint("budget_cents > 0", name=op.f("ck_pools_budget_positive")),
        sa.CheckConstraint("cap_per_project_cents > 0", name=op.f("ck_pools_cap_positive")),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_pools_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_pools_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_setup_id"],
            ["payment_setups.id"],
            name=op.f("fk_pools_payment_setup_id_payment_setups"),
        ),
        sa.ForeignKeyConstraint(["round_id"], ["rounds.id"], name=op.f("fk_pools_round_id_rounds")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pools")),
    )
    with op.batch_alter_table("pools", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pools_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "pool_state_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "from_state",
            sa.Enum(
                "active",
                "closed",
                name="pool_from_state",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column(
            "to_state",
            sa.Enum(
                "active",
                "closed",
                name="pool_to_state",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reason_params", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_pool_state_changes_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"], ["pools.id"], name=op.f("fk_pool_state_changes_pool_id_pools")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_state_changes")),
    )
    with op.batch_alter_table("pool_state_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pool_state_changes_pool_id"), ["pool_id"], unique=False
        )

    with op.batch_alter_table("pledges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pool_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("matched_pledge_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_pledges_pool_id_project_id_state"),
            ["pool_id", "project_id", "state"],
            unique=False,
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_pledges_matched_pledge_id"), ["matched_pledge_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_pledges_matched_pledge_id_pledges"),
            "pledges",
            ["matched_pledge_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_pledges_pool_id_pools"), "pools", ["pool_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("pledges", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_pledges_pool_id_pools"), type_="foreignkey")
        batch_op.drop_constraint(
            batch_op.f("fk_pledges_matched_pledge_id_pledges"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_pledges_matched_pledge_id"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_pledges_pool_id_project_id_state"))
        batch_op.drop_column("matched_pledge_id")
        batch_op.drop_column("pool_id")

    with op.batch_alter_table("pool_state_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pool_state_changes_pool_id"))

    op.drop_table("pool_state_changes")
    with op.batch_alter_table("pools", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pools_organisation_id"))

    op.drop_table("pools")
