"""Properties of the valuation method over random inputs (hypothesis)."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.valuation_data import PROXIES
from valuation import EvidenceGrade, LineInput, MethodParameters, sensitivity, value

codes = st.sampled_from(sorted(PROXIES))
rates = st.decimals(min_value=0, max_value=Decimal("0.95"), places=3)
grades = st.sampled_from(list(EvidenceGrade))
quantities = st.integers(min_value=0, max_value=100_000)
years = st.integers(min_value=2000, max_value=2060)
discount_rates = st.decimals(min_value=0, max_value=Decimal("0.2"), places=4)
ADJUSTMENTS = ("deadweight", "displacement", "attribution", "drop_off")


@st.composite
def lines(draw):
    return LineInput(
        PROXIES[draw(codes)],
        draw(quantities),
        draw(grades),
        **{name: draw(st.none() | rates) for name in ADJUSTMENTS},
        duration_years=draw(st.none() | st.integers(min_value=1, max_value=10)),
    )


@st.composite
def parameters(draw):
    return MethodParameters(valuation_year=draw(years), discount_rate=draw(discount_rates))


line_lists = st.lists(lines(), min_size=1, max_size=6)


@given(line_lists, parameters())
def test_conservative_value_never_exceeds_present_value(items, params):
    valuation = value(items, params)

    for line in valuation.lines:
        assert line.conservative_value_cents <= line.present_value_cents
    assert valuation.total_conservative_value_cents <= valuation.total_present_value_cents


@given(lines(), parameters(), st.sampled_from(ADJUSTMENTS), rates, rates)
def test_present_value_never_increases_when_an_adjustment_increases(item, params, name, a, b):
    low, high = min(a, b), max(a, b)
    at = lambda rate: value([LineInput(**{**item.__dict__, name: rate})], params)  # noqa: E731

    assert at(high).total_present_value_cents <= at(low).total_present_value_cents


@given(lines(), years, discount_rates, discount_rates)
def test_present_value_never_increases_when_the_discount_rate_increases(item, year, a, b):
    low, high = min(a, b), max(a, b)
    at = lambda rate: value([item], MethodParameters(valuation_year=year, discount_rate=rate))  # noqa: E731

    assert at(high).total_present_value_cents <= at(low).total_present_value_cents


@given(
    lines(),
    parameters(),
    st.integers(min_value=0, max_value=50_000),
    st.integers(min_value=0, max_value=50_000),
)
def test_present_value_is_linear_in_quantity_within_a_cent(item, params, q1, q2):
    at = lambda q: value([LineInput(**{**item.__dict__, "quantity": q})], params)  # noqa: E731

    combined = at(q1 + q2).lines[0]
    parts = at(q1).lines[0], at(q2).lines[0]

    assert abs(combined.present_value_cents - sum(p.present_value_cents for p in parts)) <= 1
    assert (
        abs(combined.conservative_value_cents - sum(p.conservative_value_cents for p in parts)) <= 1
    )


@given(line_lists, parameters(), st.sampled_from([100, 5000, 10000, 25000]))
def test_tokens_are_the_floor_of_total_conservative_cents_over_the_token_value(
    items, params, token_value
):
    params = MethodParameters(**{**params.__dict__, "token_value_cents": token_value})

    valuation = value(items, params)

    assert valuation.tokens_total == valuation.total_conservative_value_cents // token_value
    assert valuation.tokens_total * token_value <= valuation.total_conservative_value_cents
    assert (valuation.tokens_total + 1) * token_value > valuation.total_conservative_value_cents


@settings(max_examples=50)
@given(line_lists, parameters())
def test_the_central_value_lies_within_each_sensitivity_bar(items, params):
    central = value(items, params).total_present_value_cents

    for row in sensitivity(items, params):
        low, high = sorted([row.low_present_value_cents, row.high_present_value_cents])
        assert low <= central <= high
