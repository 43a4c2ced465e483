"""The pledge lifecycle: its table of moves (through ``outcomes.lifecycle``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.funding.models import Pledge, PledgeState, PledgeStateChange
from outcomes.lifecycle import Lifecycle

P = PledgeState

TRANSITIONS: frozenset[tuple[PledgeState, PledgeState]] = frozenset(
    {
        (P.COMMITTED, P.CANCELLED),  # the buyer cancels while funding is open
        (P.COMMITTED, P.RELEASED),  # funding closed below the threshold, or the project withdrawn
        (P.COMMITTED, P.PAID),  # the off-session charge succeeded
        (P.COMMITTED, P.PAYMENT_FAILED),  # ... or failed
        (P.PAYMENT_FAILED, P.PAID),  # paid on-session within the grace period
        (P.PAYMENT_FAILED, P.CANCELLED),  # not paid within the grace period
        (P.PAID, P.REFUNDED),  # the project ended up unfunded
    }
)

LIFECYCLE: Lifecycle[PledgeState] = Lifecycle(
    name="pledge",
    model=Pledge,
    history=PledgeStateChange,
    subject_column="pledge_id",
    transitions=TRANSITIONS,
)


def change(
    session: Session,
    pledge: Pledge,
    to_state: PledgeState,
    *,
    actor: User | None,
    now: datetime,
    reason: str = "",
) -> PledgeStateChange:
    """Move ``pledge`` to ``to_state`` and record it, or raise InvalidTransition."""
    record: PledgeStateChange = LIFECYCLE.move(
        session, pledge, to_state, actor_id=actor.id if actor else None, now=now, reason=reason
    )
    return record
