"""Pledges and their state history.

Invariants:
- A pledge is a whole number of tokens (>= 1) at the project's token price; its
  amount is fixed when it is made (``tokens * token_price_cents``).
- The live pledges of a project (committed, payment_failed, paid) sum to the
  project's ``tokens_pledged``, which never exceeds ``tokens_total``.
- A pledge's state changes only through ``marketplace.funding.states``; every
  change leaves a history row, never edited.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Text,
    and_,
)
from sqlalchemy.orm import Mapped, foreign, mapped_column, relationship, remote

from marketplace.accounts.models import Organisation, User
from marketplace.payments.models import MethodType, Payment, PaymentSetup, PaymentState
from marketplace.projects.models import Project
from outcomes.db import Base, UTCDateTime, str_enum
from outcomes.lifecycle import StateHistory


class PledgeState(enum.StrEnum):
    COMMITTED = "committed"  # card saved, nothing charged yet
    CANCELLED = "cancelled"  # by the buyer while funding, or unpaid after the grace period
    RELEASED = "released"  # funding closed below the threshold: nothing charged
    PAYMENT_FAILED = "payment_failed"  # the off-session charge failed; pay within the grace
    # charged, the answer still to come: a SEPA debit at the bank, or a bank transfer the
    # buyer makes before ``grace_until``
    PROCESSING = "processing"
    PAID = "paid"
    REFUNDED = "refunded"  # the project ended up unfunded: every cent returned


LIVE_STATES = (
    PledgeState.COMMITTED,
    PledgeState.PAYMENT_FAILED,
    PledgeState.PROCESSING,
    PledgeState.PAID,
)


class Pledge(Base):
    __tablename__ = "pledges"
    __table_args__ = (
        CheckConstraint("tokens >= 1", name="tokens_positive"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        Index(None, "project_id", "state"),
        Index(None, "organisation_id", "id"),
        Index(None, "state", "grace_until"),
        Index(None, "pool_id", "project_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    payment_setup_id: Mapped[int] = mapped_column(ForeignKey("payment_setups.id"))
    tokens: Mapped[int]
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[PledgeState] = mapped_column(str_enum(PledgeState, "pledge_state"))
    grace_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A pledge a matchfunding pool made to match another (``matched_pledge_id``).
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("pools.id"))
    matched_pledge_id: Mapped[int | None] = mapped_column(ForeignKey("pledges.id"), unique=True)

    project: Mapped[Project] = relationship(lazy="joined")
    organisation: Mapped[Organisation] = relationship(lazy="joined")
    user: Mapped[User] = relationship()
    payment_setup: Mapped[PaymentSetup] = relationship(lazy="joined")
    history: Mapped[list[PledgeStateChange]] = relationship(order_by="PledgeStateChange.id")
    # The one succeeded payment (the database allows no second).
    paid_with: Mapped[Payment | None] = relationship(
        primaryjoin=lambda: and_(
            Payment.pledge_id == Pledge.id, Payment.state == PaymentState.SUCCEEDED
        ),
        viewonly=True,
        uselist=False,
    )

    @property
    def payment_method(self) -> str:
        """The payment method charged (once paid), else the saved one to be charged."""
        if (
            self.paid_with is not None
            and self.paid_with.method_type is not MethodType.BANK_TRANSFER
        ):
            return self.paid_with.payment_method_id
        return self.payment_setup.method

    # The bank transfer awaited (its instructions and what has arrived), if one is.
    awaited_transfer: Mapped[Payment | None] = relationship(
        primaryjoin=lambda: and_(
            Payment.pledge_id == Pledge.id,
            Payment.method_type == MethodType.BANK_TRANSFER,
            Payment.state == PaymentState.PROCESSING,
        ),
        viewonly=True,
        uselist=False,
    )

    # The pledge a pool made to match this one (live or not).
    match: Mapped[Pledge | None] = relationship(
        primaryjoin=lambda: Pledge.id == remote(foreign(Pledge.matched_pledge_id)),
        viewonly=True,
        uselist=False,
    )

    @property
    def matched(self) -> dict[str, int] | None:
        """The match as the API shows it: {pool_id, pledge_id, tokens}, while it lives."""
        match = self.match
        if match is None or match.state not in LIVE_STATES or match.pool_id is None:
            return None
        return {"pool_id": match.pool_id, "pledge_id": match.id, "tokens": match.tokens}

    @property
    def payment_type(self) -> str:
        return self.payment_setup.method_type.value

    @property
    def card(self) -> str:
        """The card charged (once paid), else the saved card to be charged."""
        paid = self.paid_with
        if (
            paid is not None
            and paid.method_type is MethodType.CARD
            and paid.payment_method_id != self.payment_setup.payment_method_id
        ):
            return paid.card
        return self.payment_setup.label

    def __repr__(self) -> str:
        return f"<Pledge {self.id} {self.tokens} {self.state}>"


class PledgeStateChange(Base, StateHistory):
    subject = ("pledge", "pledge_id")
    __tablename__ = "pledge_state_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_state: Mapped[PledgeState | None] = mapped_column(
        str_enum(PledgeState, "pledge_from_state")
    )
    to_state: Mapped[PledgeState] = mapped_column(str_enum(PledgeState, "pledge_to_state"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    reason_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
