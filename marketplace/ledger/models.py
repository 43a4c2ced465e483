"""The double-entry money ledger: accounts, journal entries and their legs.

Invariants (enforced by the database, not only by the code):
- A leg moves a positive whole number of cents from one account (credit) to
  another (debit): every entry balances by construction, on every database.
- An account's ``balance_cents`` is kept in its normal direction (debit-normal
  for assets, credit-normal for liabilities and revenue) and updated in the
  same transaction as the legs; accounts that must not go negative (escrow,
  payables, fees) have a CHECK that refuses it.
- An entry's ``reference`` names what caused it (``pledge:42:charge``) and is
  unique: a movement is posted once. An entry is reversed at most once.
- Posted entries and legs are never updated (a trigger refuses it);
  corrections are new, reversing entries.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from outcomes.db import Base, UTCDateTime


class AccountKind(enum.StrEnum):
    STRIPE_CLEARING = "stripe_clearing"  # asset: money Stripe holds for the platform
    BUYER = "buyer"  # liability: what a buyer paid and is not yet allocated or refunded
    ESCROW = "escrow"  # liability: money held for one project
    PAYABLE = "payable"  # liability: owed to an entrepreneur's organisation
    PLATFORM_FEES = "platform_fees"  # revenue


DEBIT_NORMAL = frozenset({AccountKind.STRIPE_CLEARING})
NEVER_NEGATIVE = frozenset({AccountKind.ESCROW, AccountKind.PAYABLE, AccountKind.PLATFORM_FEES})


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint("may_go_negative OR balance_cents >= 0", name="not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[AccountKind] = mapped_column(
        Enum(
            AccountKind,
            name="account_kind",
            native_enum=False,
            length=20,
            create_constraint=True,
            values_callable=lambda kinds: [k.value for k in kinds],
        )
    )
    debit_normal: Mapped[bool] = mapped_column(Boolean)
    may_go_negative: Mapped[bool] = mapped_column(Boolean)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"))
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)

    def __repr__(self) -> str:
        return f"<LedgerAccount {self.code} {self.balance_cents}>"


class JournalEntry(Base):
    __tablename__ = "journal_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    memo: Mapped[str] = mapped_column(Text, default="")
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"), unique=True)

    legs: Mapped[list[JournalLeg]] = relationship(order_by="JournalLeg.id", lazy="selectin")


class JournalLeg(Base):
    __tablename__ = "journal_legs"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="two_accounts"),
        Index(None, "debit_account_id"),
        Index(None, "credit_account_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id"), index=True)
    debit_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    credit_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)

    debit_account: Mapped[LedgerAccount] = relationship(
        foreign_keys=[debit_account_id], lazy="joined"
    )
    credit_account: Mapped[LedgerAccount] = relationship(
        foreign_keys=[credit_account_id], lazy="joined"
    )
