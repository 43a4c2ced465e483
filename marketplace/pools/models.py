"""Matchfunding pools (product.md "Matchfunding pools").

Invariants:
- A pool matches another buyer's pledge of ``n`` tokens on an eligible project with
  ``floor(n * match_ratio)`` tokens of its own (or fewer: what its budget, its cap on the
  project and the project's remaining tokens allow), in the pledge's own transaction.
- What a pool has committed is the sum of its live pledges (committed, processing,
  payment_failed, paid): never more than its budget, and on one project never more than
  its cap. Both sums are kept as running totals (``pools.committed_cents`` and
  ``pool_projects.committed_cents``) that a match adds to with a conditional update and
  a pool pledge leaving the live states takes from (the pledge lifecycle's hook), so a
  pledge reads them in one row each instead of summing a growing table; the database
  refuses a total above the budget or below zero.
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
            "committed_cents >= 0 AND committed_cents <= budget_cents", name="committed_in_budget"
        ),
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
    # What its live pledges hold (see the invariants).
    committed_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Which projects it matches: of this round (if any), these themes and cities (if any).
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id"))
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)
    cities: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[PoolState] = mapped_column(str_enum(PoolState, "pool_state"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def takes(self, *, round_id: int | None, theme: str, city: str) -> bool:
        """Whether a project of this round, theme and city is eligible."""
        return takes(
            self.round_id, self.themes, self.cities, round_id=round_id, theme=theme, city=city
        )


def takes(
    pool_round_id: int | None,
    themes: list[str],
    cities: list[str],
    *,
    round_id: int | None,
    theme: str,
    city: str,
) -> bool:
    """Whether a pool of this round (if any), themes and cities takes a project."""
    if pool_round_id is not None and pool_round_id != round_id:
        return False
    if themes and theme not in themes:
        return False
    return not cities or city.casefold() in {c.casefold() for c in cities}


class PoolProject(Base):
    """What a pool's live pledges hold on one project (its cap applies to it)."""

    __tablename__ = "pool_projects"
    __table_args__ = (CheckConstraint("committed_cents >= 0", name="committed_not_negative"),)

    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    committed_cents: Mapped[int] = mapped_column(BigInteger, default=0)


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
