"""Outcome catalogue, seeded with the first value bank (outcomes/data/outcome-types.csv).

Revision ID: 0002_outcome_catalogue
Revises: 0001_accounts
Create Date: 2026-11-22

The CSV is the value bank as first shipped. Later changes to the catalogue are
made by admins in the application or by a new migration, never by editing the
CSV, so every database seeded by this revision starts from the same rows.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from outcomes.catalogue import read_catalogue_csv
from outcomes.db import ExactDecimal, UTCDateTime

revision = "0002_outcome_catalogue"
down_revision = "0001_accounts"
branch_labels = None
depends_on = None

ADJUSTMENTS = ("deadweight", "displacement", "attribution", "drop_off")


def _range(column: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(
        f"CAST({column} AS NUMERIC) >= 0 AND CAST({column} AS NUMERIC) <= 0.95",
        name=op.f(f"ck_outcome_types_{column}_range"),
    )


def upgrade() -> None:
    table = op.create_table(
        "outcome_types",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=50), nullable=False),
        sa.Column("proxy_value", ExactDecimal(20, 6), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "per",
            sa.Enum(
                "year", "once", name="per", native_enum=False, create_constraint=True, length=10
            ),
            nullable=False,
        ),
        sa.Column("price_year", sa.Integer(), nullable=False),
        sa.Column("basis", sa.String(length=50), nullable=False),
        sa.Column("haircut", ExactDecimal(7, 4), nullable=False),
        *(sa.Column(column, ExactDecimal(7, 4), nullable=False) for column in ADJUSTMENTS),
        sa.Column("duration_years", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("licence", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "CAST(proxy_value AS NUMERIC) > 0", name=op.f("ck_outcome_types_proxy_value_positive")
        ),
        sa.CheckConstraint(
            "CAST(haircut AS NUMERIC) > 0 AND CAST(haircut AS NUMERIC) <= 1",
            name=op.f("ck_outcome_types_haircut_range"),
        ),
        *(_range(column) for column in ADJUSTMENTS),
        sa.CheckConstraint("duration_years >= 1", name=op.f("ck_outcome_types_duration_positive")),
        sa.CheckConstraint(
            "price_year >= 1900 AND price_year <= 2200",
            name=op.f("ck_outcome_types_price_year_range"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcome_types")),
        sa.UniqueConstraint("code", name=op.f("uq_outcome_types_code")),
    )
    seeded_at = datetime.now(UTC)
    op.bulk_insert(
        table,
        [
            {**row.__dict__, "per": row.per.value, "created_at": seeded_at, "retired_at": None}
            for row in read_catalogue_csv()
        ],
    )


def downgrade() -> None:
    op.drop_table("outcome_types")
