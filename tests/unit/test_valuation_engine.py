"""Valuation method version 1, checked against the worked examples to the cent."""

import decimal
from decimal import Decimal

import pytest

from tests.unit.valuation_data import PROXIES
from valuation import (
    CONFIDENCE,
    METHOD_VERSION,
    PRECISION,
    EvidenceGrade,
    LineInput,
    MethodParameters,
    ValuationInputError,
    sensitivity,
    to_cents,
    value,
    with_quantities,
)

PARAMS = MethodParameters(valuation_year=2027)


def line(code, quantity, grade=EvidenceGrade.C, **overrides):
    return LineInput(PROXIES[code], quantity, grade, **overrides)


@pytest.mark.parametrize(
    ("code", "quantity", "grade", "figures"),
    [
        ("EMP_BIJSTAND_TO_WORK", 20, "C", (34184881, 18459836, 38874320, 27212024)),
        ("YOUTH_NEET_TO_EET", 10, "C", (5627021, 2836019, 4808047, 3365633)),
        ("EVICTION_PREVENTED", 5, "B", (4414905, 2472347, 2417943, 2055252)),
    ],
)
def test_the_worked_examples_come_out_to_the_cent(code, quantity, grade, figures):
    result = value([line(code, quantity, EvidenceGrade(grade))], PARAMS).lines[0]

    assert (
        result.gross_cents,
        result.year1_cents,
        result.present_value_cents,
        result.conservative_value_cents,
    ) == figures


def test_the_worked_project_gives_305_776_57_and_3_057_tokens():
    valuation = value([line("EMP_BIJSTAND_TO_WORK", 20), line("YOUTH_NEET_TO_EET", 10)], PARAMS)

    assert valuation.total_conservative_value_cents == 30577657
    assert valuation.tokens_total == 3057
    assert valuation.method_version == METHOD_VERSION == 1


def test_totals_are_sums_of_the_rounded_lines():
    valuation = value(
        [
            line("EMP_BIJSTAND_TO_WORK", 20),
            line("YOUTH_NEET_TO_EET", 10),
            line("EVICTION_PREVENTED", 5, EvidenceGrade.B),
        ],
        PARAMS,
    )

    assert valuation.total_present_value_cents == sum(
        x.present_value_cents for x in valuation.lines
    )
    assert valuation.total_conservative_value_cents == 27212024 + 3365633 + 2055252


def test_every_figure_can_be_recomputed_from_the_factors_it_reports():
    result = value([line("YOUTH_NEET_TO_EET", 10)], PARAMS).lines[0]
    proxy = PROXIES["YOUTH_NEET_TO_EET"]

    with decimal.localcontext(prec=PRECISION):
        recompute_and_compare(result, proxy)
    record = value([line("YOUTH_NEET_TO_EET", 10)], PARAMS).as_dict()
    assert record["method_version"] == 1
    assert record["parameters"] == {
        "valuation_year": 2027,
        "inflation": "0.02",
        "discount_rate": "0.0225",
        "fx": {"EUR": "1", "GBP": "1.18"},
        "token_value_cents": 10000,
    }
    assert record["lines"][0]["unit_value"] == str(result.unit_value)


def recompute_and_compare(result, proxy):
    assert result.fx_rate == Decimal("1.18")
    assert result.inflation_factor == Decimal("1.02") ** 17
    assert (
        result.unit_value
        == proxy.proxy_value * result.fx_rate * proxy.haircut * result.inflation_factor
    )
    assert result.gross == 10 * result.unit_value
    assert result.year1 == result.gross * (1 - result.deadweight) * (1 - result.displacement) * (
        1 - result.attribution
    )
    assert result.present_value == result.year1 * result.annuity_factor
    assert result.conservative_value == result.present_value * CONFIDENCE[EvidenceGrade.C]


def test_a_one_off_outcome_lasts_one_year_without_drop_off_whatever_is_asked():
    plain = value([line("EVICTION_PREVENTED", 5)], PARAMS).lines[0]
    asked = value(
        [line("EVICTION_PREVENTED", 5, duration_years=4, drop_off=Decimal("0.5"))], PARAMS
    ).lines[0]

    assert (asked.duration_years, asked.drop_off) == (1, 0)
    assert asked.present_value_cents == plain.present_value_cents


def test_overrides_replace_the_catalogue_defaults():
    default = value([line("EMP_BIJSTAND_TO_WORK", 20)], PARAMS).lines[0]
    stricter = value([line("EMP_BIJSTAND_TO_WORK", 20, deadweight=Decimal("0.5"))], PARAMS).lines[0]

    assert stricter.deadweight == Decimal("0.5")
    assert stricter.year1_cents == to_cents(default.year1 * Decimal("0.5") / Decimal("0.75"))


@pytest.mark.parametrize(
    ("grade", "share"), [("A", "1.00"), ("B", "0.85"), ("C", "0.70"), ("D", "0.50")]
)
def test_the_evidence_grade_sets_the_confidence(grade, share):
    result = value([line("EMP_BIJSTAND_TO_WORK", 20, EvidenceGrade(grade))], PARAMS).lines[0]

    with decimal.localcontext(prec=PRECISION):
        assert result.conservative_value == result.present_value * Decimal(share)


def test_verified_quantities_value_the_same_lines():
    lines = [line("EMP_BIJSTAND_TO_WORK", 20), line("YOUTH_NEET_TO_EET", 10)]

    verified = value(with_quantities(lines, [14, 7]), PARAMS)

    assert [x.quantity for x in verified.lines] == [14, 7]
    assert verified.lines[0].unit_value == value(lines, PARAMS).lines[0].unit_value


@pytest.mark.parametrize(
    ("lines", "params", "field"),
    [
        ([], PARAMS, "lines"),
        ([LineInput(PROXIES["WELLBY"], -1)], PARAMS, "lines.0.quantity"),
        ([LineInput(PROXIES["WELLBY"], 1.5)], PARAMS, "lines.0.quantity"),
        (
            [LineInput(PROXIES["WELLBY"], 1, deadweight=Decimal("0.96"))],
            PARAMS,
            "lines.0.deadweight",
        ),
        (
            [LineInput(PROXIES["WELLBY"], 1, attribution=Decimal("-0.01"))],
            PARAMS,
            "lines.0.attribution",
        ),
        (
            [LineInput(PROXIES["EMP_BIJSTAND_TO_WORK"], 1, duration_years=0)],
            PARAMS,
            "lines.0.duration_years",
        ),
        ([LineInput(PROXIES["WELLBY"], 1, grade="E")], PARAMS, "lines.0.evidence_grade"),
        (
            [LineInput(PROXIES["WELLBY"], 1)],
            MethodParameters(valuation_year=2027, fx={"EUR": 1}),
            "lines.0.outcome_type",
        ),
        (
            [LineInput(PROXIES["WELLBY"], 1)],
            MethodParameters(valuation_year=2027, discount_rate=Decimal("-0.01")),
            "discount_rate",
        ),
    ],
)
def test_invalid_input_names_the_field(lines, params, field):
    with pytest.raises(ValuationInputError) as refused:
        value(lines, params)

    assert field in refused.value.errors


def test_sensitivity_moves_one_parameter_at_a_time():
    lines = [line("EMP_BIJSTAND_TO_WORK", 20), line("YOUTH_NEET_TO_EET", 10)]
    central = value(lines, PARAMS).total_present_value_cents

    rows = {row.parameter: row for row in sensitivity(lines, PARAMS)}

    assert list(rows) == [
        "proxy_value",
        "deadweight",
        "displacement",
        "attribution",
        "drop_off",
        "duration_years",
        "discount_rate",
    ]
    assert (
        rows["proxy_value"].low_present_value_cents
        < central
        < rows["proxy_value"].high_present_value_cents
    )
    for name in ("deadweight", "displacement", "attribution", "drop_off", "discount_rate"):
        assert rows[name].low_present_value_cents > central > rows[name].high_present_value_cents
    shorter = value(
        [
            line("EMP_BIJSTAND_TO_WORK", 20, duration_years=2),
            line("YOUTH_NEET_TO_EET", 10, duration_years=1),
        ],
        PARAMS,
    )
    assert rows["duration_years"].low_present_value_cents == shorter.total_present_value_cents


def test_sensitivity_clips_adjustments_and_the_discount_rate():
    lines = [line("ROUGH_SLEEPER_HOUSED", 3, displacement=Decimal("0"))]
    params = MethodParameters(valuation_year=2027, discount_rate=Decimal("0.005"))
    central = value(lines, params).total_present_value_cents

    rows = {row.parameter: row for row in sensitivity(lines, params)}

    # displacement 0 cannot go lower: its low setting is the central value
    assert rows["displacement"].low_present_value_cents == central
    # the discount rate stops at 0
    undiscounted = value(lines, MethodParameters(valuation_year=2027, discount_rate=Decimal(0)))
    assert rows["discount_rate"].low_present_value_cents == undiscounted.total_present_value_cents


def test_one_off_lines_do_not_move_with_duration_or_drop_off():
    lines = [line("WELLBY", 40)]
    central = value(lines, PARAMS).total_present_value_cents

    rows = {row.parameter: row for row in sensitivity(lines, PARAMS)}

    for name in ("duration_years", "drop_off"):
        assert rows[name].low_present_value_cents == central == rows[name].high_present_value_cents
