"""Accounts people expect: verified e-mail addresses, the organisation's owner, e-mail
preferences per notice kind, single-use links (verify, reset a password, confirm a new
address, join an organisation), and the organisation's public profile.

People who registered before verification existed count as verified (from when they
registered); each organisation's first person becomes its owner.

Revision ID: 0018_account_links
Revises: 0017_history_reason_params
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from outcomes.db import UTCDateTime

revision = "0018_account_links"
down_revision = "0017_history_reason_params"
branch_labels = None
depends_on = None

PROFILE = (
    ("legal_name", 200),
    ("registry_id", 40),
    ("address", 300),
    ("vat_id", 20),
    ("website", 200),
    ("description", None),
)
PURPOSES = ("verify_email", "reset_password", "change_email", "invitation")


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_verified_at", UTCDateTime(timezone=True)))
        batch_op.add_column(
            sa.Column("is_owner", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("email_off", sa.String(length=1000), nullable=False, server_default="")
        )
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        for name, length in PROFILE:
            kind = sa.Text() if length is None else sa.String(length=length)
            batch_op.add_column(sa.Column(name, kind, nullable=False, server_default=""))
    op.execute("UPDATE users SET email_verified_at = created_at")
    op.execute(
        "UPDATE users SET is_owner = TRUE WHERE id IN "
        "(SELECT MIN(id) FROM users WHERE role IN ('entrepreneur', 'buyer') "
        "GROUP BY organisation_id)"
    )
    op.create_table(
        "account_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum(
                *PURPOSES, name="link_purpose", native_enum=False, create_constraint=True, length=20
            ),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("invited_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_account_links_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_account_links_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["invited_by_id"], ["users.id"], name=op.f("fk_account_links_invited_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_links_token_hash")),
    )
    with op.batch_alter_table("account_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_links_purpose_email_used_at"),
            ["purpose", "email", "used_at"],
        )
        batch_op.create_index(batch_op.f("ix_account_links_user_id"), ["user_id"])


def downgrade() -> None:
    op.drop_table("account_links")
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        for name, _length in reversed(PROFILE):
            batch_op.drop_column(name)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("email_off")
        batch_op.drop_column("is_owner")
        batch_op.drop_column("email_verified_at")
