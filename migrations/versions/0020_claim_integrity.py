"""Claim integrity: evaluators' accreditations and declarations, the grade evidence met,
concerns and disputes, and the buffer pool (blocks without a holder, cancelled blocks).

Revision ID: 0020_claim_integrity
Revises: 0019_stripe_pace
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

import outcomes.db

TWO_OWNERS = "(evaluation_id IS NULL) <> (progress_report_id IS NULL)"
THREE_OWNERS = (
    "(CASE WHEN evaluation_id IS NULL THEN 0 ELSE 1 END)"
    " + (CASE WHEN progress_report_id IS NULL THEN 0 ELSE 1 END)"
    " + (CASE WHEN concern_id IS NULL THEN 0 ELSE 1 END) = 1"
)

revision = "0020_claim_integrity"
down_revision = "0019_stripe_pace"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accreditations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(length=200), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("themes", sa.JSON(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "valid_from <= valid_until", name=op.f("ck_accreditations_valid_in_order")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_accreditations_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_accreditations_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accreditations")),
    )
    with op.batch_alter_table("accreditations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accreditations_user_id"), ["user_id"], unique=False)

    op.create_table(
        "concerns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "filed",
                "dismissed",
                "disputed",
                "upheld",
                name="concern_state",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("created_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("dispute_reason", sa.String(length=2000), nullable=False),
        sa.Column("disputed_at", outcomes.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finding", sa.Text(), nullable=False),
        sa.Column("resolved_at", outcomes.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("corrected", sa.JSON(), nullable=True),
        sa.Column("v_verified_cents", sa.BigInteger(), nullable=True),
        sa.Column("tokens_minted", sa.Integer(), nullable=True),
        sa.Column("tokens_over", sa.Integer(), nullable=True),
        sa.Column("tokens_cancelled", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "tokens_cancelled IS NULL "
            "OR (tokens_cancelled >= 0 AND tokens_cancelled <= tokens_over)",
            name=op.f("ck_concerns_cancelled_within_over"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_concerns_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_concerns_project_id_projects")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_concerns_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_concerns")),
    )
    with op.batch_alter_table("concerns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_concerns_project_id"), ["project_id"], unique=False)

    op.create_table(
        "concern_state_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("concern_id", sa.Integer(), nullable=False),
        sa.Column("at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "from_state",
            sa.Enum(
                "filed",
                "dismissed",
                "disputed",
                "upheld",
                name="concern_from_state",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column(
            "to_state",
            sa.Enum(
                "filed",
                "dismissed",
                "disputed",
                "upheld",
                name="concern_to_state",
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
            ["actor_id"], ["users.id"], name=op.f("fk_concern_state_changes_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["concern_id"],
            ["concerns.id"],
            name=op.f("fk_concern_state_changes_concern_id_concerns"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_concern_state_changes")),
    )
    with op.batch_alter_table("concern_state_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_concern_state_changes_concern_id"), ["concern_id"], unique=False
        )

    with op.batch_alter_table("evidence_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("concern_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_evidence_files_concern_id"), ["concern_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_evidence_files_concern_id_concerns"), "concerns", ["concern_id"], ["id"]
        )
        batch_op.drop_constraint(batch_op.f("ck_evidence_files_exactly_one_owner"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_evidence_files_exactly_one_owner"), sa.text(THREE_OWNERS)
        )

    grade = sa.Enum(
        "A", "B", "C", "D", name="met_grade", native_enum=False, create_constraint=True, length=1
    )
    with op.batch_alter_table("outcome_commitments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "met_grade",
                sa.Enum(
                    "A",
                    "B",
                    "C",
                    "D",
                    name="commitment_met_grade",
                    native_enum=False,
                    create_constraint=True,
                    length=1,
                ),
                nullable=True,
            )
        )
    with op.batch_alter_table("evaluation_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("met_grade", grade, nullable=True))
    # Results recorded before grades were met: the evidence met the planned grade.
    op.execute(
        "UPDATE evaluation_results SET met_grade = (SELECT evidence_grade "
        "FROM outcome_commitments WHERE outcome_commitments.id = evaluation_results.commitment_id)"
    )
    with op.batch_alter_table("evaluation_results", schema=None) as batch_op:
        batch_op.alter_column("met_grade", existing_type=grade, nullable=False)
    op.execute(
        "UPDATE outcome_commitments SET met_grade = (SELECT r.met_grade FROM evaluation_results r "
        "JOIN evaluations e ON e.id = r.evaluation_id WHERE r.commitment_id = "
        "outcome_commitments.id AND e.state = 'approved')"
    )

    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("declaration", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(
            sa.Column("declared_at", outcomes.db.UTCDateTime(timezone=True), nullable=True)
        )

    # not a batch: on SQLite that would rebuild the table and lose its search triggers
    op.add_column(
        "projects",
        sa.Column("disputed", sa.Boolean(), server_default=sa.false(), nullable=False),
    )

    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tokens_buffer", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_settlements_buffer_within_minted"),
            sa.text("tokens_buffer >= 0 AND tokens_buffer <= tokens_minted"),
        )

    with op.batch_alter_table("token_blocks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("concern_id", sa.Integer(), nullable=True))
        batch_op.alter_column("holder_id", existing_type=sa.INTEGER(), nullable=True)
        batch_op.create_index(
            batch_op.f("ix_token_blocks_concern_id"), ["concern_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_token_blocks_concern_id_concerns"), "concerns", ["concern_id"], ["id"]
        )
        batch_op.drop_constraint(batch_op.f("ck_token_blocks_block_status"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_token_blocks_block_status"),
            sa.text("status IN ('issued', 'retired', 'buffer', 'cancelled')"),
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_token_blocks_pool_without_holder"),
            sa.text("(status IN ('buffer', 'cancelled')) = (holder_id IS NULL)"),
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_token_blocks_cancelled_with_concern"),
            sa.text("(status = 'cancelled') = (concern_id IS NOT NULL)"),
        )


def downgrade() -> None:
    with op.batch_alter_table("token_blocks", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("ck_token_blocks_cancelled_with_concern"), type_="check"
        )
        batch_op.drop_constraint(batch_op.f("ck_token_blocks_pool_without_holder"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_token_blocks_block_status"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_token_blocks_block_status"), sa.text("status IN ('issued', 'retired')")
        )
        batch_op.drop_constraint(
            batch_op.f("fk_token_blocks_concern_id_concerns"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_token_blocks_concern_id"))
        batch_op.alter_column("holder_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column("concern_id")

    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_settlements_buffer_within_minted"), type_="check")
        batch_op.drop_column("tokens_buffer")

    op.drop_column("projects", "disputed")

    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.drop_column("declared_at")
        batch_op.drop_column("declaration")

    op.execute("DELETE FROM evidence_files WHERE concern_id IS NOT NULL")
    with op.batch_alter_table("evidence_files", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_evidence_files_exactly_one_owner"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_evidence_files_exactly_one_owner"), sa.text(TWO_OWNERS)
        )
        batch_op.drop_constraint(
            batch_op.f("fk_evidence_files_concern_id_concerns"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_evidence_files_concern_id"))
        batch_op.drop_column("concern_id")

    with op.batch_alter_table("outcome_commitments", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("ck_outcome_commitments_commitment_met_grade"), type_="check"
        )
        batch_op.drop_column("met_grade")
    with op.batch_alter_table("evaluation_results", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_evaluation_results_met_grade"), type_="check")
        batch_op.drop_column("met_grade")

    with op.batch_alter_table("concern_state_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_concern_state_changes_concern_id"))

    op.drop_table("concern_state_changes")
    with op.batch_alter_table("concerns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_concerns_project_id"))

    op.drop_table("concerns")
    with op.batch_alter_table("accreditations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accreditations_user_id"))

    op.drop_table("accreditations")
