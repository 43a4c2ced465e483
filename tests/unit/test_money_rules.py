"""The platform fee rounds half to even, to the cent (product.md "Money and tokens")."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marketplace.core.money import fee_on, half_even

FIVE_PERCENT = Decimal("0.05")


@pytest.mark.parametrize(
    ("cents", "fee"),
    [
        (250, 12),  # 12.5 -> 12: a tie goes to the even cent (half-up would give 13)
        (350, 18),  # 17.5 -> 18
        (50, 2),  # 2.5 -> 2
        (30, 2),  # 1.5 -> 2
        (10, 0),  # 0.5 -> 0
        (251, 13),  # 12.55 -> 13
        (6_000_496, 300_025),  # 300,024.8 -> 300,025
    ],
)
def test_the_fee_rounds_half_to_even(cents, fee):
    assert fee_on(cents, FIVE_PERCENT) == fee


def test_half_even_on_both_sides_of_zero():
    assert [half_even(Decimal(x)) for x in ("0.5", "1.5", "2.5", "-0.5", "-1.5", "2.4999")] == [
        0,
        2,
        2,
        0,
        -2,
        2,
    ]
