"""Receipts and credit notes (product.md "Payment methods and receipts").

Invariants:
- Receipts and credit notes share one numbering per calendar year (the platform's
  time zone), ``SOM-2027-000123``: consecutive and gap-free. A number is taken from the
  year's counter row in the transaction that writes the document, so a rolled-back
  transaction leaves no gap and two writers, whichever process they run in, queue on
  the counter row.
- Every successful charge has one receipt (``payment_id`` unique among receipts);
  every succeeded refund has one credit note (``refund_id`` unique) referring to the
  receipt of the payment it returns money from.
- A document is written once: its facts as they were at issue (``details``) and its
  PDF, in the buyer's language, with their SHA-256. The database refuses any UPDATE of
  the row (a trigger made by migration 0024).
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
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from outcomes.db import Base, UTCDateTime, str_enum

NUMBER_PREFIX = "SOM"


def document_number(year: int, sequence: int) -> str:
    return f"{NUMBER_PREFIX}-{year}-{sequence:06d}"


class DocumentKind(enum.StrEnum):
    RECEIPT = "receipt"
    CREDIT_NOTE = "credit_note"


class ReceiptCounter(Base):
    """The last number given in a year."""

    __tablename__ = "receipt_counters"
    __table_args__ = (CheckConstraint("last_number >= 0", name="not_negative"),)

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(default=0)


_RECEIPT = "kind = 'receipt'"


class Receipt(Base):
    """A receipt for a charge, or a credit note for a refund."""

    __tablename__ = "receipts"
    __table_args__ = (
        UniqueConstraint("year", "sequence"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint(
            "(kind = 'receipt' AND refund_id IS NULL AND refers_to_id IS NULL) OR "
            "(kind = 'credit_note' AND refund_id IS NOT NULL AND refers_to_id IS NOT NULL)",
            name="kind_links",
        ),
        Index(
            "uq_receipts_payment",
            "payment_id",
            unique=True,
            sqlite_where=text(_RECEIPT),
            postgresql_where=text(_RECEIPT),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    year: Mapped[int]
    sequence: Mapped[int]
    kind: Mapped[DocumentKind] = mapped_column(str_enum(DocumentKind, "document_kind"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id"), unique=True)
    refers_to_id: Mapped[int | None] = mapped_column(ForeignKey("receipts.id"))
    pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    language: Mapped[str] = mapped_column(String(5))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the document says, as it was at issue: both parties, the lines, the amount.
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
