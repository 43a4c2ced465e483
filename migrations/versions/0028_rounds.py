"""Funding rounds, their history, and the round a project is submitted into.

Revision ID: 0028_rounds
Revises: 0027_reporting_tags
Create Date: 2026-11-30
"""

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

import outcomes.db


@contextmanager
def _keeping_triggers(table: str) -> Iterator[None]:
    """SQLite rebuilds ``table`` to add a foreign key, and a rebuilt table has lost its
    triggers (the full-text index of migration 0012): they are made again after."""
    bind = op.get_bind()
    saved = []
    if bind.dialect.name == "sqlite":
        saved = (
            bind.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
                {"t": table},
            )
            .scalars()
            .all()
        )
    yield
    present = set()
    if bind.dialect.name == "sqlite":
        present = set(
            bind.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
                {"t": table},
            ).scalars()
        )
    for sql in saved:
        if sql not in present:
            bind.execute(sa.text(sql))


revision = "0028_rounds"
down_revision = "0027_reporting_tags"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("themes", sa.JSON(), nullable=False),
        sa.Column("cities", sa.JSON(), nullable=False),
        sa.Column("submissions_open", sa.Date(), nullable=False),
        sa.Column("submissions_close", sa.Date(), nullable=False),
        sa.Column("funding_deadline", sa.Date(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "open",
                "closed",
                name="round_state",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "submissions_close < funding_deadline", name=op.f("ck_rounds_deadline_after_window")
        ),
        sa.CheckConstraint(
            "submissions_open <= submissions_close", name=op.f("ck_rounds_window_in_order")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_rounds_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rounds")),
        sa.UniqueConstraint("name", name=op.f("uq_rounds_name")),
    )
    op.create_table(
        "round_state_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("at", outcomes.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "from_state",
            sa.Enum(
                "open",
                "closed",
                name="round_from_state",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column(
            "to_state",
            sa.Enum(
                "open",
                "closed",
                name="round_to_state",
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
            ["actor_id"], ["users.id"], name=op.f("fk_round_state_changes_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["round_id"], ["rounds.id"], name=op.f("fk_round_state_changes_round_id_rounds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_round_state_changes")),
    )
    with op.batch_alter_table("round_state_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_round_state_changes_round_id"), ["round_id"], unique=False
        )

    with _keeping_triggers("projects"), op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("round_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_projects_round_id"), ["round_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_projects_round_id_rounds"), "rounds", ["round_id"], ["id"]
        )


def downgrade() -> None:
    with _keeping_triggers("projects"), op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_projects_round_id_rounds"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_projects_round_id"))
        batch_op.drop_column("round_id")

    with op.batch_alter_table("round_state_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_round_state_changes_round_id"))

    op.drop_table("round_state_changes")
    op.drop_table("rounds")
