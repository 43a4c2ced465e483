"""Token price and threshold from a valuation (product.md "Money and tokens").

    token_price_cents = ceil(budget_cents * (1 + premium_rate) / tokens_total)
    threshold_tokens  = ceil(budget_cents / token_price_cents)

Selling every token raises cost plus premium; the threshold covers the cost.
Computed in integers (the premium rate as an exact fraction): no rounding
until the ceiling, and no float anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Pricing:
    token_price_cents: int
    threshold_tokens: int


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def price_tokens(budget_cents: int, premium_rate: Decimal, tokens_total: int) -> Pricing | None:
    """The price and threshold, or None when there is no token to sell."""
    if tokens_total < 1:
        return None
    numerator, denominator = premium_rate.as_integer_ratio()
    price = ceil_div(budget_cents * (denominator + numerator), denominator * tokens_total)
    return Pricing(token_price_cents=price, threshold_tokens=ceil_div(budget_cents, price))
