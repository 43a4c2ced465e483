"""Social value per euro (product.md, "Reporting taxonomy and value for money").

Before settlement: ``V_target / (budget * (1 + premium_rate))``, the conservative value
the project aims at for what selling every token raises. After: ``V_verified /
(raised - refunds)``, the value verified for what buyers kept paying. Both are exact
Decimals rounded half to even to ``PLACES`` (a ratio, not money: four places order the
marketplace finely enough and show as two).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

PLACES = Decimal("0.0001")


def _ratio(value_cents: int, paid_cents: Decimal) -> Decimal | None:
    if paid_cents <= 0 or value_cents < 0:
        return None
    return (Decimal(value_cents) / paid_cents).quantize(PLACES, rounding=ROUND_HALF_EVEN)


def expected(v_target_cents: int, budget_cents: int, premium_rate: Decimal) -> Decimal | None:
    """Social value per euro a project promises: None without a budget."""
    return _ratio(v_target_cents, Decimal(budget_cents) * (1 + premium_rate))


def verified(v_verified_cents: int, raised_cents: int, refunded_cents: int) -> Decimal | None:
    """Social value per euro a settled project delivered: None when buyers paid nothing."""
    return _ratio(v_verified_cents, Decimal(raised_cents - refunded_cents))
