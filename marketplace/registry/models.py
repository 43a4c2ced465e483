"""The token registry: serial blocks of minted tokens, their holders and retirements.

Invariants:
- A project's minted tokens are serials 1..tokens_minted, each in exactly one
  block; blocks are allocated to buyers in pledge order at settlement.
- A block is ``issued`` (held by an organisation), ``retired`` (final),
  ``buffer`` (in the platform's buffer pool, no holder) or ``cancelled`` (a
  buffer block cancelled to reverse tokens after an upheld dispute, final, naming
  the concern). Retiring part of a block
  splits it: the block shrinks to the retired serials and a new issued block
  holds the rest, in the same transaction. A block changes only from issued,
  by a conditional update, so a serial is retired once, also concurrently.
- A block's readable serial is ``SOM-P000042-2027-0000001-0001680``: prefix,
  project, vintage (year of the end date), first and last serial.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from outcomes.db import Base, UTCDateTime, str_enum

SERIAL_PREFIX = "SOM"


class BlockStatus(enum.StrEnum):
    ISSUED = "issued"
    RETIRED = "retired"
    BUFFER = "buffer"
    CANCELLED = "cancelled"


class Purpose(enum.StrEnum):
    SROI_OBLIGATION = "sroi_obligation"  # a public-procurement social-return obligation
    CSR_VOLUNTARY = "csr_voluntary"
    CSRD_REPORT = "csrd_report"


class Claim(enum.StrEnum):
    CONTRIBUTION = "contribution"
    OFFSET = "offset"


def serial_block(project_id: int, vintage: int, first: int, last: int) -> str:
    return f"{SERIAL_PREFIX}-P{project_id:06d}-{vintage}-{first:07d}-{last:07d}"


class TokenBlock(Base):
    __tablename__ = "token_blocks"
    __table_args__ = (
        CheckConstraint(
            "first_serial >= 1 AND first_serial <= last_serial", name="serials_ordered"
        ),
        CheckConstraint(
            "(status = 'retired') = (retirement_id IS NOT NULL)", name="retired_with_retirement"
        ),
        CheckConstraint(
            "(status IN ('buffer', 'cancelled')) = (holder_id IS NULL)", name="pool_without_holder"
        ),
        CheckConstraint(
            "(status = 'cancelled') = (concern_id IS NOT NULL)", name="cancelled_with_concern"
        ),
        UniqueConstraint("project_id", "first_serial"),
        Index(None, "holder_id", "status", "project_id", "first_serial"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    vintage: Mapped[int]
    first_serial: Mapped[int]
    last_serial: Mapped[int]
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    status: Mapped[BlockStatus] = mapped_column(str_enum(BlockStatus, "block_status"))
    retirement_id: Mapped[int | None] = mapped_column(ForeignKey("retirements.id"), index=True)
    # The upheld concern whose reversal cancelled this buffer block.
    concern_id: Mapped[int | None] = mapped_column(ForeignKey("concerns.id"), index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def quantity(self) -> int:
        return self.last_serial - self.first_serial + 1

    @property
    def serial(self) -> str:
        return serial_block(self.project_id, self.vintage, self.first_serial, self.last_serial)


class Retirement(Base):
    __tablename__ = "retirements"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint(
            "purpose <> 'sroi_obligation' OR contract_reference <> ''", name="sroi_needs_contract"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    quantity: Mapped[int]
    beneficiary: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[Purpose] = mapped_column(str_enum(Purpose, "purpose"))
    claim: Mapped[Claim] = mapped_column(str_enum(Claim, "claim"))
    contract_reference: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    retired_at: Mapped[datetime] = mapped_column(UTCDateTime)

    blocks: Mapped[list[TokenBlock]] = relationship(
        order_by="TokenBlock.first_serial", lazy="selectin"
    )


class TokenTransfer(Base):
    """Unretired, unfrozen tokens of a project moved from one organisation to another
    (product.md "Token transfers"): final, and public in the serials' history."""

    __tablename__ = "token_transfers"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("from_organisation_id <> to_organisation_id", name="to_another"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    from_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    to_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    quantity: Mapped[int]
    note: Mapped[str] = mapped_column(Text, default="")
    transferred_at: Mapped[datetime] = mapped_column(UTCDateTime)

    ranges: Mapped[list[TransferRange]] = relationship(
        order_by="TransferRange.first_serial", lazy="selectin"
    )


class TransferRange(Base):
    """The serials one transfer moved (a block's history outlives its splits)."""

    __tablename__ = "token_transfer_ranges"
    __table_args__ = (
        CheckConstraint(
            "first_serial >= 1 AND first_serial <= last_serial", name="serials_ordered"
        ),
        Index(None, "project_id", "first_serial", "last_serial"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("token_transfers.id"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    vintage: Mapped[int]
    first_serial: Mapped[int]
    last_serial: Mapped[int]

    @property
    def serial(self) -> str:
        return serial_block(self.project_id, self.vintage, self.first_serial, self.last_serial)
