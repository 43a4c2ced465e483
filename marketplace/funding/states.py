"""The pledge lifecycle: its table of moves (through ``outcomes.lifecycle``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from marketplace.funding.models import LIVE_STATES, Pledge, PledgeState, PledgeStateChange
from marketplace.pools import totals as pool_totals
from outcomes.lifecycle import Lifecycle

P = PledgeState

TRANSITIONS: frozenset[tuple[PledgeState, PledgeState]] = frozenset(
    {
        (P.COMMITTED, P.CANCELLED),  # the buyer cancels while funding is open
        (P.COMMITTED, P.RELEASED),  # funding closed below the threshold, or the project withdrawn
        (P.COMMITTED, P.PAID),  # the off-session charge succeeded
        (P.COMMITTED, P.PAYMENT_FAILED),  # ... or failed
        (P.COMMITTED, P.PROCESSING),  # a SEPA debit sent, or a bank transfer awaited
        (P.PROCESSING, P.PAID),  # the bank paid the debit, or the transfer arrived in full
        (P.PROCESSING, P.PAYMENT_FAILED),  # the debit failed: the grace period opens
        (P.PROCESSING, P.CANCELLED),  # the transfer did not arrive in full by its deadline
        (P.PAYMENT_FAILED, P.PAID),  # paid on-session within the grace period
        (P.PAYMENT_FAILED, P.CANCELLED),  # not paid within the grace period
        (P.PAID, P.REFUNDED),  # the project ended up unfunded
    }
)


def _keep_pool_totals(
    session: Session, pledge: Any, before: PledgeState, after: PledgeState
) -> None:
    """A pool's pledge leaving the live states frees its money in the pool's totals."""
    if pledge.pool_id is not None and before in LIVE_STATES and after not in LIVE_STATES:
        pool_totals.release(
            session, pool_id=pledge.pool_id, project_id=pledge.project_id, cents=pledge.amount_cents
        )


LIFECYCLE: Lifecycle[PledgeState] = Lifecycle(
    name="pledge",
    model=Pledge,
    history=PledgeStateChange,
    subject_column="pledge_id",
    transitions=TRANSITIONS,
    after_move=_keep_pool_totals,
)


# Move a pledge to a state and record it; InvalidTransition otherwise.
change = LIFECYCLE.change
