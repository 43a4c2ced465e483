"""The settlement arithmetic against an independent implementation of product.md's rules
(tests/support/settlement_oracle.py, exact fractions, no shared code)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.settlement import compute
from tests.support import settlement_oracle as oracle


def ours(holdings, price, threshold, fee, v_target, v_verified, buffer="0.05"):
    return compute.settle(
        holdings=[compute.Holding(b, n, o) for b, n, o in holdings],
        token_price_cents=price,
        threshold_tokens=threshold,
        fee_rate=Decimal(fee),
        v_target_cents=v_target,
        v_verified_cents=v_verified,
        buffer_rate=Decimal(buffer),
    )


def agree(holdings, price, threshold, fee, v_target, v_verified, buffer="0.05") -> None:
    mine = ours(holdings, price, threshold, fee, v_target, v_verified, buffer)
    theirs = oracle.settle(
        holdings, price, threshold, Fraction(fee), v_target, v_verified, Fraction(buffer)
    )
    assert mine.tokens_minted == theirs.minted
    assert mine.tokens_buffer == theirs.buffer
    assert mine.premium_paid_out_cents + mine.premium_fee_cents == theirs.premium_payout
    assert mine.premium_fee_cents == theirs.premium_fee
    assert mine.cost_fee_cents == theirs.cost_fee
    assert mine.refund_total_cents == theirs.refund_total
    assert {s.buyer: s.tokens_minted for s in mine.buyers} == theirs.tokens
    assert {s.buyer: s.refund_cents for s in mine.buyers} == theirs.refunds


def test_the_worked_example_agrees_with_the_oracle():
    agree([(1, 1000, 1), (2, 1400, 2)], 2953, 2032, "0.05", 10_000, 7_000)


def test_ratios_that_do_not_divide_and_ties_agree_with_the_oracle():
    # A third verified: nothing divides exactly; three equal holders tie on every remainder.
    agree([(7, 1, 3), (5, 1, 1), (6, 1, 2)], 1001, 1, "0.05", 3, 1)
    agree([(1, 333, 1), (2, 333, 2), (3, 334, 3)], 997, 700, "0.05", 9, 7)
    # A fee that lands on half a cent both ways (250 x 5% = 12.5).
    agree([(1, 10, 1)], 25, 10, "0.05", 1, 1)
    agree([(1, 7, 2), (2, 7, 1)], 250, 1, "0.05", 7, 3)


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(
    holdings=st.lists(st.integers(1, 5000), min_size=1, max_size=8),
    price=st.integers(1, 100_000),
    threshold_share=st.integers(1, 1000),
    fee=st.sampled_from(["0", "0.01", "0.05", "0.075", "0.1"]),
    buffer=st.sampled_from(["0", "0.05", "0.1", "0.333"]),
    v_target=st.integers(1, 10**12),
    verified_share=st.integers(0, 1000),
)
def test_any_settlement_agrees_with_the_oracle(
    holdings, price, threshold_share, fee, buffer, v_target, verified_share
):
    paid = sum(holdings)
    threshold = max(1, paid * threshold_share // 1000)
    rows = [(100 + i, n, i) for i, n in enumerate(holdings)]
    agree(rows, price, threshold, fee, v_target, v_target * verified_share // 1000, buffer)
