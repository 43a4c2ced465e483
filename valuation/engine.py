"""Valuation method version 1: outcome lines to conservative present value and tokens.

Per line (see ../shared/docs/valuation-method.md):

    P  = proxy_value * fx[currency] * haircut * (1 + inflation) ** (valuation_year - price_year)
    G  = quantity * P
    I1 = G * (1 - deadweight) * (1 - displacement) * (1 - attribution)
    PV = sum_{t=1..D} I1 * (1 - drop_off) ** (t - 1) / (1 + discount_rate) ** t
    CV = PV * confidence[grade]

Invariants:
- Pure: no I/O, no clock, no globals changed. Arithmetic runs in a local
  Decimal context of 50 significant digits; nothing is a float.
- G, I1, PV and CV are rounded half-even to the cent only at the end of a
  line; totals are sums of rounded lines; tokens are floor(total CV / token value).
- For ``per = once`` the duration is 1 and the drop-off 0, whatever was asked.
- Every result carries the method version, the parameters and each line's
  inputs and factors, so every figure can be traced and recomputed.
- Invalid input raises ``ValuationInputError`` naming each bad field.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

METHOD_VERSION = 1
PRECISION = 50
CENT = Decimal("0.01")
ZERO = Decimal(0)
ONE = Decimal(1)
MAX_ADJUSTMENT = Decimal("0.95")
ADJUSTMENTS = ("deadweight", "displacement", "attribution", "drop_off")


class Per(StrEnum):
    YEAR = "year"
    ONCE = "once"


class EvidenceGrade(StrEnum):
    A = "A"  # experimental or quasi-experimental counterfactual
    B = "B"  # comparison group or administrative records
    C = "C"  # before/after measurement with records (the default)
    D = "D"  # self-reported or planned only


CONFIDENCE: Mapping[EvidenceGrade, Decimal] = {
    EvidenceGrade.A: Decimal("1.00"),
    EvidenceGrade.B: Decimal("0.85"),
    EvidenceGrade.C: Decimal("0.70"),
    EvidenceGrade.D: Decimal("0.50"),
}
DEFAULT_GRADE = EvidenceGrade.C


def weaker_grade(planned: EvidenceGrade, met: EvidenceGrade) -> EvidenceGrade:
    """The grade of lower confidence: verified value counts at the weaker evidence."""
    return met if CONFIDENCE[met] < CONFIDENCE[planned] else planned


class ValuationInputError(ValueError):
    """Inputs the method cannot value; ``errors`` maps each field to its messages."""

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        self.errors = {name: list(messages) for name, messages in errors.items()}
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in self.errors.items()))


@dataclass(frozen=True)
class MethodParameters:
    valuation_year: int
    inflation: Decimal = Decimal("0.02")
    discount_rate: Decimal = Decimal("0.0225")
    fx: Mapping[str, Decimal] = field(
        default_factory=lambda: {"EUR": Decimal(1), "GBP": Decimal("1.18")}
    )
    token_value_cents: int = 10000

    def as_dict(self) -> dict[str, Any]:
        return {
            "valuation_year": self.valuation_year,
            "inflation": str(self.inflation),
            "discount_rate": str(self.discount_rate),
            "fx": {currency: str(rate) for currency, rate in sorted(self.fx.items())},
            "token_value_cents": self.token_value_cents,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MethodParameters:
        """The parameters ``as_dict`` wrote (a valuation snapshot's)."""
        return cls(
            valuation_year=int(data["valuation_year"]),
            inflation=Decimal(data["inflation"]),
            discount_rate=Decimal(data["discount_rate"]),
            fx={currency: Decimal(rate) for currency, rate in data["fx"].items()},
            token_value_cents=int(data["token_value_cents"]),
        )


@dataclass(frozen=True)
class OutcomeProxy:
    """The catalogue values of one outcome type that the method uses."""

    code: str
    proxy_value: Decimal
    currency: str
    per: Per
    price_year: int
    haircut: Decimal
    deadweight: Decimal
    displacement: Decimal
    attribution: Decimal
    drop_off: Decimal
    duration_years: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "proxy_value": str(self.proxy_value),
            "currency": self.currency,
            "per": self.per.value,
            "price_year": self.price_year,
            "haircut": str(self.haircut),
            "deadweight": str(self.deadweight),
            "displacement": str(self.displacement),
            "attribution": str(self.attribution),
            "drop_off": str(self.drop_off),
            "duration_years": self.duration_years,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutcomeProxy:
        """The proxy ``as_dict`` wrote (a valuation snapshot's copy of the catalogue)."""
        return cls(
            code=data["code"],
            proxy_value=Decimal(data["proxy_value"]),
            currency=data["currency"],
            per=Per(data["per"]),
            price_year=int(data["price_year"]),
            haircut=Decimal(data["haircut"]),
            deadweight=Decimal(data["deadweight"]),
            displacement=Decimal(data["displacement"]),
            attribution=Decimal(data["attribution"]),
            drop_off=Decimal(data["drop_off"]),
            duration_years=int(data["duration_years"]),
        )


ADJUSTMENT_OVERRIDES = (*ADJUSTMENTS, "duration_years")


@dataclass(frozen=True, kw_only=True)
class AdjustmentOverrides:
    """A line's replacements for the catalogue's adjustments; None keeps the default."""

    deadweight: Decimal | None = None
    displacement: Decimal | None = None
    attribution: Decimal | None = None
    drop_off: Decimal | None = None
    duration_years: int | None = None

    def overrides(self) -> dict[str, Any]:
        """The adjustments this line replaces, by name."""
        return {
            name: getattr(self, name)
            for name in ADJUSTMENT_OVERRIDES
            if getattr(self, name) is not None
        }


@dataclass(frozen=True)
class LineInput(AdjustmentOverrides):
    """One outcome line: a proxy, a quantity, a grade and optional overrides."""

    proxy: OutcomeProxy
    quantity: int
    grade: EvidenceGrade = DEFAULT_GRADE


@dataclass(frozen=True)
class LineResult:
    """One valued line with every factor that produced its figures."""

    outcome_type: str
    quantity: int
    grade: EvidenceGrade
    confidence: Decimal
    per: Per
    deadweight: Decimal
    displacement: Decimal
    attribution: Decimal
    drop_off: Decimal
    duration_years: int
    fx_rate: Decimal
    inflation_factor: Decimal
    unit_value: Decimal  # P, in EUR at valuation-year prices, unrounded
    annuity_factor: Decimal  # sum of the discounted, dropped-off years, unrounded
    gross: Decimal
    year1: Decimal
    present_value: Decimal
    conservative_value: Decimal

    @property
    def gross_cents(self) -> int:
        return to_cents(self.gross)

    @property
    def year1_cents(self) -> int:
        return to_cents(self.year1)

    @property
    def present_value_cents(self) -> int:
        return to_cents(self.present_value)

    @property
    def conservative_value_cents(self) -> int:
        return to_cents(self.conservative_value)

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome_type": self.outcome_type,
            "quantity": self.quantity,
            "evidence_grade": self.grade.value,
            "confidence": str(self.confidence),
            "per": self.per.value,
            "deadweight": str(self.deadweight),
            "displacement": str(self.displacement),
            "attribution": str(self.attribution),
            "drop_off": str(self.drop_off),
            "duration_years": self.duration_years,
            "fx_rate": str(self.fx_rate),
            "inflation_factor": str(self.inflation_factor),
            "unit_value": str(self.unit_value),
            "annuity_factor": str(self.annuity_factor),
            "gross_cents": self.gross_cents,
            "year1_cents": self.year1_cents,
            "present_value_cents": self.present_value_cents,
            "conservative_value_cents": self.conservative_value_cents,
        }


@dataclass(frozen=True)
class Valuation:
    method_version: int
    parameters: MethodParameters
    lines: tuple[LineResult, ...]

    @property
    def total_present_value_cents(self) -> int:
        return sum(line.present_value_cents for line in self.lines)

    @property
    def total_conservative_value_cents(self) -> int:
        return sum(line.conservative_value_cents for line in self.lines)

    @property
    def tokens_total(self) -> int:
        return self.total_conservative_value_cents // self.parameters.token_value_cents

    def as_dict(self) -> dict[str, Any]:
        return {
            "method_version": self.method_version,
            "parameters": self.parameters.as_dict(),
            "lines": [line.as_dict() for line in self.lines],
            "total_present_value_cents": self.total_present_value_cents,
            "total_conservative_value_cents": self.total_conservative_value_cents,
            "tokens_total": self.tokens_total,
        }


@dataclass(frozen=True)
class SensitivityRow:
    """Total PV with one parameter at its low and at its high value, the rest central."""

    parameter: str
    low_present_value_cents: int
    high_present_value_cents: int


def to_cents(amount: Decimal) -> int:
    """Half-even to the cent, as a whole number of cents.

    Exact whatever the caller's decimal context: moving the point is exact and the
    one rounding is the engine's (a 28-digit default context would round a
    50-digit figure once before the cent and could round it twice).
    """
    context = _context()
    return int(amount.scaleb(2, context).quantize(ONE, rounding=ROUND_HALF_EVEN, context=context))


def _context() -> decimal.Context:
    return decimal.Context(
        prec=PRECISION, rounding=ROUND_HALF_EVEN, traps=[decimal.InvalidOperation]
    )


# ---------------------------------------------------------------- validation


def _check_rate(
    errors: dict[str, list[str]], name: str, value: Decimal | None, low: Decimal, high: Decimal
) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal) or not value.is_finite():
        errors.setdefault(name, []).append("Must be a decimal number.")
    elif not low <= value <= high:
        errors.setdefault(name, []).append(f"Must be between {low} and {high}.")


def _check_whole(errors: dict[str, list[str]], name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.setdefault(name, []).append("Must be a whole number.")
    elif value < minimum:
        errors.setdefault(name, []).append(f"Must be at least {minimum}.")


def validate(lines: Sequence[LineInput], params: MethodParameters) -> None:
    """Raise ValuationInputError listing every problem with the inputs."""
    errors: dict[str, list[str]] = {}
    if not lines:
        errors["lines"] = ["Give at least one outcome line."]
    _check_whole(errors, "valuation_year", params.valuation_year, 1900)
    if isinstance(params.valuation_year, int) and params.valuation_year > 2200:
        errors.setdefault("valuation_year", []).append("Must be at most 2200.")
    _check_rate(errors, "inflation", params.inflation, Decimal("-0.5"), Decimal("1"))
    _check_rate(errors, "discount_rate", params.discount_rate, ZERO, Decimal("1"))
    _check_whole(errors, "token_value_cents", params.token_value_cents, 1)
    for i, line in enumerate(lines):
        prefix = f"lines.{i}."
        proxy = line.proxy
        if proxy.currency not in params.fx:
            errors.setdefault(prefix + "outcome_type", []).append(
                f"No exchange rate for {proxy.currency}."
            )
        _check_whole(errors, prefix + "quantity", line.quantity, 0)
        if line.grade not in CONFIDENCE:
            errors.setdefault(prefix + "evidence_grade", []).append("Must be one of A, B, C, D.")
        for name in ADJUSTMENTS:
            _check_rate(errors, prefix + name, getattr(line, name), ZERO, MAX_ADJUSTMENT)
        if line.duration_years is not None:
            _check_whole(errors, prefix + "duration_years", line.duration_years, 1)
        _check_rate(errors, prefix + "proxy.haircut", proxy.haircut, Decimal("0.0001"), ONE)
        if not proxy.proxy_value.is_finite() or proxy.proxy_value < 0:
            errors.setdefault(prefix + "proxy.proxy_value", []).append("Must not be negative.")
    if errors:
        raise ValuationInputError(errors)


# ---------------------------------------------------------------- computation


def _annuity(drop_off: Decimal, discount_rate: Decimal, years: int) -> Decimal:
    """sum over t = 1..years of (1 - drop_off) ** (t - 1) / (1 + discount_rate) ** t."""
    total = ZERO
    remaining = ONE
    discount = ONE
    for _ in range(years):
        discount *= ONE + discount_rate
        total += remaining / discount
        remaining *= ONE - drop_off
    return total


class _Factors:
    """Memoised per-call factors: lines of one type share P; many share an annuity."""

    def __init__(self, params: MethodParameters) -> None:
        self.params = params
        self._unit: dict[tuple[Any, ...], tuple[Decimal, Decimal, Decimal]] = {}
        self._annuity: dict[tuple[Any, ...], Decimal] = {}

    def unit(self, proxy: OutcomeProxy, scale: Decimal = ONE) -> tuple[Decimal, Decimal, Decimal]:
        key = (proxy, scale)
        if key not in self._unit:
            fx = self.params.fx[proxy.currency]
            inflation = (ONE + self.params.inflation) ** (
                self.params.valuation_year - proxy.price_year
            )
            value = proxy.proxy_value * scale * fx * proxy.haircut * inflation
            self._unit[key] = (fx, inflation, value)
        return self._unit[key]

    def annuity(self, drop_off: Decimal, rate: Decimal, years: int) -> Decimal:
        key = (drop_off, rate, years)
        if key not in self._annuity:
            self._annuity[key] = _annuity(drop_off, rate, years)
        return self._annuity[key]


def _resolved(line: LineInput) -> tuple[Decimal, Decimal, Decimal, Decimal, int]:
    proxy = line.proxy
    deadweight = proxy.deadweight if line.deadweight is None else line.deadweight
    displacement = proxy.displacement if line.displacement is None else line.displacement
    attribution = proxy.attribution if line.attribution is None else line.attribution
    if proxy.per is Per.ONCE:
        return deadweight, displacement, attribution, ZERO, 1
    drop_off = proxy.drop_off if line.drop_off is None else line.drop_off
    years = proxy.duration_years if line.duration_years is None else line.duration_years
    return deadweight, displacement, attribution, drop_off, years


def _value_line(
    line: LineInput,
    factors: _Factors,
    *,
    proxy_scale: Decimal = ONE,
    shift: Mapping[str, Decimal] | None = None,
    years_shift: int = 0,
    discount_rate: Decimal | None = None,
) -> LineResult:
    deadweight, displacement, attribution, drop_off, years = _resolved(line)
    if shift:

        def clip(v: Decimal) -> Decimal:
            return min(max(v, ZERO), MAX_ADJUSTMENT)

        deadweight = clip(deadweight + shift.get("deadweight", ZERO))
        displacement = clip(displacement + shift.get("displacement", ZERO))
        attribution = clip(attribution + shift.get("attribution", ZERO))
        if line.proxy.per is Per.YEAR:
            drop_off = clip(drop_off + shift.get("drop_off", ZERO))
    if years_shift and line.proxy.per is Per.YEAR:
        years = max(1, years + years_shift)
    rate = factors.params.discount_rate if discount_rate is None else discount_rate
    fx, inflation, unit = factors.unit(line.proxy, proxy_scale)
    gross = line.quantity * unit
    year1 = gross * (ONE - deadweight) * (ONE - displacement) * (ONE - attribution)
    annuity = factors.annuity(drop_off, rate, years)
    present = year1 * annuity
    confidence = CONFIDENCE[line.grade]
    return LineResult(
        outcome_type=line.proxy.code,
        quantity=line.quantity,
        grade=line.grade,
        confidence=confidence,
        per=line.proxy.per,
        deadweight=deadweight,
        displacement=displacement,
        attribution=attribution,
        drop_off=drop_off,
        duration_years=years,
        fx_rate=fx,
        inflation_factor=inflation,
        unit_value=unit,
        annuity_factor=annuity,
        gross=gross,
        year1=year1,
        present_value=present,
        conservative_value=present * confidence,
    )


def value(lines: Sequence[LineInput], params: MethodParameters) -> Valuation:
    """Value every line with method version 1. Raises ValuationInputError."""
    validate(lines, params)
    with decimal.localcontext(_context()):
        factors = _Factors(params)
        results = tuple(_value_line(line, factors) for line in lines)
    return Valuation(METHOD_VERSION, params, results)


def with_quantities(lines: Sequence[LineInput], quantities: Iterable[int]) -> list[LineInput]:
    """The same lines with other quantities (for example verified ones)."""
    return [replace(line, quantity=q) for line, q in zip(lines, quantities, strict=True)]


SENSITIVITY_PARAMETERS = (
    "proxy_value",
    "deadweight",
    "displacement",
    "attribution",
    "drop_off",
    "duration_years",
    "discount_rate",
)
_STEP = Decimal("0.10")


def sensitivity(lines: Sequence[LineInput], params: MethodParameters) -> list[SensitivityRow]:
    """One-at-a-time sensitivity of the total PV (the tornado chart's bars)."""
    validate(lines, params)
    rows = []
    with decimal.localcontext(_context()):
        factors = _Factors(params)

        def total(**variant: Any) -> int:
            return sum(_value_line(line, factors, **variant).present_value_cents for line in lines)

        rows.append(
            SensitivityRow(
                "proxy_value", total(proxy_scale=Decimal("0.8")), total(proxy_scale=Decimal("1.2"))
            )
        )
        for name in ADJUSTMENTS:
            rows.append(
                SensitivityRow(name, total(shift={name: -_STEP}), total(shift={name: _STEP}))
            )
        rows.append(SensitivityRow("duration_years", total(years_shift=-1), total(years_shift=1)))
        low_rate = max(ZERO, params.discount_rate - Decimal("0.01"))
        rows.append(
            SensitivityRow(
                "discount_rate",
                total(discount_rate=low_rate),
                total(discount_rate=params.discount_rate + Decimal("0.01")),
            )
        )
    return rows
