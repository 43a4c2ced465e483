"""Organisation names are unique by their skeleton (look-alike letters mapped,
invisible characters removed), not only case-folded: the keys of existing
organisations are computed again. Should two existing names now share a key (a
look-alike registered before), the later one keeps its old key, and the team
sees it in the log of this migration.

Revision ID: 0015_organisation_name_keys
Revises: 0014_payment_attempts
Create Date: 2026-11-30
"""

import logging

import sqlalchemy as sa
from alembic import op

from marketplace.accounts.names import name_key

revision = "0015_organisation_name_keys"
down_revision = "0014_payment_attempts"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
organisations = sa.table(
    "organisations",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("name_key", sa.String),
)


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(organisations).order_by(organisations.c.id)).all()
    final: dict[int, str] = {}
    taken: set[str] = set()
    for row in rows:
        key = name_key(row.name)
        if key in taken:
            log.warning(
                "organisation %s (%r) looks like an earlier one: kept its key", row.id, row.name
            )
            key = row.name_key
        taken.add(key)
        final[row.id] = key
    # Two steps, so that no new key meets an old one not yet replaced (unique).
    for row in rows:
        connection.execute(
            organisations.update()
            .where(organisations.c.id == row.id)
            .values(name_key=f"migrating:{row.id}")
        )
    for row_id, key in final.items():
        connection.execute(
            organisations.update().where(organisations.c.id == row_id).values(name_key=key)
        )


def downgrade() -> None:
    connection = op.get_bind()
    for row in connection.execute(sa.select(organisations)).all():
        connection.execute(
            organisations.update()
            .where(organisations.c.id == row.id)
            .values(name_key=" ".join(row.name.split()).casefold())
        )
