"""What the platform knows of its money at Stripe: one row per Stripe object it asked for.

Invariants:
- A row is written (and committed) before the Stripe call it stands for, and its
  id is the call's idempotency key (``payment-42``), so a call repeated after a
  crash or by a second process returns Stripe's first answer.
- Each money object has one purpose and cannot be made twice for it: one
  off-session charge per pledge (attempt 1; on-session payments are later
  attempts), one refund per payment and reason, one transfer per project and kind.
- Amounts are positive integer cents. A row's state only moves forward
  (created -> succeeded | failed); a late or repeated webhook never moves it back.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from outcomes.db import Base, UTCDateTime, str_enum


def card_label(brand: str, last4: str) -> str:
    """How a saved card is shown: "Visa •••• 4242"."""
    return f"{brand.title() or 'Card'} •••• {last4}" if last4 else "Card"


class MethodType(enum.StrEnum):
    """How a pledge is paid."""

    CARD = "card"  # charged off-session at close; at once
    SEPA_DEBIT = "sepa_debit"  # debited off-session under a mandate; the bank answers days later
    BANK_TRANSFER = "bank_transfer"  # the buyer transfers to a virtual IBAN with a reference


# What a pledge names as its payment method when it is paid by bank transfer.
BANK_TRANSFER = MethodType.BANK_TRANSFER.value


def method_label(kind: MethodType, brand: str, last4: str) -> str:
    """How a saved payment method is shown: "Visa •••• 4242", "SEPA •••• 3000"."""
    if kind is MethodType.SEPA_DEBIT:
        return f"SEPA •••• {last4}" if last4 else "SEPA"
    if kind is MethodType.BANK_TRANSFER:
        return "Bank transfer"
    return card_label(brand, last4)


class SetupState(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    INVALID = "invalid"


class MoneyState(enum.StrEnum):
    """A refund's or transfer's state."""

    CREATED = "created"  # the row exists; the Stripe call may or may not have happened
    REQUIRES_ACTION = "requires_action"  # (unused by refunds and transfers; kept in the CHECK)
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PaymentState(enum.StrEnum):
    """A payment attempt's state (owned by ``marketplace.funding.charges``)."""

    CREATED = "created"  # claimed; the Stripe call may or may not have happened
    REQUIRES_ACTION = "requires_action"  # on-session payment waiting for 3-D Secure
    SUCCEEDED = "succeeded"  # the pledge's one success: its money is in escrow
    FAILED = "failed"
    CANCELLED = "cancelled"  # superseded by a newer attempt and cancelled at Stripe
    SURPLUS = "surplus"  # succeeded at Stripe but not needed: refunded at once
    # Stripe answers later: a SEPA debit waiting for the bank, or a bank transfer waiting
    # for the buyer's money (partly received, perhaps)
    PROCESSING = "processing"


LIVE_PAYMENT_STATES = (PaymentState.CREATED, PaymentState.REQUIRES_ACTION, PaymentState.PROCESSING)


class PaymentKind(enum.StrEnum):
    OFF_SESSION = "off_session"  # charged by the platform when funding closes
    ON_SESSION = "on_session"  # paid by the buyer during the grace period


class StripeCustomer(Base):
    """The Stripe Customer of a buyer organisation."""

    __tablename__ = "stripe_customers"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PaymentSetup(Base):
    """A buyer's card saved for off-session charges (a confirmed SetupIntent).

    A succeeded setup is a saved payment method: a later pledge naming its
    ``payment_method_id`` reuses it without another call to Stripe.
    """

    __tablename__ = "payment_setups"
    __table_args__ = (
        # An organisation has one bank-transfer "method" (nothing is saved at Stripe).
        Index(
            "uq_payment_setups_bank_transfer",
            "organisation_id",
            unique=True,
            sqlite_where=text("method_type = 'bank_transfer'"),
            postgresql_where=text("method_type = 'bank_transfer'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_method: Mapped[str] = mapped_column(String(255))
    state: Mapped[SetupState] = mapped_column(str_enum(SetupState, "setup_state"))
    setup_intent_id: Mapped[str | None] = mapped_column(String(64))
    payment_method_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    method_type: Mapped[MethodType] = mapped_column(
        str_enum(MethodType, "method_type"), default=MethodType.CARD
    )
    # The SEPA Direct Debit mandate the buyer accepted (its id at Stripe).
    mandate_id: Mapped[str | None] = mapped_column(String(64))
    brand: Mapped[str] = mapped_column(String(20), default="")
    last4: Mapped[str] = mapped_column(String(4), default="")
    failure_code: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def idempotency_key(self) -> str:
        return f"payment-setup-{self.id}"

    @property
    def label(self) -> str:
        return method_label(self.method_type, self.brand, self.last4)

    @property
    def method(self) -> str:
        """What a pledge names to pay this way again."""
        if self.method_type is MethodType.BANK_TRANSFER:
            return BANK_TRANSFER
        return self.payment_method_id or ""


_LIVE = "state IN ('created', 'requires_action', 'processing')"
_SUCCEEDED = "state = 'succeeded'"


class Payment(Base):
    """One attempt to charge a pledge at Stripe (a PaymentIntent).

    The database holds the owner's two guarantees: at most one live attempt
    (created or requires_action) and at most one success per pledge.
    """

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("pledge_id", "attempt"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("attempt >= 1", name="attempt_positive"),
        Index(None, "state", "updated_at"),
        Index(
            "uq_payments_live_pledge",
            "pledge_id",
            unique=True,
            sqlite_where=text(_LIVE),
            postgresql_where=text(_LIVE),
        ),
        Index(
            "uq_payments_succeeded_pledge",
            "pledge_id",
            unique=True,
            sqlite_where=text(_SUCCEEDED),
            postgresql_where=text(_SUCCEEDED),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id"))
    attempt: Mapped[int]
    kind: Mapped[PaymentKind] = mapped_column(str_enum(PaymentKind, "payment_kind"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    payment_method_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[PaymentState] = mapped_column(str_enum(PaymentState, "payment_state"))
    payment_intent_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The card Stripe charged (filled when it succeeds; empty for an unknown card).
    card_brand: Mapped[str] = mapped_column(String(20), default="")
    card_last4: Mapped[str] = mapped_column(String(4), default="")
    failure_code: Mapped[str] = mapped_column(String(60), default="")
    method_type: Mapped[MethodType] = mapped_column(
        str_enum(MethodType, "payment_method_type"), default=MethodType.CARD
    )
    # A bank transfer's instructions as Stripe gave them (IBAN, BIC, holder, reference)
    # and what of the amount has arrived so far.
    instructions: Mapped[dict[str, str] | None] = mapped_column(JSON)
    received_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def attempt_for(
        cls,
        pledge_id: int,
        amount_cents: int,
        *,
        attempt: int,
        kind: PaymentKind,
        payment_method_id: str,
        now: datetime,
    ) -> Payment:
        """A new ``created`` payment: written and committed before Stripe is called."""
        return cls(
            pledge_id=pledge_id,
            attempt=attempt,
            kind=kind,
            amount_cents=amount_cents,
            payment_method_id=payment_method_id,
            state=PaymentState.CREATED,
            created_at=now,
            updated_at=now,
        )

    @property
    def idempotency_key(self) -> str:
        return f"payment-{self.id}"

    @property
    def cancel_key(self) -> str:
        """The key of the call that cancels this attempt's PaymentIntent."""
        return f"payment-{self.id}-cancel"

    @property
    def card(self) -> str:
        return card_label(self.card_brand, self.card_last4)


def refund_key(refund_id: int) -> str:
    """The Stripe idempotency key of a refund row."""
    return f"refund-{refund_id}"


class Refund(Base):
    """Money returned to a buyer from one payment (a Stripe Refund)."""

    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("payment_id", "reason"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        Index(None, "state", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"))
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id"), index=True)
    reason: Mapped[str] = mapped_column(String(20))  # unfunded | settlement | surplus
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[MoneyState] = mapped_column(str_enum(MoneyState, "refund_state"))
    refund_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    failure_code: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def idempotency_key(self) -> str:
        return refund_key(self.id)


class BalanceReturn(Base):
    """Money a buyer transferred that no payment needs (an overpayment, or a bank transfer
    cancelled unpaid), returned from its Stripe cash balance (a refund ``origin:
    customer_balance``). One open return per organisation at a time."""

    __tablename__ = "balance_returns"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        Index(
            "uq_balance_returns_open",
            "organisation_id",
            unique=True,
            sqlite_where=text("state = 'created'"),
            postgresql_where=text("state = 'created'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[MoneyState] = mapped_column(str_enum(MoneyState, "balance_return_state"))
    refund_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    failure_code: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def idempotency_key(self) -> str:
        return f"balance-return-{self.id}"


class ConnectedAccount(Base):
    """An entrepreneur organisation's Stripe Connect (Express) account for payouts."""

    __tablename__ = "connected_accounts"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64), unique=True)
    details_submitted: Mapped[bool] = mapped_column(Boolean, default=False)
    payouts_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # onboarding links made so far: the next one's idempotency key (``link_key``)
    links_issued: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def link_key(self) -> str:
        """The idempotency key of the onboarding link last counted on this row."""
        return f"connect-organisation-{self.organisation_id}-link-{self.links_issued}"

    @property
    def ready(self) -> bool:
        return self.details_submitted and self.payouts_enabled


class Transfer(Base):
    """Money sent to an entrepreneur's connected account (a Stripe Transfer)."""

    __tablename__ = "transfers"
    __table_args__ = (
        UniqueConstraint("project_id", "kind"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        Index(None, "state", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # cost_tranche | premium
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    fee_cents: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[MoneyState] = mapped_column(str_enum(MoneyState, "transfer_state"))
    transfer_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    failure_code: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def idempotency_key(self) -> str:
        return f"transfer-{self.id}"


class StripeEvent(Base):
    """A webhook delivery handled once: its event id is the key."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(80))
    object_id: Mapped[str] = mapped_column(String(64), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(Text, default="")


class ReconciliationRun(Base):
    """One comparison of the ledger and our rows with Stripe's objects."""

    __tablename__ = "reconciliation_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    checked: Mapped[int]
    differences: Mapped[list[Any]] = mapped_column(JSON)

    @property
    def ok(self) -> bool:
        return not self.differences


class StripePace(Base):
    """The next free moment of one of Stripe's rate limits, shared by every process on
    PostgreSQL (``payments.pacing``; SQLite keeps them in the process): ``*`` is the
    account's global limit, other names an endpoint's ("POST /v1/refunds").
    Microseconds since the epoch."""

    __tablename__ = "stripe_pace"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    next_us: Mapped[int] = mapped_column(BigInteger)
