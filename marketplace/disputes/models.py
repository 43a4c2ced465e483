"""Concerns about a settled project, the disputes they open, and their findings.

Invariants:
- A concern moves only through ``TRANSITIONS`` (filed -> dismissed, filed ->
  disputed, disputed -> dismissed, disputed -> upheld), each move a conditional
  update with a history row; dismissed and upheld are final.
- While a project has a disputed concern, its ``disputed`` flag is set (public)
  and its unretired serials are frozen. The flag is set and cleared by updating
  the project row (its lock orders it against retirements).
- An upheld concern records the corrected verified quantities, the verified
  value and tokens they give, the tokens over (``tokens_over``), and of those
  how many buffer serials were cancelled (``tokens_cancelled``); the rest is the
  shortfall, shown publicly. Money does not move back.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from outcomes.db import Base, UTCDateTime, str_enum
from outcomes.lifecycle import InvalidTransition, Lifecycle, StateHistory

MAX_TEXT = 5000
MAX_REASON = 2000


class ConcernState(enum.StrEnum):
    FILED = "filed"
    DISMISSED = "dismissed"
    DISPUTED = "disputed"
    UPHELD = "upheld"


C = ConcernState
TRANSITIONS = frozenset(
    {
        (C.FILED, C.DISMISSED),
        (C.FILED, C.DISPUTED),
        (C.DISPUTED, C.DISMISSED),
        (C.DISPUTED, C.UPHELD),
    }
)


class Concern(Base):
    __tablename__ = "concerns"
    __table_args__ = (
        CheckConstraint(
            "tokens_cancelled IS NULL "
            "OR (tokens_cancelled >= 0 AND tokens_cancelled <= tokens_over)",
            name="cancelled_within_over",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[ConcernState] = mapped_column(str_enum(ConcernState, "concern_state"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The admin's public words when opening the dispute, and the finding at the end.
    dispute_reason: Mapped[str] = mapped_column(String(MAX_REASON), default="")
    disputed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finding: Mapped[str] = mapped_column(Text, default="")
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Upheld: {commitment id: corrected verified quantity} and what they give.
    corrected: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    v_verified_cents: Mapped[int | None] = mapped_column(BigInteger)
    tokens_minted: Mapped[int | None]
    tokens_over: Mapped[int | None]
    tokens_cancelled: Mapped[int | None]

    @property
    def shortfall(self) -> int:
        """Tokens over that the buffer pool could not cover (0 unless upheld)."""
        return (self.tokens_over or 0) - (self.tokens_cancelled or 0)


class ConcernStateChange(Base, StateHistory):
    subject = ("concern", "concern_id")
    __tablename__ = "concern_state_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    concern_id: Mapped[int] = mapped_column(ForeignKey("concerns.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_state: Mapped[ConcernState | None] = mapped_column(
        str_enum(ConcernState, "concern_from_state")
    )
    to_state: Mapped[ConcernState] = mapped_column(str_enum(ConcernState, "concern_to_state"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    reason_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class InvalidConcernTransition(InvalidTransition):
    title = "The concern cannot make this change in its current state"


LIFECYCLE: Lifecycle[ConcernState] = Lifecycle(
    name="concern",
    model=Concern,
    history=ConcernStateChange,
    subject_column="concern_id",
    transitions=TRANSITIONS,
    refusal=InvalidConcernTransition,
)
