"""A second implementation of product.md's settlement rules, for the tests only.

Written from product.md ("Money and tokens") with exact fractions, sharing no code
with marketplace/settlement/compute.py, so a mistake in one is caught by the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import floor


def round_half_even(value: Fraction) -> int:
    whole = floor(value)
    rest = value - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2 == 1):
        return whole + 1
    return whole


def split(total: int, weights: list[tuple[int, int, int]]) -> dict[int, int]:
    """``total`` split by weight: floor each share, then one more each to the largest
    fractional remainders, ties to the earlier pledge. Weights: (who, weight, order)."""
    whole = sum(weight for _, weight, _ in weights)
    exact = {who: Fraction(total * weight, whole) for who, weight, _ in weights}
    given = {who: floor(share) for who, share in exact.items()}
    left = total - sum(given.values())
    order = sorted(weights, key=lambda w: (-(exact[w[0]] - given[w[0]]), w[2]))
    for who, _weight, _ in order[:left]:
        given[who] += 1
    return given


@dataclass(frozen=True)
class Expected:
    raised: int
    cost: int
    cost_fee: int
    premium_payout: int
    premium_fee: int
    refund_total: int
    minted: int
    buffer: int
    tokens: dict[int, int]
    refunds: dict[int, int]


def settle(
    holdings: list[tuple[int, int, int]],  # (buyer, tokens paid, earliest pledge)
    price: int,
    threshold: int,
    fee_rate: Fraction,
    v_target: int,
    v_verified: int,
    buffer_rate: Fraction = Fraction(0),
) -> Expected:
    paid = sum(n for _, n, _ in holdings)
    raised = paid * price
    cost = threshold * price
    escrow = raised - cost
    ratio = Fraction(v_verified, v_target)
    minted = floor(paid * ratio)
    premium_payout = floor(escrow * ratio)
    refund_total = escrow - premium_payout
    buffer = floor(minted * buffer_rate)  # to the buffer pool; the buyers share the rest
    return Expected(
        raised=raised,
        cost=cost,
        cost_fee=round_half_even(cost * fee_rate),
        premium_payout=premium_payout,
        premium_fee=round_half_even(premium_payout * fee_rate),
        refund_total=refund_total,
        minted=minted,
        buffer=buffer,
        tokens=split(minted - buffer, holdings),
        refunds=split(refund_total, holdings),
    )
