"""Money, percentages and fractions read the way the site prints them, in both languages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marketplace.web.forms import as_fraction, euros_to_cents, percent_to_rate, with_fractions


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("60000", 6_000_000),
        ("60000.5", 6_000_050),
        ("60000,50", 6_000_050),
        ("45,000", 4_500_000),  # English groups
        ("45.000", 4_500_000),  # Dutch groups
        ("45,000.50", 4_500_050),
        ("45.000,50", 4_500_050),
        ("€45,000.00", 4_500_000),  # as the English pages print it
        ("€ 45.000,00", 4_500_000),  # as the Dutch pages print it
        ("€\u00a045.000,00", 4_500_000),
        ("EUR 60 000", 6_000_000),
        ("1.234.567,89", 123_456_789),
        ("0,05", 5),
    ],
)
def test_an_amount_is_read_as_people_write_it(text, cents):
    assert euros_to_cents(text) == cents


@pytest.mark.parametrize(
    "text",
    ["", "abc", "-5", "45,000,50", "45.000.50", "4,5000", "1.2.3", "12345678901", "5 €", "1e5"],
)
def test_anything_else_is_not_an_amount(text):
    assert euros_to_cents(text) is None


@pytest.mark.parametrize(
    ("text", "rate"),
    [("25", "0.25"), ("25%", "0.25"), ("12,5 %", "0.125"), ("12.5", "0.125"), ("0", "0")],
)
def test_a_percentage_with_or_without_its_sign(text, rate):
    assert percent_to_rate(text) == Decimal(rate)


@pytest.mark.parametrize(
    ("text", "fraction"),
    [("30%", "0.3"), ("30 %", "0.3"), ("12,5%", "0.125"), ("0,3", "0.3"), ("0.3", "0.3")],
)
def test_a_fraction_may_be_written_as_a_percentage(text, fraction):
    assert as_fraction(text) == fraction


def test_only_fraction_fields_are_read_as_fractions():
    form = {"lines-0-deadweight": "30%", "lines-0-quantity": "30", "title": "30%", "haircut": "1"}
    assert with_fractions(form) == {
        "lines-0-deadweight": "0.3",
        "lines-0-quantity": "30",
        "title": "30%",
        "haircut": "1",
    }
    assert as_fraction("a third") == "a third"  # left for the schema to name
