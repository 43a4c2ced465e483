"""Token price and threshold (product.md "Money and tokens")."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from marketplace.projects.pricing import price_tokens


def test_the_worked_example_prices_2953_with_threshold_2032():
    pricing = price_tokens(6_000_000, Decimal("0.25"), 2540)

    assert (pricing.token_price_cents, pricing.threshold_tokens) == (2953, 2032)


def test_a_valuation_without_tokens_cannot_be_priced():
    assert price_tokens(6_000_000, Decimal("0.25"), 0) is None


@given(
    st.integers(min_value=1, max_value=10**12),
    st.decimals(min_value=0, max_value=1, places=4),
    st.integers(min_value=1, max_value=10**7),
)
def test_every_token_sold_covers_cost_and_premium_and_the_threshold_covers_cost(
    budget, premium, tokens
):
    pricing = price_tokens(budget, premium, tokens)
    price, threshold = pricing.token_price_cents, pricing.threshold_tokens

    assert price * tokens >= budget * (1 + premium)
    assert (price - 1) * tokens < budget * (1 + premium)  # the smallest such price
    assert threshold * price >= budget
    assert (threshold - 1) * price < budget
    assert threshold <= tokens
