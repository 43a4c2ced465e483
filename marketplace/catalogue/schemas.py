"""Schemas for the outcome catalogue and the valuation preview.

Decimals travel as strings ("0.275") so no value passes through a binary
float; money is integer cents in fields ending ``_cents``.
"""

from __future__ import annotations

from decimal import Decimal

import marshmallow as ma

from marketplace.core import validate
from marketplace.core.schemas import SingleLine, WholeNumber
from valuation import SENSITIVITY_PARAMETERS, EvidenceGrade, Per

ADJUSTMENT_RANGE = validate.Range(min=Decimal(0), max=Decimal("0.95"))
MAX_PREVIEW_LINES = 1000
GRADES = [g.value for g in EvidenceGrade]


def _decimal(**kwargs) -> ma.fields.Decimal:
    return ma.fields.Decimal(as_string=True, allow_nan=False, **kwargs)


class OutcomeTypeSchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"example": "EMP_BIJSTAND_TO_WORK"})
    name = ma.fields.String(required=True)
    unit = ma.fields.String(required=True)
    proxy_value = _decimal(required=True, metadata={"description": "In `currency`, per unit."})
    currency = ma.fields.String(required=True)
    per = ma.fields.String(required=True, metadata={"description": "`year` or `once`"})
    price_year = ma.fields.Integer(required=True)
    basis = ma.fields.String(required=True)
    haircut = _decimal(required=True)
    deadweight = _decimal(required=True)
    displacement = _decimal(required=True)
    attribution = _decimal(required=True)
    drop_off = _decimal(required=True)
    duration_years = ma.fields.Integer(required=True)
    source = ma.fields.String(required=True)
    url = ma.fields.String(required=True)
    licence = ma.fields.String(required=True)
    retired_at = ma.fields.AwareDateTime(allow_none=True)
    esrs_topic = ma.fields.String(
        required=True, metadata={"description": "S1-S4; empty when not tagged", "example": "S3"}
    )
    esrs_disclosure = ma.fields.String(required=True, metadata={"example": "S3-4"})
    sdg_targets = ma.fields.Function(
        lambda t: t.sdg_target_list,
        required=True,
        metadata={"description": "SDG targets", "example": ["8.5", "8.6"]},
    )
    tags_source = ma.fields.String(required=True)


class OutcomeTypeQuerySchema(ma.Schema):
    q = SingleLine(validate=validate.Length(max=100), metadata={"description": "Text search"})
    basis = ma.fields.String(validate=validate.OneOf(["fiscal", "economic", "social", "wellbeing"]))
    per = ma.fields.String(validate=validate.OneOf([p.value for p in Per]))
    include_retired = ma.fields.Boolean(load_default=False)


class NewOutcomeTypeSchema(ma.Schema):
    code = SingleLine(
        required=True,
        validate=validate.Regexp(
            r"^[A-Za-z][A-Za-z0-9_]{2,63}$",
            error="Use 3 to 64 letters, digits or underscores, starting with a letter.",
        ),
    )
    name = SingleLine(required=True, validate=validate.Length(min=3, max=200))
    unit = SingleLine(required=True, validate=validate.Length(min=1, max=50))
    proxy_value = _decimal(
        required=True, validate=validate.Range(min=Decimal("0.01"), max=Decimal("1e12"))
    )
    currency = SingleLine(required=True, validate=validate.Length(equal=3))
    per = ma.fields.String(required=True, validate=validate.OneOf([p.value for p in Per]))
    price_year = WholeNumber(required=True, validate=validate.Range(min=1900, max=2200))
    basis = SingleLine(required=True, validate=validate.Length(min=1, max=50))
    haircut = _decimal(required=True, validate=validate.Range(min=Decimal("0.01"), max=Decimal(1)))
    deadweight = _decimal(required=True, validate=ADJUSTMENT_RANGE)
    displacement = _decimal(required=True, validate=ADJUSTMENT_RANGE)
    attribution = _decimal(required=True, validate=ADJUSTMENT_RANGE)
    drop_off = _decimal(required=True, validate=ADJUSTMENT_RANGE)
    duration_years = WholeNumber(required=True, validate=validate.Range(min=1, max=50))
    source = SingleLine(required=True, validate=validate.Length(min=3, max=500))
    url = SingleLine(
        required=True, validate=[validate.Length(max=500), validate.URL(schemes={"https", "http"})]
    )
    licence = SingleLine(required=True, validate=validate.Length(min=2, max=200))
    # Reporting tags: all four, or none (checked with the value bank's rules).
    esrs_topic = SingleLine(load_default="", validate=validate.Length(max=2))
    esrs_disclosure = SingleLine(load_default="", validate=validate.Length(max=8))
    sdg_targets = ma.fields.List(
        SingleLine(validate=validate.Length(max=5)),
        load_default=list,
        validate=validate.Length(max=10),
        metadata={"example": ["8.5", "8.6"]},
    )
    tags_source = SingleLine(load_default="", validate=validate.Length(max=500))

    @ma.post_load
    def _normalise(self, data, **kwargs):
        return {
            **data,
            "code": data["code"].upper(),
            "currency": data["currency"].upper(),
            "per": Per(data["per"]),
            "esrs_topic": data["esrs_topic"].upper(),
            "esrs_disclosure": data["esrs_disclosure"].upper(),
            "sdg_targets": " ".join(data["sdg_targets"]),
        }


class PreviewLineSchema(ma.Schema):
    outcome_type = SingleLine(required=True, validate=validate.Length(min=1, max=64))
    quantity = WholeNumber(required=True, validate=validate.Range(min=1, max=10_000_000))
    evidence_grade = ma.fields.String(
        load_default=EvidenceGrade.C.value,
        validate=validate.OneOf(GRADES),
        metadata={"description": "A (counterfactual) to D (self-reported); C by default"},
    )
    deadweight = _decimal(validate=ADJUSTMENT_RANGE)
    displacement = _decimal(validate=ADJUSTMENT_RANGE)
    attribution = _decimal(validate=ADJUSTMENT_RANGE)
    drop_off = _decimal(validate=ADJUSTMENT_RANGE)
    duration_years = WholeNumber(validate=validate.Range(min=1, max=50))

    @ma.post_load
    def _grade(self, data, **kwargs):
        return {**data, "evidence_grade": EvidenceGrade(data["evidence_grade"])}


class PreviewSchema(ma.Schema):
    valuation_year = WholeNumber(required=True, validate=validate.Range(min=1900, max=2200))
    lines = ma.fields.List(
        ma.fields.Nested(PreviewLineSchema),
        required=True,
        validate=validate.Length(
            min=1, max=MAX_PREVIEW_LINES, error=f"Give between 1 and {MAX_PREVIEW_LINES} lines."
        ),
    )
    inflation = _decimal(validate=validate.Range(min=Decimal("-0.5"), max=Decimal(1)))
    discount_rate = _decimal(validate=validate.Range(min=Decimal(0), max=Decimal(1)))


class ParametersSchema(ma.Schema):
    valuation_year = ma.fields.Integer(required=True)
    inflation = ma.fields.String(required=True)
    discount_rate = ma.fields.String(required=True)
    fx = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), required=True)
    token_value_cents = ma.fields.Integer(required=True)


class ValuedLineSchema(ma.Schema):
    outcome_type = ma.fields.String(required=True)
    quantity = ma.fields.Integer(required=True)
    evidence_grade = ma.fields.String(required=True)
    confidence = ma.fields.String(required=True)
    per = ma.fields.String(required=True)
    deadweight = ma.fields.String(required=True)
    displacement = ma.fields.String(required=True)
    attribution = ma.fields.String(required=True)
    drop_off = ma.fields.String(required=True)
    duration_years = ma.fields.Integer(required=True)
    fx_rate = ma.fields.String(required=True)
    inflation_factor = ma.fields.String(required=True)
    unit_value = ma.fields.String(
        required=True, metadata={"description": "P: one unit's value in EUR, unrounded"}
    )
    annuity_factor = ma.fields.String(
        required=True, metadata={"description": "PV / I1: discounted years after drop-off"}
    )
    gross_cents = ma.fields.Integer(required=True)
    year1_cents = ma.fields.Integer(required=True)
    present_value_cents = ma.fields.Integer(required=True)
    conservative_value_cents = ma.fields.Integer(required=True)


class SensitivityRowSchema(ma.Schema):
    parameter = ma.fields.String(required=True, validate=validate.OneOf(SENSITIVITY_PARAMETERS))
    low_present_value_cents = ma.fields.Integer(
        required=True, metadata={"description": "Total PV with the parameter at its low value"}
    )
    high_present_value_cents = ma.fields.Integer(
        required=True, metadata={"description": "Total PV with the parameter at its high value"}
    )


class PreviewResultSchema(ma.Schema):
    method_version = ma.fields.Integer(required=True)
    parameters = ma.fields.Nested(ParametersSchema, required=True)
    lines = ma.fields.List(ma.fields.Nested(ValuedLineSchema), required=True)
    total_present_value_cents = ma.fields.Integer(required=True)
    total_conservative_value_cents = ma.fields.Integer(required=True)
    tokens_total = ma.fields.Integer(required=True)
    sensitivity = ma.fields.List(ma.fields.Nested(SensitivityRowSchema), required=True)
