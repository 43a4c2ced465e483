"""Valuing outcome lines against the catalogue (the calculator and, later, projects).

Invariants:
- Lines name outcome types by code; an unknown or retired code is refused
  with the line's field named (``lines.2.outcome_type``), nothing is valued.
- The engine's own input errors come back as ValidationFailed with the same
  field names, so callers see one kind of refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.orm import Session

from outcomes.catalogue import types_by_code
from outcomes.errors import Message, ValidationFailed
from valuation import (
    DEFAULT_GRADE,
    AdjustmentOverrides,
    EvidenceGrade,
    LineInput,
    MethodParameters,
    SensitivityRow,
    Valuation,
    ValuationInputError,
    sensitivity,
    value,
)


@dataclass(frozen=True)
class LineRequest(AdjustmentOverrides):
    outcome_type: str
    quantity: int
    evidence_grade: EvidenceGrade = DEFAULT_GRADE


@dataclass(frozen=True)
class PreviewRequest:
    valuation_year: int
    lines: list[LineRequest] = field(default_factory=list)
    inflation: Decimal | None = None
    discount_rate: Decimal | None = None

    def parameters(self) -> MethodParameters:
        params = MethodParameters(valuation_year=self.valuation_year)
        overrides = {
            name: getattr(self, name)
            for name in ("inflation", "discount_rate")
            if getattr(self, name) is not None
        }
        return MethodParameters(**{**params.__dict__, **overrides})


def build_lines(session: Session, lines: list[LineRequest]) -> list[LineInput]:
    """Resolve each line's outcome type. Raises ValidationFailed naming bad lines."""
    if not lines:
        raise ValidationFailed(errors={"lines": ["Give at least one outcome line."]})
    found = types_by_code(session, {line.outcome_type.upper() for line in lines})
    errors: dict[str, list[str]] = {}
    inputs = []
    for i, line in enumerate(lines):
        outcome_type = found.get(line.outcome_type.upper())
        if outcome_type is None:
            errors[f"lines.{i}.outcome_type"] = [
                Message("Unknown outcome type %(code)s.", code=repr(line.outcome_type))
            ]
            continue
        if outcome_type.is_retired:
            errors[f"lines.{i}.outcome_type"] = [
                Message(
                    "The outcome type %(code)s is retired and cannot be chosen.",
                    code=outcome_type.code,
                )
            ]
            continue
        inputs.append(
            LineInput(
                proxy=outcome_type.proxy(),
                quantity=line.quantity,
                grade=line.evidence_grade,
                **line.overrides(),
            )
        )
    if errors:
        raise ValidationFailed(errors=errors)
    return inputs


def preview(session: Session, request: PreviewRequest) -> tuple[Valuation, list[SensitivityRow]]:
    """Value the lines and their sensitivity without storing anything.

    Raises ValidationFailed naming every bad field.
    """
    lines = build_lines(session, request.lines)
    params = request.parameters()
    try:
        return value(lines, params), sensitivity(lines, params)
    except ValuationInputError as exc:
        raise ValidationFailed(errors=exc.errors) from None
