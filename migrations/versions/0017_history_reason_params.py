"""History reasons with figures: the template stays in ``reason``, its figures go to
``reason_params`` (JSON), so each reader sees the reason in their language with the
money formatted. Reasons written before, in the shapes the code wrote them, are turned
into their template and figures; any other text (a person's own words) stays as it is.

Revision ID: 0017_history_reason_params
Revises: 0016_account_link_count
Create Date: 2026-11-30
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0017_history_reason_params"
down_revision = "0016_account_link_count"
branch_labels = None
depends_on = None

TABLES = ("project_state_changes", "pledge_state_changes", "evaluation_state_changes")


# (the old text's shape, the template, the names of its figures in order, which are text)
OLD_SHAPES = [
    (
        r"valued at (\d+) tokens of (\d+) cents; threshold (\d+)",
        "valued at %(tokens)s tokens of %(price_cents)s each; threshold %(threshold)s tokens",
        ("tokens", "price_cents", "threshold"),
        (),
    ),
    (
        r"funding closed early by the entrepreneur at (\d+) of (\d+) tokens",
        "funding closed early by the entrepreneur at %(pledged)s of %(total)s tokens",
        ("pledged", "total"),
        (),
    ),
    (
        r"(off_session|on_session) payment (\d+) succeeded",
        "%(kind)s payment %(payment)s succeeded",
        ("kind", "payment"),
        ("kind", "payment"),
    ),
    (r"charge failed: (\S+)", "charge failed: %(code)s", ("code",), ("code",)),
    (
        r"funding closed \(sold out\): (\d+) of (\d+) tokens pledged, threshold (\d+): "
        r"threshold met",
        "funding closed (sold out): %(pledged)s of %(total)s tokens pledged, "
        "threshold %(threshold)s: threshold met",
        ("pledged", "total", "threshold"),
        (),
    ),
    (
        r"funding closed \(deadline passed\): (\d+) of (\d+) tokens pledged, threshold (\d+): "
        r"threshold met",
        "funding closed (deadline passed): %(pledged)s of %(total)s tokens pledged, "
        "threshold %(threshold)s: threshold met",
        ("pledged", "total", "threshold"),
        (),
    ),
    (
        r"funding closed \(deadline passed\): (\d+) of (\d+) tokens pledged, threshold (\d+): "
        r"below the threshold",
        "funding closed (deadline passed): %(pledged)s of %(total)s tokens pledged, "
        "threshold %(threshold)s: below the threshold",
        ("pledged", "total", "threshold"),
        (),
    ),
    (
        r"paid tokens (\d+) stayed below the threshold (\d+): every charge refunded",
        "paid tokens %(paid)s stayed below the threshold %(threshold)s: every charge refunded",
        ("paid", "threshold"),
        (),
    ),
    (
        r"started: cost tranche (\d+) cents released, fee (\d+) cents",
        "started: cost tranche %(cost_cents)s released, fee %(fee_cents)s",
        ("cost_cents", "fee_cents"),
        (),
    ),
    (
        r"settled: (\d+) tokens minted, premium (\d+) cents, refunds (\d+) cents",
        "settled: %(minted)s tokens minted, premium %(premium_cents)s, refunds %(refunds_cents)s",
        ("minted", "premium_cents", "refunds_cents"),
        (),
    ),
]


def templated(reason: str) -> tuple[str, dict] | None:
    """An old reason's template and figures, or None for any other text."""
    for shape, template, names, texts in OLD_SHAPES:
        found = re.fullmatch(shape, reason or "")
        if found:
            values = {
                name: (value.replace("_", "-") if name == "kind" else value)
                if name in texts
                else int(value)
                for name, value in zip(names, found.groups(), strict=True)
            }
            return template, values
    return None


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("reason_params", sa.JSON(), nullable=True))
    connection = op.get_bind()
    for name in TABLES:
        table = sa.table(
            name, sa.column("id"), sa.column("reason"), sa.column("reason_params", sa.JSON())
        )
        for row in connection.execute(sa.select(table.c.id, table.c.reason)).all():
            found = templated(row.reason)
            if found:
                connection.execute(
                    table.update()
                    .where(table.c.id == row.id)
                    .values(reason=found[0], reason_params=found[1])
                )


def downgrade() -> None:
    connection = op.get_bind()
    for name in TABLES:
        table = sa.table(
            name, sa.column("id"), sa.column("reason"), sa.column("reason_params", sa.JSON())
        )
        rows = connection.execute(
            sa.select(table.c.id, table.c.reason, table.c.reason_params).where(
                table.c.reason_params.is_not(None)
            )
        ).all()
        for row in rows:
            if not row.reason_params:  # a JSON null
                continue
            connection.execute(
                table.update()
                .where(table.c.id == row.id)
                .values(reason=row.reason % row.reason_params)
            )
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("reason_params")
