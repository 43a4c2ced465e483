"""A project's settlement, as computed once from its approved evaluation.

Invariants:
- One settlement per project (unique): inserting it is the claim, so two
  schedulers settle once. Its figures never change after they are written.
- The shares (one per buyer organisation) sum to the settlement's minted tokens
  and refund total; the money moves through ``refunds`` (one per payment,
  reason ``settlement``) and one ``transfers`` row of kind ``premium``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from outcomes.db import Base, UTCDateTime


class Settlement(Base):
    __tablename__ = "settlements"
    __table_args__ = (
        CheckConstraint(
            "v_verified_cents >= 0 AND v_verified_cents <= v_target_cents",
            name="verified_within_target",
        ),
        CheckConstraint(
            "raised_cents = cost_tranche_cents + premium_payout_cents + refund_total_cents",
            name="every_cent_accounted",
        ),
        CheckConstraint(
            "tokens_buffer >= 0 AND tokens_buffer <= tokens_minted", name="buffer_within_minted"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), unique=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"))
    tokens_paid: Mapped[int]
    raised_cents: Mapped[int] = mapped_column(BigInteger)
    cost_tranche_cents: Mapped[int] = mapped_column(BigInteger)
    cost_fee_cents: Mapped[int] = mapped_column(BigInteger)
    v_target_cents: Mapped[int] = mapped_column(BigInteger)
    v_verified_cents: Mapped[int] = mapped_column(BigInteger)
    tokens_minted: Mapped[int]
    # floor(tokens_minted * BUFFER_RATE), issued to the buffer pool; the buyers' shares
    # sum to tokens_minted - tokens_buffer.
    tokens_buffer: Mapped[int] = mapped_column(default=0, server_default="0")
    premium_payout_cents: Mapped[int] = mapped_column(BigInteger)
    premium_fee_cents: Mapped[int] = mapped_column(BigInteger)
    refund_total_cents: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    shares: Mapped[list[SettlementShare]] = relationship(
        order_by="SettlementShare.first_pledge_id", lazy="selectin"
    )

    @property
    def fees_cents(self) -> int:
        return self.cost_fee_cents + self.premium_fee_cents


class SettlementShare(Base):
    __tablename__ = "settlement_shares"
    __table_args__ = (
        UniqueConstraint("settlement_id", "organisation_id"),
        CheckConstraint(
            "tokens_minted >= 0 AND tokens_minted <= tokens_paid", name="minted_within_paid"
        ),
        CheckConstraint("refund_cents >= 0", name="refund_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_id: Mapped[int] = mapped_column(ForeignKey("settlements.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    first_pledge_id: Mapped[int] = mapped_column(ForeignKey("pledges.id"))
    tokens_paid: Mapped[int]
    tokens_minted: Mapped[int]
    refund_cents: Mapped[int] = mapped_column(BigInteger)
