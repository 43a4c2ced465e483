"""Pledges, their state history, stored idempotent responses and buyer notifications.

Invariants:
- A pledge is a whole number of tokens (>= 1) at the project's token price; its
  amount is fixed when it is made (``tokens * token_price_cents``).
- The live pledges of a project (committed, payment_failed, paid) sum to the
  project's ``tokens_pledged``, which never exceeds ``tokens_total``.
- A pledge's state changes only through ``marketplace.funding.states``; every
  change leaves a history row, never edited.
- An idempotency record belongs to one user and key; it keeps the first
  successful response and the fingerprint of the request that produced it.
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
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import Organisation, User
from marketplace.payments.models import PaymentSetup
from marketplace.projects.models import Project
from outcomes.db import Base, UTCDateTime, str_enum


class PledgeState(enum.StrEnum):
    COMMITTED = "committed"  # card saved, nothing charged yet
    CANCELLED = "cancelled"  # by the buyer while funding, or unpaid after the grace period
    RELEASED = "released"  # funding closed below the threshold: nothing charged
    PAYMENT_FAILED = "payment_failed"  # the off-session charge failed; pay within the grace
    PAID = "paid"
    REFUNDED = "refunded"  # the project ended up unfunded: every cent returned


LIVE_STATES = (PledgeState.COMMITTED, PledgeState.PAYMENT_FAILED, PledgeState.PAID)


class Pledge(Base):
    __tablename__ = "pledges"
    __table_args__ = (
        CheckConstraint("tokens >= 1", name="tokens_positive"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        Index(None, "project_id", "state"),
        Index(None, "organisation_id", "id"),
        Index(None, "state", "grace_until"),
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

    project: Mapped[Project] = relationship(lazy="joined")
    organisation: Mapped[Organisation] = relationship(lazy="joined")
    user: Mapped[User] = relationship()
    payment_setup: Mapped[PaymentSetup] = relationship(lazy="joined")
    history: Mapped[list[PledgeStateChange]] = relationship(order_by="PledgeStateChange.id")

    @property
    def payment_method(self) -> str:
        return self.payment_setup.payment_method_id

    @property
    def card(self) -> str:
        return self.payment_setup.label

    def __repr__(self) -> str:
        return f"<Pledge {self.id} {self.tokens} {self.state}>"


class PledgeStateChange(Base):
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


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class MailState(enum.StrEnum):
    PENDING = "pending"  # to be e-mailed by the delivery sweep
    SENDING = "sending"  # claimed by one delivery; never sent again
    SENT = "sent"  # handed to the SMTP server
    LOGGED = "logged"  # no SMTP server configured: written to the log instead
    FAILED = "failed"  # the SMTP server refused it; shown to the admins
    SKIPPED = "skipped"  # made before e-mail existed


class Notification(Base):
    """A notice to an organisation (or one of its users): shown in the app, and e-mailed.

    Written in the transaction that causes it (so a rolled-back change notifies
    nobody), unique by ``key`` (so a repeated sweep notifies once), and e-mailed
    after the commit by the delivery sweep, which claims each row first.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index(None, "organisation_id", "id"),
        Index(None, "mail_state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str | None] = mapped_column(String(160), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mail_state: Mapped[MailState] = mapped_column(
        str_enum(MailState, "mail_state"), default=MailState.PENDING
    )
    mailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mail_error: Mapped[str] = mapped_column(String(300), default="")
    # The parameters of the subject and body templates (None: stored as final text).
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
