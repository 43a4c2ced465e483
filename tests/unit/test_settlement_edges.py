"""The settlement arithmetic's refusals and the figures it reports back, at the edges
(each found by mutation testing: bench/MUTATION.md)."""

from __future__ import annotations

import decimal
import re
from decimal import ROUND_HALF_UP, Decimal

import pytest

from marketplace.core.money import half_even
from marketplace.settlement.compute import Holding, settle, split_largest_remainder

TWO = [Holding(1, 10, 1), Holding(2, 30, 2)]


def args(**overrides):
    values = {
        "holdings": TWO,
        "token_price_cents": 100,
        "threshold_tokens": 30,
        "fee_rate": Decimal("0.05"),
        "v_target_cents": 1000,
        "v_verified_cents": 500,
        "buffer_rate": Decimal("0.05"),
    }
    return values | overrides


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"v_target_cents": 0}, "the target value must be positive"),
        ({"v_target_cents": -1}, "the target value must be positive"),
        ({"v_verified_cents": -1}, "the verified value lies between zero and the target value"),
        ({"v_verified_cents": 1001}, "the verified value lies between zero and the target value"),
        ({"threshold_tokens": 41}, "a project below its threshold is refunded, not settled"),
        ({"buffer_rate": Decimal("-0.01")}, "the buffer rate lies in [0, 1)"),
        ({"buffer_rate": Decimal("1")}, "the buffer rate lies in [0, 1)"),
    ],
)
def test_settle_refuses_what_cannot_be_settled(overrides, reason):
    with pytest.raises(ValueError, match=f"^{re.escape(reason)}$"):
        settle(**args(**overrides))


def test_settle_reports_the_figures_it_was_given():
    result = settle(**args())
    assert (result.tokens_paid, result.v_target_cents, result.v_verified_cents) == (40, 1000, 500)
    assert result.tokens_minted == 20
    assert result.tokens_buffer == 1  # floor(20 x 5%)
    assert [b.tokens_minted for b in result.buyers] == [5, 14]  # 19 split 10 : 30
    assert result.escrow_cents == 1000
    assert result.premium_payout_cents == 500
    assert result.refund_total_cents == 500
    assert [b.buyer for b in result.buyers] == [1, 2]


def test_split_refuses_a_negative_amount_or_an_amount_over_nothing():
    whole = "^cannot split a negative amount, or an amount over nothing$"
    with pytest.raises(ValueError, match=whole):
        split_largest_remainder(-1, TWO)
    with pytest.raises(ValueError, match=whole):
        split_largest_remainder(5, [Holding(1, 0, 1)])


def test_nothing_split_over_nothing_is_nothing_each():
    assert split_largest_remainder(0, [Holding(1, 0, 1), Holding(2, 0, 2)]) == {1: 0, 2: 0}
    assert split_largest_remainder(0, TWO) == {1: 0, 2: 0}


def test_half_even_does_not_depend_on_the_decimal_context():
    with decimal.localcontext(rounding=ROUND_HALF_UP):
        assert half_even(Decimal("2.5")) == 2
        assert half_even(Decimal("0.5")) == 0
