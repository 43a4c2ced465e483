"""Progress reports, evidence files and attachments, and the projects' public late flags.

Revision ID: 0008_progress
Revises: 0007_registry
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

import outcomes.db

revision = "0008_progress"
down_revision = "0007_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "progress_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("created_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_progress_reports_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_progress_reports_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_progress_reports")),
    )
    with op.batch_alter_table("progress_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_progress_reports_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "evidence_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=True),
        sa.Column("progress_report_id", sa.Integer(), nullable=True),
        sa.Column("commitment_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=False),
        sa.Column("uploaded_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(evaluation_id IS NULL) <> (progress_report_id IS NULL)",
            name=op.f("ck_evidence_files_exactly_one_owner"),
        ),
        sa.CheckConstraint("length(sha256) = 64", name=op.f("ck_evidence_files_sha256_hex")),
        sa.CheckConstraint("size_bytes > 0", name=op.f("ck_evidence_files_size_positive")),
        sa.ForeignKeyConstraint(
            ["commitment_id"],
            ["outcome_commitments.id"],
            name=op.f("fk_evidence_files_commitment_id_outcome_commitments"),
        ),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_evidence_files_evaluation_id_evaluations"),
        ),
        sa.ForeignKeyConstraint(
            ["progress_report_id"],
            ["progress_reports.id"],
            name=op.f("fk_evidence_files_progress_report_id_progress_reports"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_evidence_files_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"], ["users.id"], name=op.f("fk_evidence_files_uploaded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_files")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_evidence_files_storage_key")),
    )
    with op.batch_alter_table("evidence_files", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evidence_files_evaluation_id"), ["evaluation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_evidence_files_progress_report_id"), ["progress_report_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_evidence_files_project_id"), ["project_id"], unique=False
        )

    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("late_to_report", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("late_to_verify", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("late_to_verify")
        batch_op.drop_column("late_to_report")

    with op.batch_alter_table("evidence_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_files_project_id"))
        batch_op.drop_index(batch_op.f("ix_evidence_files_progress_report_id"))
        batch_op.drop_index(batch_op.f("ix_evidence_files_evaluation_id"))

    op.drop_table("evidence_files")
    with op.batch_alter_table("progress_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_progress_reports_project_id"))

    op.drop_table("progress_reports")
