"""Projects, their state history and their valuation snapshots.

Invariants:
- A project's state changes only through ``marketplace.projects.states``;
  every change leaves one ``ProjectStateChange`` row, which is never edited.
- Dates are coherent: funding deadline before the start date, start before
  the end date (checked by the database too).
- Money is integer cents; the budget is positive; the premium rate lies in
  [0, 1].
- A valuation snapshot is immutable: re-valuing adds a new one and the
  project points at its current snapshot. Snapshots copy every value they
  used, so a later change to the catalogue never alters them.
- Tokens pledged never exceed ``tokens_total`` (a CHECK backs the services).
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import Organisation, User
from marketplace.rounds.models import Round
from outcomes.commitments import OutcomeCommitment
from outcomes.db import Base, ExactDecimal, UTCDateTime, str_enum
from outcomes.lifecycle import StateHistory


class ProjectState(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    VALUED = "valued"
    FUNDING = "funding"
    FUNDED = "funded"
    RUNNING = "running"
    EVALUATING = "evaluating"
    SETTLED = "settled"
    REJECTED = "rejected"
    UNFUNDED = "unfunded"
    WITHDRAWN = "withdrawn"


# The states a listed project can be in (it is public in each of them).
PUBLIC_STATES = (
    ProjectState.FUNDING,
    ProjectState.FUNDED,
    ProjectState.RUNNING,
    ProjectState.EVALUATING,
    ProjectState.SETTLED,
    ProjectState.UNFUNDED,
)


class Theme(enum.StrEnum):
    WORK = "work"
    HOUSING = "housing"
    YOUTH = "youth"
    HEALTH = "health"
    SAFETY = "safety"
    EDUCATION = "education"
    WELLBEING = "wellbeing"


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (
        CheckConstraint("budget_cents > 0", name="budget_positive"),
        CheckConstraint(
            "CAST(premium_rate AS NUMERIC) >= 0 AND CAST(premium_rate AS NUMERIC) <= 1",
            name="premium_rate_range",
        ),
        CheckConstraint("funding_deadline < start_date", name="deadline_before_start"),
        CheckConstraint("start_date < end_date", name="start_before_end"),
        CheckConstraint("tokens_pledged >= 0 AND tokens_paid >= 0", name="tokens_not_negative"),
        CheckConstraint(
            "(tokens_total IS NULL AND tokens_pledged = 0) OR tokens_pledged <= tokens_total",
            name="pledged_within_total",
        ),
        # Public projects are those listed; each marketplace order and filter has an
        # index, and filters carry listed_at so counting public rows stays in the index.
        Index(None, "listed_at", "id"),
        Index(None, "funding_deadline", "id"),
        Index(None, "title", "id"),
        Index(None, "budget_cents", "id"),
        Index(None, "value_per_euro_bp", "id"),
        Index(None, "city_key", "listed_at"),
        Index(None, "theme", "listed_at"),
        Index(None, "state", "listed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(120))
    summary: Mapped[str] = mapped_column(Text)
    city: Mapped[str] = mapped_column(String(80))
    # The city case-folded, for filtering ("rotterdam" finds "Rotterdam").
    city_key: Mapped[str] = mapped_column(String(80))
    theme: Mapped[Theme] = mapped_column(str_enum(Theme, "theme", 20))
    budget_cents: Mapped[int] = mapped_column(BigInteger)
    premium_rate: Mapped[Decimal] = mapped_column(ExactDecimal(5, 4))
    funding_deadline: Mapped[date] = mapped_column(Date)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    state: Mapped[ProjectState] = mapped_column(str_enum(ProjectState, "project_state", 20))
    valuation_id: Mapped[int | None] = mapped_column(
        ForeignKey("valuation_snapshots.id", use_alter=True, name="fk_projects_valuation_id")
    )
    tokens_total: Mapped[int | None]
    token_price_cents: Mapped[int | None] = mapped_column(BigInteger)
    threshold_tokens: Mapped[int | None]
    tokens_pledged: Mapped[int] = mapped_column(default=0)
    tokens_paid: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    listed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Public flags kept by the scheduler's flag_late sweep (product.md "Project lifecycle").
    late_to_report: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    late_to_verify: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # An open dispute: shown publicly, and its unretired serials frozen (disputes/).
    disputed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Social value per euro (valuation.value_for_money) in ten-thousandths, so it sorts as a
    # number on every database: expected from the valuation, verified once settled. Kept by
    # ``projects.value_for_money.refresh``, the one writer.
    value_per_euro_bp: Mapped[int | None] = mapped_column(BigInteger)
    # The funding round it was submitted into (product.md "Funding rounds"), if any.
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id"), index=True)

    organisation: Mapped[Organisation] = relationship(lazy="joined")
    created_by: Mapped[User] = relationship()
    outcomes: Mapped[list[OutcomeCommitment]] = relationship(
        order_by=OutcomeCommitment.position, cascade="all, delete-orphan", lazy="selectin"
    )
    round: Mapped[Round | None] = relationship()
    valuation: Mapped[ValuationSnapshot | None] = relationship(
        foreign_keys=[valuation_id], post_update=True
    )
    history: Mapped[list[ProjectStateChange]] = relationship(
        order_by="ProjectStateChange.id", back_populates="project"
    )

    @property
    def reference(self) -> str:
        return f"P{self.id:06d}"

    @property
    def value_per_euro(self) -> Decimal | None:
        """Euros of social value per euro paid (four places)."""
        if self.value_per_euro_bp is None:
            return None
        return Decimal(self.value_per_euro_bp).scaleb(-4)

    @property
    def value_verified(self) -> bool:
        """Whether ``value_per_euro`` is what settlement verified (else what is expected)."""
        return self.state is ProjectState.SETTLED

    @property
    def flags(self) -> list[str]:
        return [
            name for name in ("late_to_report", "late_to_verify", "disputed") if getattr(self, name)
        ]

    @property
    def is_listable(self) -> bool:
        return bool(self.tokens_total) and self.token_price_cents is not None

    def __repr__(self) -> str:
        return f"<Project {self.id} {self.state}>"


class ListingVersion(Base):
    """One row: bumped with every change that can move a project in or out of a
    listing (creation, edit, state change), so list totals can be cached exactly."""

    __tablename__ = "listing_version"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


def city_key(city: str) -> str:
    return " ".join(city.split()).casefold()


# PostgreSQL-only trigram indexes for text search (migration 0003); other
# databases search without them. Alembic's comparison leaves them out.
SEARCH_INDEXES = ("ix_projects_title_trgm", "ix_projects_summary_trgm")
# SQLite's FTS5 trigram index of the same text (migration 0012) and its shadow tables.
SEARCH_TABLES = frozenset(
    f"project_text{part}" for part in ("", "_data", "_idx", "_docsize", "_config")
)


class ProjectStateChange(Base, StateHistory):
    """One transition: who, when, from, to, why. Append-only."""

    subject = ("project", "project_id")
    __tablename__ = "project_state_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_state: Mapped[ProjectState | None] = mapped_column(
        str_enum(ProjectState, "from_state", 20)
    )
    to_state: Mapped[ProjectState] = mapped_column(str_enum(ProjectState, "to_state", 20))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    reason_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    project: Mapped[Project] = relationship(back_populates="history")
    actor: Mapped[User | None] = relationship(lazy="joined")


class ValuationSnapshot(Base):
    """An expert valuation of a project, frozen with every input and figure."""

    __tablename__ = "valuation_snapshots"
    __table_args__ = (CheckConstraint("tokens_total >= 0", name="tokens_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    method_version: Mapped[int]
    # The inputs: parameters, each line's catalogue values, overrides with reasons.
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The engine's result (valuation.Valuation.as_dict()).
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    total_present_value_cents: Mapped[int] = mapped_column(BigInteger)
    total_conservative_value_cents: Mapped[int] = mapped_column(BigInteger)
    tokens_total: Mapped[int]
    budget_cents: Mapped[int] = mapped_column(BigInteger)
    premium_rate: Mapped[Decimal] = mapped_column(ExactDecimal(5, 4))
    token_price_cents: Mapped[int | None] = mapped_column(BigInteger)
    threshold_tokens: Mapped[int | None]

    created_by: Mapped[User] = relationship(lazy="joined")
