"""Token transfers between organisations and the serials each moved.

Revision ID: 0022_token_transfers
Revises: 0021_organisation_verification
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

import outcomes.db

revision = "0022_token_transfers"
down_revision = "0021_organisation_verification"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_transfers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("from_organisation_id", sa.Integer(), nullable=False),
        sa.Column("to_organisation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("transferred_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "from_organisation_id <> to_organisation_id", name=op.f("ck_token_transfers_to_another")
        ),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_token_transfers_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["from_organisation_id"],
            ["organisations.id"],
            name=op.f("fk_token_transfers_from_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_token_transfers_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["to_organisation_id"],
            ["organisations.id"],
            name=op.f("fk_token_transfers_to_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_token_transfers_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_transfers")),
    )
    with op.batch_alter_table("token_transfers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_token_transfers_from_organisation_id"),
            ["from_organisation_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_token_transfers_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_token_transfers_to_organisation_id"),
            ["to_organisation_id"],
            unique=False,
        )

    op.create_table(
        "token_transfer_ranges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transfer_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("vintage", sa.Integer(), nullable=False),
        sa.Column("first_serial", sa.Integer(), nullable=False),
        sa.Column("last_serial", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "first_serial >= 1 AND first_serial <= last_serial",
            name=op.f("ck_token_transfer_ranges_serials_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_token_transfer_ranges_project_id_projects"),
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["token_transfers.id"],
            name=op.f("fk_token_transfer_ranges_transfer_id_token_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_transfer_ranges")),
    )
    with op.batch_alter_table("token_transfer_ranges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_token_transfer_ranges_project_id_first_serial_last_serial"),
            ["project_id", "first_serial", "last_serial"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_token_transfer_ranges_transfer_id"), ["transfer_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("token_transfer_ranges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_token_transfer_ranges_transfer_id"))
        batch_op.drop_index(
            batch_op.f("ix_token_transfer_ranges_project_id_first_serial_last_serial")
        )

    op.drop_table("token_transfer_ranges")
    with op.batch_alter_table("token_transfers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_token_transfers_to_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_token_transfers_project_id"))
        batch_op.drop_index(batch_op.f("ix_token_transfers_from_organisation_id"))

    op.drop_table("token_transfers")
