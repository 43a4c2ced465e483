"""The one writer of a project's social value per euro (``Project.value_per_euro_bp``).

Called where its inputs change: when a valuation is applied (expected, from the
snapshot's conservative value, the budget and the premium) and when a settlement is
recorded (verified, from the settlement's figures).
"""

from __future__ import annotations

from decimal import Decimal

from marketplace.projects.models import Project, ValuationSnapshot
from valuation import value_for_money


def _points(ratio: Decimal | None) -> int | None:
    return None if ratio is None else int(ratio * 10_000)


def expected(project: Project, snapshot: ValuationSnapshot) -> None:
    project.value_per_euro_bp = _points(
        value_for_money.expected(
            snapshot.total_conservative_value_cents, snapshot.budget_cents, snapshot.premium_rate
        )
    )


def verified(
    project: Project, *, v_verified_cents: int, raised_cents: int, refunded_cents: int
) -> None:
    project.value_per_euro_bp = _points(
        value_for_money.verified(v_verified_cents, raised_cents, refunded_cents)
    )
