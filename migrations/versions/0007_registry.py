"""The token registry: serial blocks and retirements; organisations may be named as holders.

Revision ID: 0007_registry
Revises: 0006_evaluation_settlement
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

import outcomes.db

revision = "0007_registry"
down_revision = "0006_evaluation_settlement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retirements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("beneficiary", sa.String(length=200), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum(
                "sroi_obligation",
                "csr_voluntary",
                "csrd_report",
                name="purpose",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "claim",
            sa.Enum(
                "contribution",
                "offset",
                name="claim",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("contract_reference", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("retired_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "purpose <> 'sroi_obligation' OR contract_reference <> ''",
            name=op.f("ck_retirements_sroi_needs_contract"),
        ),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_retirements_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_retirements_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_retirements_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_retirements_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retirements")),
    )
    with op.batch_alter_table("retirements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retirements_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_retirements_project_id"), ["project_id"], unique=False)

    op.create_table(
        "token_blocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("vintage", sa.Integer(), nullable=False),
        sa.Column("first_serial", sa.Integer(), nullable=False),
        sa.Column("last_serial", sa.Integer(), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "issued",
                "retired",
                name="block_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("retirement_id", sa.Integer(), nullable=True),
        sa.Column("issued_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(status = 'retired') = (retirement_id IS NOT NULL)",
            name=op.f("ck_token_blocks_retired_with_retirement"),
        ),
        sa.CheckConstraint(
            "first_serial >= 1 AND first_serial <= last_serial",
            name=op.f("ck_token_blocks_serials_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["holder_id"],
            ["organisations.id"],
            name=op.f("fk_token_blocks_holder_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_token_blocks_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["retirement_id"],
            ["retirements.id"],
            name=op.f("fk_token_blocks_retirement_id_retirements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_blocks")),
        sa.UniqueConstraint(
            "project_id", "first_serial", name=op.f("uq_token_blocks_project_id_first_serial")
        ),
    )
    with op.batch_alter_table("token_blocks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_token_blocks_holder_id_status_project_id_first_serial"),
            ["holder_id", "status", "project_id", "first_serial"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_token_blocks_retirement_id"), ["retirement_id"], unique=False
        )

    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("registry_public", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("registry_public")

    with op.batch_alter_table("token_blocks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_token_blocks_retirement_id"))
        batch_op.drop_index(batch_op.f("ix_token_blocks_holder_id_status_project_id_first_serial"))

    op.drop_table("token_blocks")
    with op.batch_alter_table("retirements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retirements_project_id"))
        batch_op.drop_index(batch_op.f("ix_retirements_organisation_id"))

    op.drop_table("retirements")
