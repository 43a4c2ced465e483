"""Social value per euro, by product.md's two formulas, with figures worked by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from valuation import value_for_money


def test_before_settlement_the_target_value_over_what_every_token_raises():
    # 7,500,000 cents raised when every token sells (6,000,000 x 1.25); V_target 18,000,000
    assert value_for_money.expected(18_000_000, 6_000_000, Decimal("0.25")) == Decimal("2.4000")
    # 10,000,000 / 7,500,000 = 1.33333... -> 1.3333
    assert value_for_money.expected(10_000_000, 6_000_000, Decimal("0.25")) == Decimal("1.3333")


def test_after_settlement_the_verified_value_over_what_buyers_kept_paying():
    # the worked example: raised 7,087,200, refunds 326,012 -> 6,761,188 paid
    # V_verified 70% of V_target 18,000,000 = 12,600,000: 12,600,000 / 6,761,188 = 1.86358...
    assert value_for_money.verified(12_600_000, 7_087_200, 326_012) == Decimal("1.8636")


def test_a_half_is_rounded_to_even():
    assert value_for_money.expected(10, 200_000, Decimal(0)) == Decimal("0.0000")  # 0.00005
    assert value_for_money.expected(30, 200_000, Decimal(0)) == Decimal("0.0002")  # 0.00015


@pytest.mark.parametrize(("raised", "refunded"), [(0, 0), (100, 100)])
def test_nothing_paid_has_no_value_per_euro(raised, refunded):
    assert value_for_money.verified(1_000, raised, refunded) is None
    assert value_for_money.expected(1_000, 0, Decimal("0.25")) is None
