"""Evaluation and settlement: evaluations with their results and history, settlements
and each buyer's share.

Revision ID: 0006_evaluation_settlement
Revises: 0005_funding
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

import outcomes.db

revision = "0006_evaluation_settlement"
down_revision = "0005_funding"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("evaluator_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "assigned",
                "submitted",
                "returned",
                "approved",
                name="evaluation_state",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("assigned_by_id", sa.Integer(), nullable=False),
        sa.Column("assigned_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", outcomes.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_at", outcomes.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("return_reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["approved_by_id"], ["users.id"], name=op.f("fk_evaluations_approved_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["assigned_by_id"], ["users.id"], name=op.f("fk_evaluations_assigned_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["evaluator_id"], ["users.id"], name=op.f("fk_evaluations_evaluator_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_evaluations_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
        sa.UniqueConstraint("project_id", name=op.f("uq_evaluations_project_id")),
    )
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evaluations_evaluator_id"), ["evaluator_id"], unique=False
        )

    op.create_table(
        "evaluation_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("commitment_id", sa.Integer(), nullable=False),
        sa.Column("verified_quantity", sa.Integer(), nullable=False),
        sa.Column("evidence_note", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "verified_quantity >= 0", name=op.f("ck_evaluation_results_verified_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["commitment_id"],
            ["outcome_commitments.id"],
            name=op.f("fk_evaluation_results_commitment_id_outcome_commitments"),
        ),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_evaluation_results_evaluation_id_evaluations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_results")),
        sa.UniqueConstraint(
            "evaluation_id",
            "commitment_id",
            name=op.f("uq_evaluation_results_evaluation_id_commitment_id"),
        ),
    )
    op.create_table(
        "evaluation_state_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "from_state",
            sa.Enum(
                "assigned",
                "submitted",
                "returned",
                "approved",
                name="evaluation_from_state",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column(
            "to_state",
            sa.Enum(
                "assigned",
                "submitted",
                "returned",
                "approved",
                name="evaluation_to_state",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_evaluation_state_changes_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_evaluation_state_changes_evaluation_id_evaluations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_state_changes")),
    )
    with op.batch_alter_table("evaluation_state_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evaluation_state_changes_evaluation_id"), ["evaluation_id"], unique=False
        )

    op.create_table(
        "settlements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("tokens_paid", sa.Integer(), nullable=False),
        sa.Column("raised_cents", sa.BigInteger(), nullable=False),
        sa.Column("cost_tranche_cents", sa.BigInteger(), nullable=False),
        sa.Column("cost_fee_cents", sa.BigInteger(), nullable=False),
        sa.Column("v_target_cents", sa.BigInteger(), nullable=False),
        sa.Column("v_verified_cents", sa.BigInteger(), nullable=False),
        sa.Column("tokens_minted", sa.Integer(), nullable=False),
        sa.Column("premium_payout_cents", sa.BigInteger(), nullable=False),
        sa.Column("premium_fee_cents", sa.BigInteger(), nullable=False),
        sa.Column("refund_total_cents", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", outcomes.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "raised_cents = cost_tranche_cents + premium_payout_cents + refund_total_cents",
            name=op.f("ck_settlements_every_cent_accounted"),
        ),
        sa.CheckConstraint(
            "v_verified_cents >= 0 AND v_verified_cents <= v_target_cents",
            name=op.f("ck_settlements_verified_within_target"),
        ),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_settlements_evaluation_id_evaluations"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_settlements_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlements")),
        sa.UniqueConstraint("project_id", name=op.f("uq_settlements_project_id")),
    )
    op.create_table(
        "settlement_shares",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("settlement_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("first_pledge_id", sa.Integer(), nullable=False),
        sa.Column("tokens_paid", sa.Integer(), nullable=False),
        sa.Column("tokens_minted", sa.Integer(), nullable=False),
        sa.Column("refund_cents", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "refund_cents >= 0", name=op.f("ck_settlement_shares_refund_not_negative")
        ),
        sa.CheckConstraint(
            "tokens_minted >= 0 AND tokens_minted <= tokens_paid",
            name=op.f("ck_settlement_shares_minted_within_paid"),
        ),
        sa.ForeignKeyConstraint(
            ["first_pledge_id"],
            ["pledges.id"],
            name=op.f("fk_settlement_shares_first_pledge_id_pledges"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_settlement_shares_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["settlements.id"],
            name=op.f("fk_settlement_shares_settlement_id_settlements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_shares")),
        sa.UniqueConstraint(
            "settlement_id",
            "organisation_id",
            name=op.f("uq_settlement_shares_settlement_id_organisation_id"),
        ),
    )
    with op.batch_alter_table("settlement_shares", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_shares_organisation_id"), ["organisation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("settlement_shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_shares_organisation_id"))

    op.drop_table("settlement_shares")
    op.drop_table("settlements")
    with op.batch_alter_table("evaluation_state_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluation_state_changes_evaluation_id"))

    op.drop_table("evaluation_state_changes")
    op.drop_table("evaluation_results")
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluations_evaluator_id"))

    op.drop_table("evaluations")
