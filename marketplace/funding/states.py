"""The pledge lifecycle: its table of moves (through ``outcomes.lifecycle``)."""

from __future__ import annotations

from marketplace.funding.models import Pledge, PledgeState, PledgeStateChange
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

LIFECYCLE: Lifecycle[PledgeState] = Lifecycle(
    name="pledge",
    model=Pledge,
    history=PledgeStateChange,
    subject_column="pledge_id",
    transitions=TRANSITIONS,
)


# Move a pledge to a state and record it; InvalidTransition otherwise.
change = LIFECYCLE.change
