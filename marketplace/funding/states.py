"""The pledge state machine: the one way a pledge changes state.

Invariants:
- ``TRANSITIONS`` is the whole table; any other move raises InvalidTransition
  (409 ``invalid_transition``) and changes nothing.
- A transition is a conditional update (``WHERE state = :from``): of two
  concurrent moves of one pledge exactly one wins.
- Every transition appends one history row (who, when, from, to, why).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.funding.models import Pledge, PledgeState, PledgeStateChange
from marketplace.projects.states import InvalidTransition

P = PledgeState

TRANSITIONS: frozenset[tuple[PledgeState, PledgeState]] = frozenset(
    {
        (P.COMMITTED, P.CANCELLED),  # the buyer cancels while funding is open
        (P.COMMITTED, P.RELEASED),  # funding closed below the threshold
        (P.COMMITTED, P.PAID),  # the off-session charge succeeded
        (P.COMMITTED, P.PAYMENT_FAILED),  # ... or failed
        (P.PAYMENT_FAILED, P.PAID),  # paid on-session within the grace period
        (P.PAYMENT_FAILED, P.CANCELLED),  # not paid within the grace period
        (P.PAID, P.REFUNDED),  # the project ended up unfunded
    }
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
    from_state = pledge.state
    if (from_state, to_state) not in TRANSITIONS:
        raise InvalidTransition(f"A {from_state.value} pledge cannot become {to_state.value}.")
    result = session.execute(
        update(Pledge)
        .where(Pledge.id == pledge.id, Pledge.state == from_state)
        .values(state=to_state, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.refresh(pledge)
        raise InvalidTransition(
            f"The pledge is now {pledge.state.value}; it cannot become {to_state.value}."
        )
    session.refresh(pledge, ["state", "updated_at"])
    record = PledgeStateChange(
        pledge_id=pledge.id,
        at=now,
        from_state=from_state,
        to_state=to_state,
        actor_id=actor.id if actor else None,
        reason=reason,
    )
    session.add(record)
    session.flush()
    return record
