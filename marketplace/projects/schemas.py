"""Schemas for projects at the API and page boundary."""

from __future__ import annotations

from decimal import Decimal

import marshmallow as ma

from marketplace.catalogue.schemas import ADJUSTMENT_RANGE, GRADES
from marketplace.core import validate
from marketplace.core.schemas import (
    PageArgsSchema,
    SaneDate,
    SingleLine,
    Text,
    WholeNumber,
    page_schema,
    row_id,
)
from marketplace.projects.models import ProjectState, Theme
from marketplace.projects.services import SORTS
from valuation import EvidenceGrade

MAX_BUDGET_CENTS = 10**12  # ten billion euros
THEMES = [t.value for t in Theme]


class CommitmentInSchema(ma.Schema):
    outcome_type = SingleLine(required=True, validate=validate.Length(min=1, max=64))
    target_quantity = WholeNumber(required=True, validate=validate.Range(min=1, max=10_000_000))
    evidence_grade = ma.fields.String(load_default="C", validate=validate.OneOf(GRADES))

    @ma.post_load
    def _grade(self, data, **kwargs):
        return {**data, "evidence_grade": EvidenceGrade(data["evidence_grade"])}


class ProjectInSchema(ma.Schema):
    title = SingleLine(required=True, validate=validate.Length(min=3, max=120))
    summary = Text(required=True, validate=validate.Length(min=10, max=5000))
    city = SingleLine(required=True, validate=validate.Length(min=2, max=80))
    theme = ma.fields.String(required=True, validate=validate.OneOf(THEMES))
    budget_cents = WholeNumber(required=True, validate=validate.Range(min=1, max=MAX_BUDGET_CENTS))
    premium_rate = ma.fields.Decimal(
        as_string=True,
        allow_nan=False,
        validate=validate.Range(min=Decimal(0), max=Decimal(1)),
        metadata={"description": "0.25 unless given"},
    )
    funding_deadline = SaneDate(
        metadata={"description": "Required unless round_id is given (the round's is taken)."}
    )
    start_date = SaneDate(required=True)
    end_date = SaneDate(required=True)
    outcomes = ma.fields.List(
        ma.fields.Nested(CommitmentInSchema),
        required=True,
        validate=validate.Length(min=1, max=20, error="Commit to between 1 and 20 outcomes."),
    )
    round_id = row_id(
        allow_none=True,
        metadata={
            "description": "An open funding round to submit into: the project then shares "
            "its funding deadline (the one given is replaced)."
        },
    )

    @ma.validates_schema
    def _deadline(self, data, partial=None, **kwargs):
        if not partial and not data.get("funding_deadline") and not data.get("round_id"):
            raise ma.ValidationError({"funding_deadline": ["Missing data for required field."]})

    @ma.post_load
    def _theme(self, data, partial=None, **kwargs):
        if not partial and "funding_deadline" not in data:
            data = {**data, "funding_deadline": None}  # the round's, set by the service
        return {**data, "theme": Theme(data["theme"])} if "theme" in data else data


class ProjectPatchSchema(ProjectInSchema):
    """Any subset of a draft's fields; ``outcomes``, when given, is a whole list."""

    def __init__(self, **kwargs):
        # Partial at the top level only: each given outcome line stays complete.
        super().__init__(partial=tuple(ProjectInSchema._declared_fields), **kwargs)


class OverrideSchema(ma.Schema):
    outcome_type = SingleLine(required=True, validate=validate.Length(min=1, max=64))
    deadweight = ma.fields.Decimal(as_string=True, allow_nan=False, validate=ADJUSTMENT_RANGE)
    displacement = ma.fields.Decimal(as_string=True, allow_nan=False, validate=ADJUSTMENT_RANGE)
    attribution = ma.fields.Decimal(as_string=True, allow_nan=False, validate=ADJUSTMENT_RANGE)
    drop_off = ma.fields.Decimal(as_string=True, allow_nan=False, validate=ADJUSTMENT_RANGE)
    duration_years = WholeNumber(validate=validate.Range(min=1, max=50))
    evidence_grade = ma.fields.Enum(
        EvidenceGrade,
        by_value=True,
        metadata={"description": "the grade the panel sets, when not the one proposed"},
    )
    reason = Text(required=True, validate=validate.Length(min=10, max=2000))


class ValuationInSchema(ma.Schema):
    overrides = ma.fields.List(
        ma.fields.Nested(OverrideSchema), load_default=list, validate=validate.Length(max=20)
    )
    premium_rate = ma.fields.Decimal(
        as_string=True, allow_nan=False, validate=validate.Range(min=Decimal(0), max=Decimal(1))
    )


class ReasonSchema(ma.Schema):
    reason = Text(required=True, validate=validate.Length(min=10, max=2000))


class WithdrawSchema(ma.Schema):
    reason = Text(load_default="", validate=validate.Length(max=2000))


class ProjectQuerySchema(PageArgsSchema):
    state = ma.fields.String(validate=validate.OneOf([s.value for s in ProjectState]))
    city = SingleLine(validate=validate.Length(max=80))
    theme = ma.fields.String(validate=validate.OneOf(THEMES))
    outcome_type = SingleLine(validate=validate.Length(max=64))
    q = SingleLine(validate=validate.Length(max=100))
    sort = ma.fields.String(load_default="newest", validate=validate.OneOf(SORTS))
    round_id = row_id(metadata={"description": "Only the projects of this funding round"})
    mine = ma.fields.Boolean(
        load_default=False, metadata={"description": "Only your organisation's projects"}
    )


class CommitmentOutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    outcome_type = ma.fields.Function(lambda c: c.outcome_type.code, required=True)
    outcome_name = ma.fields.Function(lambda c: c.outcome_type.name, required=True)
    target_quantity = ma.fields.Integer(required=True)
    evidence_grade = ma.fields.Function(
        lambda c: c.evidence_grade.value,
        required=True,
        metadata={"description": "planned: proposed, then as the panel set it at valuation"},
    )
    verified_quantity = ma.fields.Integer(allow_none=True, required=True)
    met_grade = ma.fields.Function(
        lambda c: c.met_grade.value if c.met_grade else None,
        allow_none=True,
        required=True,
        metadata={"description": "the grade the evidence met, once the results are approved"},
    )


class ValuationLineOutSchema(ma.Schema):
    outcome_type = ma.fields.String(required=True)
    outcome_name = ma.fields.String(required=True)
    source = ma.fields.String(required=True)
    url = ma.fields.String(required=True)
    quantity = ma.fields.Integer(required=True)
    evidence_grade = ma.fields.String(required=True)
    overrides = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), required=True)
    reason = ma.fields.String(required=True)
    gross_cents = ma.fields.Integer(required=True)
    year1_cents = ma.fields.Integer(required=True)
    present_value_cents = ma.fields.Integer(required=True)
    conservative_value_cents = ma.fields.Integer(required=True)


class ValuationOutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    method_version = ma.fields.Integer(required=True)
    valued_at = ma.fields.AwareDateTime(attribute="created_at", required=True)
    total_present_value_cents = ma.fields.Integer(required=True)
    total_conservative_value_cents = ma.fields.Integer(required=True)
    tokens_total = ma.fields.Integer(required=True)
    token_price_cents = ma.fields.Integer(allow_none=True, required=True)
    threshold_tokens = ma.fields.Integer(allow_none=True, required=True)
    premium_rate = ma.fields.Decimal(as_string=True, required=True)
    parameters = ma.fields.Function(lambda s: s.inputs["parameters"], required=True)
    lines = ma.fields.Method("_lines", required=True)

    def _lines(self, snapshot) -> list[dict]:
        lines = []
        for given, valued in zip(snapshot.inputs["lines"], snapshot.result["lines"], strict=True):
            line = {
                k: given[k]
                for k in (
                    "outcome_type",
                    "outcome_name",
                    "source",
                    "url",
                    "quantity",
                    "evidence_grade",
                    "overrides",
                    "reason",
                )
            }
            line.update(
                {
                    k: valued[k]
                    for k in (
                        "gross_cents",
                        "year1_cents",
                        "present_value_cents",
                        "conservative_value_cents",
                    )
                }
            )
            lines.append(ValuationLineOutSchema().dump(line))
        return lines


class ProjectOutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    reference = ma.fields.String(required=True, metadata={"example": "P000042"})
    title = ma.fields.String(required=True)
    summary = ma.fields.String(required=True)
    city = ma.fields.String(required=True)
    theme = ma.fields.Function(lambda p: p.theme.value, required=True)
    state = ma.fields.Function(lambda p: p.state.value, required=True)
    organisation = ma.fields.Function(lambda p: p.organisation.name, required=True)
    organisation_id = ma.fields.Integer(required=True)
    budget_cents = ma.fields.Integer(required=True)
    premium_rate = ma.fields.Decimal(as_string=True, required=True)
    funding_deadline = SaneDate(required=True)
    start_date = SaneDate(required=True)
    end_date = SaneDate(required=True)
    outcomes = ma.fields.List(ma.fields.Nested(CommitmentOutSchema), required=True)
    tokens_total = ma.fields.Integer(allow_none=True, required=True)
    token_price_cents = ma.fields.Integer(allow_none=True, required=True)
    threshold_tokens = ma.fields.Integer(allow_none=True, required=True)
    tokens_pledged = ma.fields.Integer(required=True)
    tokens_paid = ma.fields.Integer(required=True)
    flags = ma.fields.List(
        ma.fields.String(),
        required=True,
        metadata={"description": "late_to_report, late_to_verify (public warnings)"},
    )
    valuation = ma.fields.Nested(ValuationOutSchema, allow_none=True, required=True)
    value_per_euro = ma.fields.Decimal(
        as_string=True,
        allow_none=True,
        required=True,
        metadata={
            "description": "Euros of social value per euro: expected (V_target / (budget x "
            "(1 + premium_rate))) until settled, then verified (V_verified / (raised - "
            "refunds)); four places. Null before a valuation.",
            "example": "2.4000",
        },
    )
    value_per_euro_basis = ma.fields.Function(
        lambda p: (
            None
            if p.value_per_euro_bp is None
            else ("verified" if p.value_verified else "expected")
        ),
        allow_none=True,
        required=True,
        metadata={"description": "expected or verified"},
    )
    round_id = ma.fields.Integer(allow_none=True, required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    listed_at = ma.fields.AwareDateTime(allow_none=True, required=True)


ProjectPageSchema = page_schema(ProjectOutSchema, "ProjectPage")


class HistoryOutSchema(ma.Schema):
    at = ma.fields.AwareDateTime(required=True)
    from_state = ma.fields.Function(
        lambda c: c.from_state.value if c.from_state else None, allow_none=True, required=True
    )
    to_state = ma.fields.Function(lambda c: c.to_state.value, required=True)
    actor = ma.fields.Function(lambda c: c.actor.name if c.actor else "scheduler", required=True)
    reason = ma.fields.String(required=True, attribute="reason_text")
