"""The platform's money rules that more than one feature applies (pure, integer cents)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal


def half_even(amount: Decimal) -> int:
    """A Decimal amount of cents rounded to a whole cent, ties to even."""
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def fee_on(amount_cents: int, fee_rate: Decimal) -> int:
    """The platform fee on an amount: half-even to the cent (the cost tranche at the
    start, the premium at settlement)."""
    return half_even(Decimal(amount_cents) * fee_rate)
