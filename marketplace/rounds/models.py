"""Funding rounds (product.md "Funding rounds").

Invariants:
- A round is open from the moment an admin makes it until it is closed (final); each
  move is a conditional update with a history row (``ROUND_LIFECYCLE``).
- Its dates keep their order: submissions open <= submissions close < funding deadline.
- Projects submitted into a round share its funding deadline; a round's themes and
  cities, when it names any, are the only ones it takes.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from outcomes.db import Base, UTCDateTime, str_enum
from outcomes.lifecycle import InvalidTransition, Lifecycle, StateHistory

# The themes a round may take: the projects' themes (projects.models.Theme, which is
# above this module; a test checks that the two agree).
THEMES = ("work", "housing", "youth", "health", "safety", "education", "wellbeing")


class RoundState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Round(Base):
    __tablename__ = "rounds"
    __table_args__ = (
        CheckConstraint("submissions_open <= submissions_close", name="window_in_order"),
        CheckConstraint("submissions_close < funding_deadline", name="deadline_after_window"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # The themes and cities the round takes (lists of values); empty: any.
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)
    cities: Mapped[list[str]] = mapped_column(JSON, default=list)
    submissions_open: Mapped[date] = mapped_column(Date)
    submissions_close: Mapped[date] = mapped_column(Date)
    funding_deadline: Mapped[date] = mapped_column(Date)
    state: Mapped[RoundState] = mapped_column(str_enum(RoundState, "round_state"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def takes_submissions(self, today: date) -> bool:
        return (
            self.state is RoundState.OPEN
            and self.submissions_open <= today <= self.submissions_close
        )

    def __repr__(self) -> str:
        return f"<Round {self.id} {self.name!r} {self.state}>"


class RoundStateChange(Base, StateHistory):
    subject = ("round", "round_id")
    __tablename__ = "round_state_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_state: Mapped[RoundState | None] = mapped_column(str_enum(RoundState, "round_from_state"))
    to_state: Mapped[RoundState] = mapped_column(str_enum(RoundState, "round_to_state"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    reason_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class InvalidRoundTransition(InvalidTransition):
    title = "The round cannot make this change in its current state"


ROUND_LIFECYCLE: Lifecycle[RoundState] = Lifecycle(
    name="round",
    model=Round,
    history=RoundStateChange,
    subject_column="round_id",
    transitions=frozenset({(RoundState.OPEN, RoundState.CLOSED)}),
    refusal=InvalidRoundTransition,
)
