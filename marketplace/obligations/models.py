"""Social-return obligations of suppliers to contracting authorities, and the credits
retirements earn toward them (product.md "Social-return obligations (SROI)").

Invariants:
- ``obligation_cents = round_half_even(contract_value_cents * percentage)``, fixed at
  registration. An obligation moves pending -> accepted | rejected (final), each move a
  conditional update with a history row.
- A credit belongs to one retirement (unique), so a serial, retired once, counts toward
  one obligation at most. ``credit_cents = round_half_even(tokens * price_cents *
  factor)`` with the price and the authority's factor copied in when it is made: a later
  factor changes only later credits.
- A credit moves pending -> signed_off | rejected (final); a rejected credit no longer
  counts, its retirement stays final.
- A buyer has at most one pending or accepted obligation per authority and contract
  reference (a second click registers nothing twice); after a rejection it may register
  it again.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from outcomes.db import Base, ExactDecimal, UTCDateTime, str_enum
from outcomes.lifecycle import InvalidTransition, Lifecycle, StateHistory

MAX_REASON = 2000


class ObligationState(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class CreditState(enum.StrEnum):
    PENDING = "pending"
    SIGNED_OFF = "signed_off"
    REJECTED = "rejected"


class Obligation(Base):
    __tablename__ = "obligations"
    __table_args__ = (
        CheckConstraint("contract_value_cents >= 1", name="value_positive"),
        CheckConstraint("obligation_cents >= 1", name="obligation_positive"),
        CheckConstraint("buyer_organisation_id <> authority_organisation_id", name="two_parties"),
        Index(
            "uq_obligations_open_contract",
            "buyer_organisation_id",
            "authority_organisation_id",
            "contract_reference",
            unique=True,
            postgresql_where=text("state <> 'rejected'"),
            sqlite_where=text("state <> 'rejected'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    buyer_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    authority_organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id"), index=True
    )
    contract_reference: Mapped[str] = mapped_column(String(200))
    contract_title: Mapped[str] = mapped_column(String(200))
    contract_value_cents: Mapped[int] = mapped_column(BigInteger)
    # A fraction: 0.05 is 5%.
    percentage: Mapped[Decimal] = mapped_column(ExactDecimal(9, 6))
    obligation_cents: Mapped[int] = mapped_column(BigInteger)
    due_date: Mapped[date] = mapped_column(Date)
    state: Mapped[ObligationState] = mapped_column(str_enum(ObligationState, "obligation_state"))
    # The authority's words when it rejected the obligation.
    reason: Mapped[str] = mapped_column(String(MAX_REASON), default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ObligationStateChange(Base, StateHistory):
    subject = ("obligation", "obligation_id")
    __tablename__ = "obligation_state_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_state: Mapped[ObligationState | None] = mapped_column(
        str_enum(ObligationState, "obligation_from_state")
    )
    to_state: Mapped[ObligationState] = mapped_column(
        str_enum(ObligationState, "obligation_to_state")
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    reason_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Credit(Base):
    __tablename__ = "obligation_credits"
    __table_args__ = (
        CheckConstraint("tokens >= 1", name="tokens_positive"),
        CheckConstraint("credit_cents >= 0", name="credit_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"), index=True)
    retirement_id: Mapped[int] = mapped_column(ForeignKey("retirements.id"), unique=True)
    tokens: Mapped[int]
    price_cents: Mapped[int] = mapped_column(BigInteger)
    factor: Mapped[Decimal] = mapped_column(ExactDecimal(6, 4))
    credit_cents: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[CreditState] = mapped_column(str_enum(CreditState, "credit_state"))
    # The authority's words when it rejected the credit.
    reason: Mapped[str] = mapped_column(String(MAX_REASON), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CreditStateChange(Base, StateHistory):
    subject = ("credit", "credit_id")
    __tablename__ = "obligation_credit_state_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_id: Mapped[int] = mapped_column(ForeignKey("obligation_credits.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_state: Mapped[CreditState | None] = mapped_column(
        str_enum(CreditState, "credit_from_state")
    )
    to_state: Mapped[CreditState] = mapped_column(str_enum(CreditState, "credit_to_state"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    reason_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class InvalidObligationTransition(InvalidTransition):
    title = "The obligation cannot make this change in its current state"


class InvalidCreditTransition(InvalidTransition):
    title = "The credit cannot make this change in its current state"


OBLIGATION_LIFECYCLE: Lifecycle[ObligationState] = Lifecycle(
    name="obligation",
    model=Obligation,
    history=ObligationStateChange,
    subject_column="obligation_id",
    transitions=frozenset(
        {
            (ObligationState.PENDING, ObligationState.ACCEPTED),
            (ObligationState.PENDING, ObligationState.REJECTED),
        }
    ),
    refusal=InvalidObligationTransition,
)

CREDIT_LIFECYCLE: Lifecycle[CreditState] = Lifecycle(
    name="credit",
    model=Credit,
    history=CreditStateChange,
    subject_column="credit_id",
    transitions=frozenset(
        {
            (CreditState.PENDING, CreditState.SIGNED_OFF),
            (CreditState.PENDING, CreditState.REJECTED),
        }
    ),
    refusal=InvalidCreditTransition,
)
