"""The valuation engine: pure Python and Decimal, no database, no web framework.

It turns outcome lines into monetised social value and impact tokens following
valuation method version 1 (../shared/docs/valuation-method.md). See
``valuation.engine`` for the formulas and invariants.
"""

from valuation.engine import (
    ADJUSTMENT_OVERRIDES,
    CONFIDENCE,
    DEFAULT_GRADE,
    METHOD_VERSION,
    PRECISION,
    SENSITIVITY_PARAMETERS,
    AdjustmentOverrides,
    EvidenceGrade,
    LineInput,
    LineResult,
    MethodParameters,
    OutcomeProxy,
    Per,
    SensitivityRow,
    Valuation,
    ValuationInputError,
    sensitivity,
    to_cents,
    value,
    weaker_grade,
    with_quantities,
)

__all__ = [
    "ADJUSTMENT_OVERRIDES",
    "CONFIDENCE",
    "DEFAULT_GRADE",
    "METHOD_VERSION",
    "PRECISION",
    "SENSITIVITY_PARAMETERS",
    "AdjustmentOverrides",
    "EvidenceGrade",
    "LineInput",
    "LineResult",
    "MethodParameters",
    "OutcomeProxy",
    "Per",
    "SensitivityRow",
    "Valuation",
    "ValuationInputError",
    "sensitivity",
    "to_cents",
    "value",
    "weaker_grade",
    "with_quantities",
]
