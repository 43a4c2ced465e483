"""Projects, outcome commitments, state history, valuation snapshots.

Revision ID: 0003_projects
Revises: 0002_outcome_catalogue
Create Date: 2026-11-22

projects.valuation_id and valuation_snapshots.project_id refer to each other.
SQLite accepts a foreign key to a table that does not exist yet, so there it
is declared with the table; PostgreSQL gets it by ALTER TABLE afterwards.
"""

import sqlalchemy as sa
from alembic import op

from outcomes.db import ExactDecimal, UTCDateTime

revision = "0003_projects"
down_revision = "0002_outcome_catalogue"
branch_labels = None
depends_on = None

STATES = (
    "draft",
    "submitted",
    "valued",
    "funding",
    "funded",
    "running",
    "evaluating",
    "settled",
    "rejected",
    "unfunded",
    "withdrawn",
)
THEMES = ("work", "housing", "youth", "health", "safety", "education", "wellbeing")


def _states(name: str) -> sa.Enum:
    return sa.Enum(*STATES, name=name, native_enum=False, create_constraint=True, length=20)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    valuation_fk = (
        [
            sa.ForeignKeyConstraint(
                ["valuation_id"], ["valuation_snapshots.id"], name="fk_projects_valuation_id"
            )
        ]
        if sqlite
        else []
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("city", sa.String(length=80), nullable=False),
        sa.Column("city_key", sa.String(length=80), nullable=False),
        sa.Column(
            "theme",
            sa.Enum(*THEMES, name="theme", native_enum=False, create_constraint=True, length=20),
            nullable=False,
        ),
        sa.Column("budget_cents", sa.BigInteger(), nullable=False),
        sa.Column("premium_rate", ExactDecimal(5, 4), nullable=False),
        sa.Column("funding_deadline", sa.Date(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("state", _states("project_state"), nullable=False),
        sa.Column("valuation_id", sa.Integer(), nullable=True),
        sa.Column("tokens_total", sa.Integer(), nullable=True),
        sa.Column("token_price_cents", sa.BigInteger(), nullable=True),
        sa.Column("threshold_tokens", sa.Integer(), nullable=True),
        sa.Column("tokens_pledged", sa.Integer(), nullable=False),
        sa.Column("tokens_paid", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("listed_at", UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(tokens_total IS NULL AND tokens_pledged = 0) OR tokens_pledged <= tokens_total",
            name=op.f("ck_projects_pledged_within_total"),
        ),
        sa.CheckConstraint(
            "CAST(premium_rate AS NUMERIC) >= 0 AND CAST(premium_rate AS NUMERIC) <= 1",
            name=op.f("ck_projects_premium_rate_range"),
        ),
        sa.CheckConstraint("budget_cents > 0", name=op.f("ck_projects_budget_positive")),
        sa.CheckConstraint(
            "funding_deadline < start_date", name=op.f("ck_projects_deadline_before_start")
        ),
        sa.CheckConstraint("start_date < end_date", name=op.f("ck_projects_start_before_end")),
        sa.CheckConstraint(
            "tokens_pledged >= 0 AND tokens_paid >= 0", name=op.f("ck_projects_tokens_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_projects_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_projects_organisation_id_organisations"),
        ),
        *valuation_fk,
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
    )
    op.create_index(op.f("ix_projects_organisation_id"), "projects", ["organisation_id"])
    for columns in (
        ["listed_at", "id"],
        ["funding_deadline", "id"],
        ["title", "id"],
        ["budget_cents", "id"],
        ["city_key", "listed_at"],
        ["theme", "listed_at"],
        ["state", "listed_at"],
    ):
        op.create_index(op.f(f"ix_projects_{'_'.join(columns)}"), "projects", columns)
    if not sqlite:
        # Substring search (LIKE '%term%') through trigram indexes; pg_trgm is a
        # trusted extension, so the database owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_projects_title_trgm ON projects USING gin (lower(title) gin_trgm_ops)"
        )
        op.execute(
            "CREATE INDEX ix_projects_summary_trgm ON projects "
            "USING gin (lower(summary) gin_trgm_ops)"
        )

    op.create_table(
        "outcome_commitments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("outcome_type_id", sa.Integer(), nullable=False),
        sa.Column("target_quantity", sa.Integer(), nullable=False),
        sa.Column(
            "evidence_grade",
            sa.Enum(
                "A",
                "B",
                "C",
                "D",
                name="evidence_grade",
                native_enum=False,
                create_constraint=True,
                length=1,
            ),
            nullable=False,
        ),
        sa.Column("verified_quantity", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "target_quantity > 0", name=op.f("ck_outcome_commitments_target_positive")
        ),
        sa.CheckConstraint(
            "verified_quantity IS NULL OR verified_quantity >= 0",
            name=op.f("ck_outcome_commitments_verified_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["outcome_type_id"],
            ["outcome_types.id"],
            name=op.f("fk_outcome_commitments_outcome_type_id_outcome_types"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            ondelete="CASCADE",
            name=op.f("fk_outcome_commitments_project_id_projects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcome_commitments")),
    )
    op.create_index(
        op.f("ix_outcome_commitments_outcome_type_id"), "outcome_commitments", ["outcome_type_id"]
    )
    op.create_index(
        op.f("ix_outcome_commitments_project_id_position"),
        "outcome_commitments",
        ["project_id", "position"],
        unique=True,
    )

    op.create_table(
        "project_state_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("from_state", _states("from_state"), nullable=True),
        sa.Column("to_state", _states("to_state"), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_project_state_changes_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_state_changes_project_id_projects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_state_changes")),
    )
    op.create_index(
        op.f("ix_project_state_changes_project_id"), "project_state_changes", ["project_id"]
    )

    op.create_table(
        "valuation_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("method_version", sa.Integer(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("total_present_value_cents", sa.BigInteger(), nullable=False),
        sa.Column("total_conservative_value_cents", sa.BigInteger(), nullable=False),
        sa.Column("tokens_total", sa.Integer(), nullable=False),
        sa.Column("budget_cents", sa.BigInteger(), nullable=False),
        sa.Column("premium_rate", ExactDecimal(5, 4), nullable=False),
        sa.Column("token_price_cents", sa.BigInteger(), nullable=True),
        sa.Column("threshold_tokens", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "tokens_total >= 0", name=op.f("ck_valuation_snapshots_tokens_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_valuation_snapshots_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_valuation_snapshots_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_valuation_snapshots")),
    )
    op.create_index(
        op.f("ix_valuation_snapshots_project_id"), "valuation_snapshots", ["project_id"]
    )
    listing_version = op.create_table(
        "listing_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_listing_version_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_version")),
    )
    op.bulk_insert(listing_version, [{"id": 1, "version": 0}])
    if not sqlite:
        op.create_foreign_key(
            "fk_projects_valuation_id", "projects", "valuation_snapshots", ["valuation_id"], ["id"]
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_projects_valuation_id", "projects", type_="foreignkey")
    op.drop_table("listing_version")
    op.drop_table("valuation_snapshots")
    op.drop_table("project_state_changes")
    op.drop_table("outcome_commitments")
    op.drop_table("projects")
