"""refuse_unless(ok, refusal): a statement that must all hold or not happen says so in SQL
(PostgreSQL only; the pledge's one statement commits itself and must fail whole when the
project or a pool refuses it).

Revision ID: 0031_refuse_unless
Revises: 0030_pool_totals
Create Date: 2026-12-01
"""

from alembic import op

revision = "0031_refuse_unless"
down_revision = "0030_pool_totals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION refuse_unless(ok boolean, refusal text) RETURNS boolean
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            IF ok IS NOT TRUE THEN
                RAISE EXCEPTION USING ERRCODE = 'MKREF', MESSAGE = refusal;
            END IF;
            RETURN true;
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION refuse_unless(boolean, text)")
