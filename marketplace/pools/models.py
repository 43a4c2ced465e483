"""Matchfunding pools (product.md "Matchfunding pools").

Invariants:
- A pool matches another buyer's pledge of ``n`` tokens on an eligible project with
  ``floor(n * match_ratio)`` tokens of its own (or fewer: what its budget, its cap on the
  project and the project's remaining tokens allow), in the pledge's own transaction.
- What a pool has committed is the sum of its live pledges (committed, processing,
  payment_failed, paid): never more than its budget, and on one project never more than
  its cap. Both are checked with the pool's row locked, so concurrent pledges queue.
- A matched pledge is an ordinary pledge of the funder (charged, refunded and minted by
  the same rules); it names the pledge it matches (``pledges.matched_pledge_id``, unique),
  and cancelling that pledge cancels the match.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from outcomes.db import Base, ExactDecimal, UTCDateTime, str_enum
from outcomes.lifecycle import InvalidTransition, Lifecycle, StateHistory


class PoolState(enum.StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class Pool(Base):
    __tablename__ = "pools"
    __table_args__ = (
        CheckConstraint("budget_cents > 0", name="budget_positive"),
        CheckConstraint("cap_per_project_cents > 0", name="cap_positive"),
        CheckConstraint(
            "CAST(match_ratio AS NUMERIC) > 0 AND CAST(match_ratio AS NUMERIC) <= 10",
            name="ratio_range",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The funder's saved payment method: each matched pledge is charged with it.
    payment_setup_id: Mapped[int] = mapped_column(ForeignKey("payment_setups.id"))
    name: Mapped[str] = mapped_column(Text, default="")
    budget_cents: Mapped[int] = mapped_column(BigInteger)
    match_ratio: Mapped[Decimal] = mapped_column(ExactDecimal(6, 4))
    cap_per_project_cents: Mapped[int] = mapped_column(BigInteger)
    # Which projects it matches: of this round (if any), these themes and cities (if any).
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id"))
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)
    cities: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[PoolState] = mapped_column(str_enum(PoolState, "pool_state"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def takes(self, *, round_id: int | None, theme: str, city: str) -> bool:
        """Whether a project of this round, theme and city is eligible."""
        if self.round_id is not None and self.round_id != round_id:
            return False
        if self.themes and theme not in self.themes:
            return False
        return not self.cities or city.casefold() in {c.casefold() for c in self.cities}


class PoolStateChange(Base, StateHistory):
    subject = ("pool", "pool_id")
    __tablename__ = "pool_state_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_state: Mapped[PoolState | None] = mapped_column(str_enum(PoolState, "pool_from_state"))
    to_state: Mapped[PoolState] = mapped_column(str_enum(PoolState, "pool_to_state"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    reason_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class InvalidPoolTransition(InvalidTransition):
    title = "The pool cannot make this change in its current state"


POOL_LIFECYCLE: Lifecycle[PoolState] = Lifecycle(
    name="pool",
    model=Pool,
    history=PoolStateChange,
    subject_column="pool_id",
    transitions=frozenset({(PoolState.ACTIVE, PoolState.CLOSED)}),
    refusal=InvalidPoolTransition,
)
