"""The settlement arithmetic of product.md "Money and tokens", exactly, in integers.

Pure functions: no database, no Stripe. Every amount is integer cents; ratios
are kept as integer fractions (``V_verified / V_target``) so nothing is rounded
before the rule says so.

Invariants (checked by the property tests):
- charges == cost tranche released + its fee + premium paid out + its fee + refunds;
- ``tokens_buffer = floor(tokens_minted * BUFFER_RATE)`` go to the platform's
  buffer pool; the buyers' tokens sum to ``tokens_minted - tokens_buffer`` and
  their refunds to ``refund_total`` (largest remainder, ties to the earlier pledge);
- no buyer gets more tokens than it paid for, and no amount is negative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from marketplace.core.money import fee_on


@dataclass(frozen=True)
class Holding:
    """A buyer's paid tokens; ``order`` is its earliest pledge (lower wins a tie)."""

    buyer: int
    tokens_paid: int
    order: int


@dataclass(frozen=True)
class BuyerShare:
    buyer: int
    tokens_paid: int
    tokens_minted: int
    refund_cents: int


@dataclass(frozen=True)
class Settlement:
    tokens_paid: int  # S
    raised_cents: int  # R = S * price
    cost_tranche_cents: int  # C = threshold * price
    cost_fee_cents: int
    escrow_cents: int  # E = R - C
    v_target_cents: int
    v_verified_cents: int
    tokens_minted: int
    tokens_buffer: int  # of the minted, held by the buffer pool
    premium_payout_cents: int
    premium_fee_cents: int
    refund_total_cents: int
    buyers: tuple[BuyerShare, ...]

    @property
    def cost_released_cents(self) -> int:
        return self.cost_tranche_cents - self.cost_fee_cents

    @property
    def premium_paid_out_cents(self) -> int:
        return self.premium_payout_cents - self.premium_fee_cents

    @property
    def fees_cents(self) -> int:
        return self.cost_fee_cents + self.premium_fee_cents


def split_largest_remainder(total: int, holdings: list[Holding]) -> dict[int, int]:
    """Split ``total`` units in proportion to each holding's tokens.

    Each buyer gets ``floor(n_b * total / S)``; the units left over go one each
    to the largest fractional remainders, ties to the earlier pledge.
    """
    paid = sum(h.tokens_paid for h in holdings)
    if total < 0 or (paid == 0 and total):
        raise ValueError("cannot split a negative amount, or an amount over nothing")
    if paid == 0:
        return {h.buyer: 0 for h in holdings}
    shares = {h.buyer: h.tokens_paid * total // paid for h in holdings}
    left = total - sum(shares.values())
    by_remainder = sorted(holdings, key=lambda h: (-(h.tokens_paid * total % paid), h.order))
    for holding in by_remainder[:left]:
        shares[holding.buyer] += 1
    return shares


def buffer_of(minted: int, buffer_rate: Decimal) -> int:
    """``floor(minted * BUFFER_RATE)``: the minted tokens the buffer pool keeps."""
    if not Decimal(0) <= buffer_rate < Decimal(1):
        raise ValueError("the buffer rate lies in [0, 1)")
    return math.floor(minted * buffer_rate)


def settle(
    *,
    holdings: list[Holding],
    token_price_cents: int,
    threshold_tokens: int,
    fee_rate: Decimal,
    v_target_cents: int,
    v_verified_cents: int,
    buffer_rate: Decimal,
) -> Settlement:
    """The settlement of a project whose evaluation was approved."""
    if v_target_cents <= 0:
        raise ValueError("the target value must be positive")
    if not 0 <= v_verified_cents <= v_target_cents:
        raise ValueError("the verified value lies between zero and the target value")
    paid = sum(h.tokens_paid for h in holdings)
    if paid < threshold_tokens:
        raise ValueError("a project below its threshold is refunded, not settled")
    raised = paid * token_price_cents
    cost = threshold_tokens * token_price_cents
    escrow = raised - cost
    minted = paid * v_verified_cents // v_target_cents
    premium = escrow * v_verified_cents // v_target_cents
    refund_total = escrow - premium
    buffer = buffer_of(minted, buffer_rate)
    tokens = split_largest_remainder(minted - buffer, holdings)
    refunds = split_largest_remainder(refund_total, holdings)
    return Settlement(
        tokens_paid=paid,
        raised_cents=raised,
        cost_tranche_cents=cost,
        cost_fee_cents=fee_on(cost, fee_rate),
        escrow_cents=escrow,
        v_target_cents=v_target_cents,
        v_verified_cents=v_verified_cents,
        tokens_minted=minted,
        tokens_buffer=buffer,
        premium_payout_cents=premium,
        premium_fee_cents=fee_on(premium, fee_rate),
        refund_total_cents=refund_total,
        buyers=tuple(
            BuyerShare(h.buyer, h.tokens_paid, tokens[h.buyer], refunds[h.buyer])
            for h in sorted(holdings, key=lambda h: h.order)
        ),
    )
