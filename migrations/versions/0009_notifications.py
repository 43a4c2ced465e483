"""Notices become an e-mail outbox: a unique key per event and recipient, a recipient
user, the parameters of their texts (rendered in each reader's language), and the
delivery state (notices made before e-mail existed are skipped).

Revision ID: 0009_notifications
Revises: 0008_progress
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

import outcomes.db

revision = "0009_notifications"
down_revision = "0008_progress"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key", sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "mail_state",
                sa.Enum(
                    "pending",
                    "sending",
                    "sent",
                    "logged",
                    "failed",
                    "skipped",
                    name="mail_state",
                    native_enum=False,
                    create_constraint=True,
                    length=20,
                ),
                nullable=False,
                server_default="skipped",
            )
        )
        batch_op.add_column(
            sa.Column("mailed_at", outcomes.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("params", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("mail_error", sa.String(length=300), nullable=False, server_default="")
        )
        batch_op.create_index(
            batch_op.f("ix_notifications_mail_state_id"), ["mail_state", "id"], unique=False
        )
        batch_op.create_unique_constraint(batch_op.f("uq_notifications_key"), ["key"])
        batch_op.create_foreign_key(
            batch_op.f("fk_notifications_user_id_users"), "users", ["user_id"], ["id"]
        )
    # Existing notices were never e-mailed and will not be; new ones say their state.
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.alter_column("mail_state", server_default=None)
        batch_op.alter_column("mail_error", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_notifications_user_id_users"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_notifications_key"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_notifications_mail_state_id"))
        batch_op.drop_constraint(batch_op.f("ck_notifications_mail_state"), type_="check")
        batch_op.drop_column("mail_error")
        batch_op.drop_column("mailed_at")
        batch_op.drop_column("params")
        batch_op.drop_column("mail_state")
        batch_op.drop_column("user_id")
        batch_op.drop_column("key")
