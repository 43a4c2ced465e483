"""The engine's contract beyond the worked examples: exact refusals, snapshots, contexts.

Written against the mutants `make mutation` found alive (bench/MUTATION.md): each
test pins a message, a boundary, a field of a snapshot or a rounding rule that a
changed engine would get wrong while the worked examples still came out right.
"""

import decimal
from dataclasses import replace
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal

import pytest

from tests.unit.valuation_data import PROXIES
from valuation import (
    AdjustmentOverrides,
    EvidenceGrade,
    LineInput,
    MethodParameters,
    OutcomeProxy,
    Per,
    ValuationInputError,
    sensitivity,
    to_cents,
    value,
    with_quantities,
)

PARAMS = MethodParameters(valuation_year=2027)
WELLBY = PROXIES["WELLBY"]
WORK = PROXIES["EMP_BIJSTAND_TO_WORK"]
ZERO = Decimal(0)


def refusal(lines, params=PARAMS):
    with pytest.raises(ValuationInputError) as refused:
        value(lines, params)
    return refused.value.errors


def accepted(lines, params=PARAMS):
    return value(lines, params).total_present_value_cents >= 0


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("lines", "params", "errors"),
    [
        ([], PARAMS, {"lines": ["Give at least one outcome line."]}),
        ([LineInput(WELLBY, -1)], PARAMS, {"lines.0.quantity": ["Must be at least 0."]}),
        ([LineInput(WELLBY, 1.0)], PARAMS, {"lines.0.quantity": ["Must be a whole number."]}),
        ([LineInput(WELLBY, True)], PARAMS, {"lines.0.quantity": ["Must be a whole number."]}),
        (
            [LineInput(WELLBY, 1, grade="E")],
            PARAMS,
            {"lines.0.evidence_grade": ["Must be one of A, B, C, D."]},
        ),
        (
            [LineInput(WELLBY, 1)],
            MethodParameters(valuation_year=2027, fx={"EUR": Decimal(1)}),
            {"lines.0.outcome_type": ["No exchange rate for GBP."]},
        ),
        (
            [LineInput(WORK, 1, duration_years=0)],
            PARAMS,
            {"lines.0.duration_years": ["Must be at least 1."]},
        ),
        (
            [LineInput(WORK, 1, duration_years=2.0)],
            PARAMS,
            {"lines.0.duration_years": ["Must be a whole number."]},
        ),
        (
            [LineInput(WELLBY, 1)],
            MethodParameters(valuation_year=1899),
            {"valuation_year": ["Must be at least 1900."]},
        ),
        (
            [LineInput(WELLBY, 1)],
            MethodParameters(valuation_year=2201),
            {"valuation_year": ["Must be at most 2200."]},
        ),
        (
            [LineInput(WELLBY, 1)],
            MethodParameters(valuation_year="2027"),
            {"valuation_year": ["Must be a whole number."]},
        ),
        (
            [LineInput(WELLBY, 1)],
            MethodParameters(valuation_year=2027, inflation=Decimal("-0.51")),
            {"inflation": ["Must be between -0.5 and 1."]},
        ),
        (
            [LineInput(WELLBY, 1)],
            MethodParameters(valuation_year=2027, inflation=Decimal("1.01")),
            {"inflation": ["Must be between -0.5 and 1."]},
        ),
        (
            [LineInput(WELLBY, 1)],
            MethodParameters(valuation_year=2027, inflation=Decimal("NaN")),
            {"inflation": ["Must be a decimal number."]},
        ),
        (
            [LineInput(WELLBY, 1)],
            MethodParameters(valuation_year=2027, inflation=0.02),
            {"inflation": ["Must be a decimal number."]},
        ),
        (
            [LineInput(WELLBY, 1)],
            MethodParameters(valuation_year=2027, discount_rate=Decimal("-0.0001")),
            {"discount_rate": ["Must be between 0 and 1."]},
        ),
        (
            [LineInput(WELLBY, 1)],
            MethodParameters(valuation_year=2027, discount_rate=Decimal("1.0001")),
            {"discount_rate": ["Must be between 0 and 1."]},
        ),
        (
            [LineInput(WELLBY, 1)],
            MethodParameters(valuation_year=2027, token_value_cents=0),
            {"token_value_cents": ["Must be at least 1."]},
        ),
        (
            [LineInput(replace(WELLBY, haircut=Decimal("0.00009")), 1)],
            PARAMS,
            {"lines.0.proxy.haircut": ["Must be between 0.0001 and 1."]},
        ),
        (
            [LineInput(replace(WELLBY, haircut=Decimal("1.0001")), 1)],
            PARAMS,
            {"lines.0.proxy.haircut": ["Must be between 0.0001 and 1."]},
        ),
        (
            [LineInput(replace(WELLBY, proxy_value=Decimal("-0.01")), 1)],
            PARAMS,
            {"lines.0.proxy.proxy_value": ["Must not be negative."]},
        ),
        (
            [LineInput(replace(WELLBY, proxy_value=Decimal("Infinity")), 1)],
            PARAMS,
            {"lines.0.proxy.proxy_value": ["Must not be negative."]},
        ),
    ],
)
def test_each_refusal_names_its_field_with_its_exact_message(lines, params, errors):
    assert refusal(lines, params) == errors


@pytest.mark.parametrize("name", ["deadweight", "displacement", "attribution", "drop_off"])
def test_each_adjustment_is_bounded_by_0_and_0_95(name):
    assert refusal([LineInput(WORK, 1, **{name: Decimal("0.9501")})]) == {
        f"lines.0.{name}": ["Must be between 0 and 0.95."]
    }
    assert refusal([LineInput(WORK, 1, **{name: Decimal("-0.0001")})]) == {
        f"lines.0.{name}": ["Must be between 0 and 0.95."]
    }
    assert refusal([LineInput(WORK, 1, **{name: Decimal("sNaN")})]) == {
        f"lines.0.{name}": ["Must be a decimal number."]
    }
    assert accepted([LineInput(WORK, 1, **{name: Decimal("0.95")})])
    assert accepted([LineInput(WORK, 1, **{name: Decimal("0")})])


def test_the_limits_themselves_are_accepted():
    for params in (
        MethodParameters(valuation_year=1900),
        MethodParameters(valuation_year=2200),
        MethodParameters(valuation_year=2027, inflation=Decimal("-0.5")),
        MethodParameters(valuation_year=2027, inflation=Decimal("1")),
        MethodParameters(valuation_year=2027, discount_rate=Decimal("0")),
        MethodParameters(valuation_year=2027, discount_rate=Decimal("1")),
        MethodParameters(valuation_year=2027, token_value_cents=1),
    ):
        assert accepted([LineInput(WORK, 1)], params)
    assert accepted([LineInput(WORK, 0, duration_years=1)])
    assert accepted([LineInput(replace(WORK, haircut=Decimal("0.0001"), proxy_value=ZERO), 1)])
    assert accepted([LineInput(replace(WORK, haircut=Decimal("1")), 1)])


def test_every_problem_is_reported_at_once_and_by_line():
    bad = LineInput(WORK, -2, grade="Z", deadweight=Decimal("2"), duration_years=0)
    errors = refusal(
        [LineInput(WELLBY, 1), bad],
        MethodParameters(valuation_year=True, discount_rate=Decimal(-1), token_value_cents=-5),
    )

    assert errors == {
        "valuation_year": ["Must be a whole number."],
        "discount_rate": ["Must be between 0 and 1."],
        "token_value_cents": ["Must be at least 1."],
        "lines.1.quantity": ["Must be at least 0."],
        "lines.1.evidence_grade": ["Must be one of A, B, C, D."],
        "lines.1.deadweight": ["Must be between 0 and 0.95."],
        "lines.1.duration_years": ["Must be at least 1."],
    }


def test_the_refusal_reads_as_one_sentence_per_field():
    error = ValuationInputError({"a": ["One.", "Two."], "b": ["Three."]})

    assert str(error) == "a: One. Two.; b: Three."
    assert error.errors == {"a": ["One.", "Two."], "b": ["Three."]}


# ------------------------------------------------------------------ snapshots


def test_a_proxy_snapshot_is_exact_and_reads_back_for_every_catalogue_type():
    assert WORK.as_dict() == {
        "code": "EMP_BIJSTAND_TO_WORK",
        "proxy_value": str(WORK.proxy_value),
        "currency": WORK.currency,
        "per": "year",
        "price_year": WORK.price_year,
        "haircut": str(WORK.haircut),
        "deadweight": str(WORK.deadweight),
        "displacement": str(WORK.displacement),
        "attribution": str(WORK.attribution),
        "drop_off": str(WORK.drop_off),
        "duration_years": WORK.duration_years,
    }
    for proxy in PROXIES.values():
        snapshot = proxy.as_dict()
        assert OutcomeProxy.from_dict(snapshot) == proxy
        assert all(isinstance(v, str | int) for v in snapshot.values())


def test_a_proxy_reads_back_from_stored_json_strings():
    stored = {
        "code": "X",
        "proxy_value": "123.45",
        "currency": "EUR",
        "per": "once",
        "price_year": "2020",
        "haircut": "0.8",
        "deadweight": "0.1",
        "displacement": "0.2",
        "attribution": "0.3",
        "drop_off": "0.4",
        "duration_years": "3",
    }

    assert OutcomeProxy.from_dict(stored) == OutcomeProxy(
        code="X",
        proxy_value=Decimal("123.45"),
        currency="EUR",
        per=Per.ONCE,
        price_year=2020,
        haircut=Decimal("0.8"),
        deadweight=Decimal("0.1"),
        displacement=Decimal("0.2"),
        attribution=Decimal("0.3"),
        drop_off=Decimal("0.4"),
        duration_years=3,
    )


def test_the_parameters_snapshot_is_exact_and_reads_back():
    params = MethodParameters(
        valuation_year=2030,
        inflation=Decimal("0.031"),
        discount_rate=Decimal("0.04"),
        fx={"GBP": Decimal("1.2"), "EUR": Decimal("1")},
        token_value_cents=2500,
    )
    snapshot = params.as_dict()

    assert snapshot == {
        "valuation_year": 2030,
        "inflation": "0.031",
        "discount_rate": "0.04",
        "fx": {"EUR": "1", "GBP": "1.2"},
        "token_value_cents": 2500,
    }
    assert list(snapshot["fx"]) == ["EUR", "GBP"]
    back = MethodParameters.from_dict({**snapshot, "valuation_year": "2030"})
    assert back == params
    assert back.token_value_cents == 2500 and isinstance(back.token_value_cents, int)


def test_overrides_lists_only_what_a_line_replaces():
    assert AdjustmentOverrides().overrides() == {}
    assert AdjustmentOverrides(attribution=Decimal("0.2"), duration_years=3).overrides() == {
        "attribution": Decimal("0.2"),
        "duration_years": 3,
    }
    everything = AdjustmentOverrides(
        deadweight=Decimal("0.1"),
        displacement=Decimal("0.2"),
        attribution=Decimal("0.3"),
        drop_off=Decimal("0"),
        duration_years=1,
    )
    assert everything.overrides() == {
        "deadweight": Decimal("0.1"),
        "displacement": Decimal("0.2"),
        "attribution": Decimal("0.3"),
        "drop_off": Decimal("0"),
        "duration_years": 1,
    }


def test_a_valued_line_reports_every_factor_under_its_name():
    valuation = value([LineInput(WORK, 20, EvidenceGrade.B)], PARAMS)
    line = valuation.lines[0]

    assert line.as_dict() == {
        "outcome_type": "EMP_BIJSTAND_TO_WORK",
        "quantity": 20,
        "evidence_grade": "B",
        "confidence": "0.85",
        "per": "year",
        "deadweight": str(WORK.deadweight),
        "displacement": str(WORK.displacement),
        "attribution": str(WORK.attribution),
        "drop_off": str(WORK.drop_off),
        "duration_years": WORK.duration_years,
        "fx_rate": "1",
        "inflation_factor": str(line.inflation_factor),
        "unit_value": str(line.unit_value),
        "annuity_factor": str(line.annuity_factor),
        "gross_cents": 34184881,
        "year1_cents": 18459836,
        "present_value_cents": 38874320,
        "conservative_value_cents": to_cents(line.present_value * Decimal("0.85")),
    }
    assert valuation.as_dict() == {
        "method_version": 1,
        "parameters": PARAMS.as_dict(),
        "lines": [line.as_dict()],
        "total_present_value_cents": 38874320,
        "total_conservative_value_cents": line.conservative_value_cents,
        "tokens_total": line.conservative_value_cents // 10000,
    }


@pytest.mark.parametrize("name", ["deadweight", "displacement", "attribution", "drop_off"])
def test_a_line_override_of_one_adjustment_is_used_alone(name):
    changed = value([LineInput(WORK, 20, **{name: Decimal("0.5")})], PARAMS).lines[0]
    default = value([LineInput(WORK, 20)], PARAMS).lines[0]

    assert getattr(changed, name) == Decimal("0.5")
    for other in {"deadweight", "displacement", "attribution", "drop_off"} - {name}:
        assert getattr(changed, other) == getattr(default, other)
    assert changed.present_value_cents != default.present_value_cents


def test_other_quantities_keep_everything_else_and_must_match_the_lines():
    lines = [LineInput(WORK, 20, EvidenceGrade.A, attribution=Decimal("0.4"))]

    assert with_quantities(lines, [3]) == [
        LineInput(WORK, 3, EvidenceGrade.A, attribution=Decimal("0.4"))
    ]
    with pytest.raises(ValueError):
        with_quantities(lines, [3, 4])


# ------------------------------------------------------------------ arithmetic


def test_cents_round_half_even_whatever_the_callers_rounding():
    with decimal.localcontext(rounding=ROUND_HALF_UP):
        assert [to_cents(Decimal(x)) for x in ("0.125", "0.135", "0.005", "-0.125")] == [
            12,
            14,
            0,
            -12,
        ]


def test_cents_round_once_even_for_a_figure_longer_than_the_default_context():
    # 35.4999...9 cents with 33 significant digits: the default 28-digit context
    # rounded it to 35.5 first, and half-even then gave 36 (found by this test)
    figure = Decimal("0.354" + "9" * 30)

    assert to_cents(figure) == 35
    assert to_cents(Decimal("-0.354" + "9" * 30)) == -35


def test_the_engine_computes_in_its_own_context_whatever_the_callers():
    lines = [LineInput(WORK, 20), LineInput(PROXIES["YOUTH_NEET_TO_EET"], 7)]
    expected = value(lines, PARAMS).as_dict()

    for context in (
        decimal.Context(prec=50, rounding=ROUND_DOWN),
        decimal.Context(prec=50, rounding=ROUND_UP),
        decimal.Context(prec=6, rounding=ROUND_HALF_UP),
    ):
        with decimal.localcontext(context):
            assert value(lines, PARAMS).as_dict() == expected
            assert sensitivity(lines, PARAMS) == sensitivity_in_default(lines)


def sensitivity_in_default(lines):
    with decimal.localcontext(decimal.Context(prec=28)):
        return sensitivity(lines, PARAMS)


def test_one_more_year_adds_the_discounted_next_year():
    lines = [LineInput(WORK, 20)]
    rows = {row.parameter: row for row in sensitivity(lines, PARAMS)}
    longer = value([LineInput(WORK, 20, duration_years=WORK.duration_years + 1)], PARAMS)

    assert rows["duration_years"].high_present_value_cents == longer.total_present_value_cents
    central = value(lines, PARAMS).total_present_value_cents
    assert rows["duration_years"].high_present_value_cents > central
