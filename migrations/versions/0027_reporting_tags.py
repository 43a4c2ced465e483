"""Reporting tags of the value bank: ESRS topic and disclosure requirement, SDG targets and
their source, filled for the shipped outcome types from outcomes/data/reporting-tags.csv.

Revision ID: 0027_reporting_tags
Revises: 0026_value_per_euro
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from outcomes.catalogue import read_tags_csv

revision = "0027_reporting_tags"
down_revision = "0026_value_per_euro"
branch_labels = None
depends_on = None

COLUMNS = (("esrs_topic", 2), ("esrs_disclosure", 8), ("sdg_targets", 100), ("tags_source", 500))
types = sa.table(
    "outcome_types", sa.column("code", sa.String), *(sa.column(n, sa.String) for n, _ in COLUMNS)
)


def upgrade() -> None:
    with op.batch_alter_table("outcome_types", schema=None) as batch_op:
        for name, length in COLUMNS:
            batch_op.add_column(
                sa.Column(name, sa.String(length=length), nullable=False, server_default="")
            )
    bind = op.get_bind()
    for code, tags in read_tags_csv().items():
        bind.execute(
            types.update()
            .where(types.c.code == code)
            .values(
                esrs_topic=tags.esrs_topic,
                esrs_disclosure=tags.esrs_disclosure,
                sdg_targets=tags.sdg_targets,
                tags_source=tags.tags_source,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("outcome_types", schema=None) as batch_op:
        for name, _length in reversed(COLUMNS):
            batch_op.drop_column(name)
