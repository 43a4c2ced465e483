"""Outcome commitments: what a project promises to achieve, line by line.

Invariants:
- A commitment names one outcome type and a target quantity above zero, with
  the evidence grade the entrepreneur expects to provide.
- ``evidence_grade`` is the grade proposed, then the one the panel set at valuation;
  ``verified_quantity`` and ``met_grade`` (the grade the evidence met) are empty
  until the evaluation is approved.
- Commitments belong to a project (the ``projects`` table of the marketplace);
  this module refers to it by table name only, so ``outcomes`` imports nothing
  from above.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column, relationship

from outcomes.catalogue import OutcomeType
from outcomes.db import Base
from valuation import EvidenceGrade


class OutcomeCommitment(Base):
    __tablename__ = "outcome_commitments"
    __table_args__ = (
        CheckConstraint("target_quantity > 0", name="target_positive"),
        CheckConstraint(
            "verified_quantity IS NULL OR verified_quantity >= 0", name="verified_not_negative"
        ),
        Index(None, "project_id", "position", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    position: Mapped[int]
    outcome_type_id: Mapped[int] = mapped_column(ForeignKey("outcome_types.id"), index=True)
    target_quantity: Mapped[int]
    evidence_grade: Mapped[EvidenceGrade] = mapped_column(
        Enum(
            EvidenceGrade,
            name="evidence_grade",
            native_enum=False,
            length=1,
            create_constraint=True,
            values_callable=lambda grades: [g.value for g in grades],
        )
    )
    verified_quantity: Mapped[int | None]
    met_grade: Mapped[EvidenceGrade | None] = mapped_column(
        Enum(
            EvidenceGrade,
            name="commitment_met_grade",
            native_enum=False,
            length=1,
            create_constraint=True,
            values_callable=lambda grades: [g.value for g in grades],
        )
    )

    # selectin: a page of projects shares a few outcome types; load each once.
    outcome_type: Mapped[OutcomeType] = relationship(lazy="selectin")

    def __repr__(self) -> str:
        return f"<OutcomeCommitment {self.outcome_type_id} x{self.target_quantity}>"
