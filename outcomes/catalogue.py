"""The outcome catalogue: the value bank of outcome types and their proxies.

Invariants:
- Codes are unique and never reused; an outcome type is never deleted or
  edited once it exists, only retired, so every valuation that used it can be
  traced. (Valuation snapshots copy the values they used as well.)
- A retired type cannot be chosen for new valuations; it stays listed on
  request, with its retirement date.
- Every value carries its source, price year and basis; the database checks
  the ranges the valuation method needs (adjustments in [0, 0.95], haircut in
  (0, 1], duration at least one year).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import CheckConstraint, Enum, String, func, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from outcomes.db import Base, ExactDecimal, UTCDateTime, canonical_decimal
from outcomes.errors import Conflict, Message, NotFound, ValidationFailed
from valuation import MethodParameters, OutcomeProxy, Per

CATALOGUE_CSV = Path(__file__).parent / "data" / "outcome-types.csv"
# The reporting tags of the shipped types, with their sources (this project's own data).
TAGS_CSV = Path(__file__).parent / "data" / "reporting-tags.csv"
ESRS_TOPICS = ("S1", "S2", "S3", "S4")
# An SDG target: a goal 1-17, a dot, then a digit or a letter a-d ("8.5", "16.a").
SDG_TARGET = re.compile(r"^(?:[1-9]|1[0-7])\.(?:[1-9]|10|[a-d])$")
# An ESRS disclosure requirement of the topic: "S3-4".
DISCLOSURE = re.compile(r"^(S[1-4])-([1-9])$")
BASES = ("fiscal", "economic", "social", "wellbeing")
ADJUSTMENT_COLUMNS = ("deadweight", "displacement", "attribution", "drop_off")


def _range_check(column: str, low: str, high: str) -> CheckConstraint:
    return CheckConstraint(
        f"CAST({column} AS NUMERIC) >= {low} AND CAST({column} AS NUMERIC) <= {high}",
        name=f"{column}_range",
    )


class OutcomeType(Base):
    __tablename__ = "outcome_types"
    __table_args__ = (
        CheckConstraint("CAST(proxy_value AS NUMERIC) > 0", name="proxy_value_positive"),
        CheckConstraint(
            "CAST(haircut AS NUMERIC) > 0 AND CAST(haircut AS NUMERIC) <= 1", name="haircut_range"
        ),
        *(_range_check(column, "0", "0.95") for column in ADJUSTMENT_COLUMNS),
        CheckConstraint("duration_years >= 1", name="duration_positive"),
        CheckConstraint("price_year >= 1900 AND price_year <= 2200", name="price_year_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(50))
    proxy_value: Mapped[Decimal] = mapped_column(ExactDecimal(20, 6))
    currency: Mapped[str] = mapped_column(String(3))
    per: Mapped[Per] = mapped_column(
        Enum(
            Per,
            name="per",
            native_enum=False,
            length=10,
            create_constraint=True,
            values_callable=lambda kinds: [k.value for k in kinds],
        )
    )
    price_year: Mapped[int]
    basis: Mapped[str] = mapped_column(String(50))
    haircut: Mapped[Decimal] = mapped_column(ExactDecimal(7, 4))
    deadweight: Mapped[Decimal] = mapped_column(ExactDecimal(7, 4))
    displacement: Mapped[Decimal] = mapped_column(ExactDecimal(7, 4))
    attribution: Mapped[Decimal] = mapped_column(ExactDecimal(7, 4))
    drop_off: Mapped[Decimal] = mapped_column(ExactDecimal(7, 4))
    duration_years: Mapped[int]
    source: Mapped[str] = mapped_column(String(500))
    url: Mapped[str] = mapped_column(String(500))
    licence: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Reporting tags (product.md "Reporting taxonomy"): the ESRS topic and disclosure
    # requirement a buyer reports the outcome under, the SDG targets it serves (space
    # separated), and where the mapping comes from. Empty: not tagged (never guessed).
    esrs_topic: Mapped[str] = mapped_column(String(2), default="", server_default="")
    esrs_disclosure: Mapped[str] = mapped_column(String(8), default="", server_default="")
    sdg_targets: Mapped[str] = mapped_column(String(100), default="", server_default="")
    tags_source: Mapped[str] = mapped_column(String(500), default="", server_default="")

    @property
    def is_retired(self) -> bool:
        return self.retired_at is not None

    @property
    def sdg_target_list(self) -> list[str]:
        return self.sdg_targets.split()

    def proxy(self) -> OutcomeProxy:
        """The values the valuation method reads from this type."""
        return OutcomeProxy(
            code=self.code,
            proxy_value=self.proxy_value,
            currency=self.currency,
            per=self.per,
            price_year=self.price_year,
            haircut=self.haircut,
            deadweight=self.deadweight,
            displacement=self.displacement,
            attribution=self.attribution,
            drop_off=self.drop_off,
            duration_years=self.duration_years,
        )

    def __repr__(self) -> str:
        return f"<OutcomeType {self.code}>"


@dataclass(frozen=True)
class NewOutcomeType:
    code: str
    name: str
    unit: str
    proxy_value: Decimal
    currency: str
    per: Per
    price_year: int
    basis: str
    haircut: Decimal
    deadweight: Decimal
    displacement: Decimal
    attribution: Decimal
    drop_off: Decimal
    duration_years: int
    source: str
    url: str
    licence: str
    esrs_topic: str = ""
    esrs_disclosure: str = ""
    sdg_targets: str = ""
    tags_source: str = ""


@dataclass(frozen=True)
class ReportingTags:
    esrs_topic: str
    esrs_disclosure: str
    sdg_targets: str  # space separated
    tags_source: str


def tag_errors(topic: str, disclosure: str, targets: str, source: str) -> dict[str, list[str]]:
    """What is wrong with a set of reporting tags (empty: nothing). All four are given
    together or none: a tag without its source cannot be traced."""
    if not (topic or disclosure or targets or source):
        return {}
    errors: dict[str, list[str]] = {}
    if topic not in ESRS_TOPICS:
        errors["esrs_topic"] = [Message("Use one of %(choices)s.", choices=", ".join(ESRS_TOPICS))]
    found = DISCLOSURE.match(disclosure)
    if found is None or found.group(1) != topic:
        errors["esrs_disclosure"] = ["A disclosure requirement of the topic, such as S3-4."]
    listed = targets.split()
    if not listed or len(listed) > 10 or not all(SDG_TARGET.match(t) for t in listed):
        errors["sdg_targets"] = ["One to ten SDG targets such as 8.5 or 16.a, space separated."]
    if not source.strip():
        errors["tags_source"] = ["Say where the tags come from."]
    return errors


def read_tags_csv(path: Path = TAGS_CSV) -> dict[str, ReportingTags]:
    """The shipped reporting tags by outcome type code; a bad row names its line."""
    tags = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for number, raw in enumerate(csv.DictReader(handle), start=2):
            row = {k: " ".join((v or "").split()) for k, v in raw.items()}
            errors = tag_errors(
                row["esrs_topic"], row["esrs_disclosure"], row["sdg_targets"], row["source"]
            )
            if errors:
                raise ValueError(f"{path.name} line {number}: {sorted(errors)}")
            tags[row["code"]] = ReportingTags(
                row["esrs_topic"], row["esrs_disclosure"], row["sdg_targets"], row["source"]
            )
    return tags


# ---------------------------------------------------------------- the shipped CSV

_DECIMALS = ("proxy_value", "haircut", *ADJUSTMENT_COLUMNS)
_INTEGERS = ("price_year", "duration_years")


def read_catalogue_csv(path: Path = CATALOGUE_CSV) -> list[NewOutcomeType]:
    """Parse the value bank CSV into typed rows; a bad cell names its row and column."""
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        for number, raw in enumerate(csv.DictReader(handle), start=2):
            values: dict[str, object] = {k: (v or "").strip() for k, v in raw.items()}
            try:
                for column in _DECIMALS:
                    values[column] = Decimal(str(values[column]))
                for column in _INTEGERS:
                    values[column] = int(str(values[column]))
                values["per"] = Per(str(values["per"]))
            except (InvalidOperation, ValueError) as exc:
                raise ValueError(f"{path.name} line {number}: {exc}") from None
            rows.append(NewOutcomeType(**values))  # type: ignore[arg-type]
    return rows


# ---------------------------------------------------------------- services


def _check_new(data: NewOutcomeType, currencies: frozenset[str]) -> None:
    errors: dict[str, list[str]] = {}
    if data.currency not in currencies:
        errors["currency"] = [
            Message("Use one of %(choices)s.", choices=", ".join(sorted(currencies)))
        ]
    parts = set(data.basis.split("+"))
    if not data.basis or not parts <= set(BASES):
        errors["basis"] = [
            Message("Use one or more of %(choices)s joined by '+'.", choices=", ".join(BASES))
        ]
    if data.per is Per.ONCE and (data.duration_years != 1 or data.drop_off != 0):
        errors["duration_years"] = ["A one-off outcome lasts one year with no drop-off."]
    errors.update(
        tag_errors(data.esrs_topic, data.esrs_disclosure, data.sdg_targets, data.tags_source)
    )
    if errors:
        raise ValidationFailed(errors=errors)


def add_outcome_type(
    session: Session,
    data: NewOutcomeType,
    *,
    now: datetime,
    currencies: frozenset[str] | None = None,
) -> OutcomeType:
    """Add an outcome type to the value bank.

    Raises ValidationFailed (a currency without exchange rate, an unknown
    basis, a one-off outcome with a duration) and Conflict
    ``outcome_type_exists`` when the code is taken, retired or not.
    """
    if currencies is None:
        currencies = frozenset(MethodParameters(valuation_year=2000).fx)
    _check_new(data, currencies)
    code = data.code.upper()
    if session.scalar(select(OutcomeType.id).where(OutcomeType.code == code)) is not None:
        raise Conflict(
            "The code %(code)s is already in the catalogue; codes are never reused.",
            params={"code": code},
            code="outcome_type_exists",
            errors={"code": ["This code is already in the catalogue."]},
        )
    values = {
        name: canonical_decimal(value) if isinstance(value, Decimal) else value
        for name, value in data.__dict__.items()
    }
    outcome_type = OutcomeType(**{**values, "code": code}, created_at=now)
    session.add(outcome_type)
    session.flush()
    return outcome_type


def retire_outcome_type(session: Session, code: str, *, now: datetime) -> OutcomeType:
    """Retire a type: no new valuation may use it. Retiring twice is harmless.

    Raises NotFound for an unknown code.
    """
    outcome_type = get_outcome_type(session, code)
    if outcome_type.retired_at is None:
        outcome_type.retired_at = now
        session.flush()
    return outcome_type


def get_outcome_type(session: Session, code: str) -> OutcomeType:
    """Raises NotFound for an unknown code."""
    outcome_type = session.scalar(select(OutcomeType).where(OutcomeType.code == code.upper()))
    if outcome_type is None:
        raise NotFound("No outcome type %(code)s in the catalogue.", params={"code": repr(code)})
    return outcome_type


def list_outcome_types(
    session: Session,
    *,
    include_retired: bool = False,
    basis: str | None = None,
    per: Per | None = None,
    q: str | None = None,
) -> list[OutcomeType]:
    """The catalogue, by name; ``basis`` matches any part of a combined basis."""
    query = select(OutcomeType).order_by(OutcomeType.name)
    if not include_retired:
        query = query.where(OutcomeType.retired_at.is_(None))
    if basis:
        query = query.where(OutcomeType.basis.contains(basis))
    if per:
        query = query.where(OutcomeType.per == per)
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(
            or_(
                func.lower(OutcomeType.name).like(pattern),
                func.lower(OutcomeType.code).like(pattern),
                func.lower(OutcomeType.source).like(pattern),
            )
        )
    return list(session.scalars(query))


def types_by_code(session: Session, codes: set[str]) -> dict[str, OutcomeType]:
    """The named types, retired ones included (callers decide what retired means)."""
    if not codes:
        return {}
    rows = session.scalars(select(OutcomeType).where(OutcomeType.code.in_(codes)))
    return {row.code: row for row in rows}
