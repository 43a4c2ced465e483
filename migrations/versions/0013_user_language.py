"""Each person's language (the pages' language they last chose or signed in with), so
e-mails are written in it.

Revision ID: 0013_user_language
Revises: 0012_sqlite_search
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_user_language"
down_revision = "0012_sqlite_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=5), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("language")
