"""Evaluation and verification: an independent evaluator records what was achieved.

Invariants:
- A project has at most one evaluation; its state moves only through
  ``TRANSITIONS`` (assigned -> submitted -> approved, or submitted -> returned ->
  submitted ...), each move a conditional update with a history row.
- Results name the project's own commitments, one each; a verified quantity is
  a whole number >= 0 with an evidence note and the grade the evidence met
  (the commitment's planned grade when not given).
- No result is recorded before the evaluator signed its conflict-of-interest
  declaration (409 ``declaration_needed``); the text and time are kept. An
  evaluation is submitted only with a result for every commitment.
- The person who approves is an admin who is not the evaluator (four eyes);
  approval copies the verified quantities and met grades onto the commitments.
- Who may be assigned (accreditation, conflicts of interest) is decided above,
  by the marketplace, which knows organisations and pledges; this module
  refers to users and projects by table name only.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from outcomes.commitments import OutcomeCommitment
from outcomes.db import Base, UTCDateTime, str_enum
from outcomes.errors import Conflict, Forbidden, Message, ValidationFailed
from outcomes.lifecycle import InvalidTransition, Lifecycle, StateHistory
from valuation import EvidenceGrade

MAX_NOTE = 5000


class EvaluationState(enum.StrEnum):
    ASSIGNED = "assigned"
    SUBMITTED = "submitted"
    RETURNED = "returned"
    APPROVED = "approved"


E = EvaluationState
TRANSITIONS = frozenset(
    {
        (E.ASSIGNED, E.SUBMITTED),
        (E.SUBMITTED, E.APPROVED),
        (E.SUBMITTED, E.RETURNED),
        (E.RETURNED, E.SUBMITTED),
    }
)
EDITABLE = (E.ASSIGNED, E.RETURNED)


class Evaluation(Base):
    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), unique=True)
    evaluator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[EvaluationState] = mapped_column(str_enum(EvaluationState, "evaluation_state"))
    assigned_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    return_reason: Mapped[str] = mapped_column(Text, default="")
    # The evaluator's conflict-of-interest declaration, signed before any result.
    declaration: Mapped[str] = mapped_column(Text, default="", server_default="")
    declared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    results: Mapped[list[EvaluationResult]] = relationship(
        order_by="EvaluationResult.commitment_id", cascade="all, delete-orphan", lazy="selectin"
    )


class EvaluationResult(Base):
    __tablename__ = "evaluation_results"
    __table_args__ = (
        UniqueConstraint("evaluation_id", "commitment_id"),
        CheckConstraint("verified_quantity >= 0", name="verified_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"))
    commitment_id: Mapped[int] = mapped_column(ForeignKey("outcome_commitments.id"))
    verified_quantity: Mapped[int]
    # The grade the evidence actually met (valuation-method.md's A-D).
    met_grade: Mapped[EvidenceGrade] = mapped_column(str_enum(EvidenceGrade, "met_grade", 1))
    evidence_note: Mapped[str] = mapped_column(Text)


class EvaluationStateChange(Base, StateHistory):
    subject = ("evaluation", "evaluation_id")
    __tablename__ = "evaluation_state_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_state: Mapped[EvaluationState | None] = mapped_column(
        str_enum(EvaluationState, "evaluation_from_state")
    )
    to_state: Mapped[EvaluationState] = mapped_column(
        str_enum(EvaluationState, "evaluation_to_state")
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(2000), default="")
    reason_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class InvalidEvaluationTransition(InvalidTransition):
    title = "The evaluation cannot make this change in its current state"


@dataclass(frozen=True)
class ResultInput:
    outcome_id: int
    verified_quantity: int
    evidence_note: str
    met_grade: EvidenceGrade | None = None


class DeclarationNeeded(Conflict):
    code = "declaration_needed"
    title = "Sign the conflict-of-interest declaration before recording results"


MAX_DECLARATION = 5000


def declare(
    session: Session, evaluation: Evaluation, *, evaluator_id: int, text: str, now: datetime
) -> Evaluation:
    """The evaluator's conflict-of-interest declaration, signed once, before results."""
    if evaluation.evaluator_id != evaluator_id:
        raise Forbidden("Only the assigned evaluator signs its declaration.")
    if evaluation.state not in EDITABLE:
        raise InvalidEvaluationTransition(
            "A %(state)s evaluation cannot be changed.", params={"state": evaluation.state.value}
        )
    if evaluation.declared_at is not None:
        raise Conflict("The declaration is signed already.", code="already_declared")
    clean = text.strip()
    if len(clean) < 10:
        raise ValidationFailed(
            errors={"text": ["State your declaration (at least 10 characters)."]}
        )
    if len(clean) > MAX_DECLARATION:
        raise ValidationFailed(
            errors={"text": [Message("At most %(n)s characters.", n=MAX_DECLARATION)]}
        )
    evaluation.declaration, evaluation.declared_at = clean, now
    LIFECYCLE.record(
        session, evaluation.id, evaluation.state, evaluation.state, evaluator_id, now, "declared"
    )
    session.flush()
    return evaluation


LIFECYCLE: Lifecycle[EvaluationState] = Lifecycle(
    name="evaluation",
    model=Evaluation,
    history=EvaluationStateChange,
    subject_column="evaluation_id",
    transitions=TRANSITIONS,
    refusal=InvalidEvaluationTransition,
    stamp=None,
)


def _move(
    session: Session,
    evaluation: Evaluation,
    to_state: EvaluationState,
    *,
    actor_id: int,
    now: datetime,
    reason: str = "",
) -> None:
    LIFECYCLE.move(session, evaluation, to_state, actor_id=actor_id, now=now, reason=reason)


def assign(
    session: Session, *, project_id: int, evaluator_id: int, admin_id: int, now: datetime
) -> Evaluation:
    """Create the project's evaluation, or hand an unsubmitted one to another evaluator."""
    evaluation = session.scalar(select(Evaluation).where(Evaluation.project_id == project_id))
    if evaluation is not None:
        if evaluation.state is not E.ASSIGNED:
            raise InvalidEvaluationTransition(
                "Only an evaluation not yet submitted can go to another evaluator."
            )
        evaluation.evaluator_id, evaluation.assigned_by_id = evaluator_id, admin_id
        evaluation.assigned_at = now
        # the new evaluator signs its own declaration
        evaluation.declaration, evaluation.declared_at = "", None
        LIFECYCLE.record(
            session, evaluation.id, E.ASSIGNED, E.ASSIGNED, admin_id, now, "evaluator changed"
        )
        session.flush()
        return evaluation
    evaluation = Evaluation(
        project_id=project_id,
        evaluator_id=evaluator_id,
        state=E.ASSIGNED,
        assigned_by_id=admin_id,
        assigned_at=now,
    )
    session.add(evaluation)
    session.flush()
    LIFECYCLE.record(session, evaluation.id, None, E.ASSIGNED, admin_id, now, "assigned")
    session.flush()
    return evaluation


def _commitments(session: Session, project_id: int) -> dict[int, OutcomeCommitment]:
    return {
        c.id: c
        for c in session.scalars(
            select(OutcomeCommitment).where(OutcomeCommitment.project_id == project_id)
        )
    }


def record_results(
    session: Session,
    evaluation: Evaluation,
    *,
    evaluator_id: int,
    results: Sequence[ResultInput],
    now: datetime,
) -> Evaluation:
    """Replace the evaluator's results (while assigned or returned)."""
    if evaluation.evaluator_id != evaluator_id:
        raise Forbidden("Only the assigned evaluator records results.")
    if evaluation.state not in EDITABLE:
        raise InvalidEvaluationTransition(
            "A %(state)s evaluation cannot be changed.", params={"state": evaluation.state.value}
        )
    if evaluation.declared_at is None:
        raise DeclarationNeeded(
            "Sign the conflict-of-interest declaration before recording results."
        )
    commitments = _commitments(session, evaluation.project_id)
    errors: dict[str, list[str]] = {}
    seen: set[int] = set()
    for i, result in enumerate(results):
        if result.outcome_id not in commitments:
            errors[f"results.{i}.outcome_id"] = ["Not an outcome of this project."]
        elif result.outcome_id in seen:
            errors[f"results.{i}.outcome_id"] = ["Given twice."]
        seen.add(result.outcome_id)
        if result.verified_quantity < 0:
            errors[f"results.{i}.verified_quantity"] = ["Zero or more."]
        if not result.evidence_note.strip():
            errors[f"results.{i}.evidence_note"] = ["Say what evidence supports the figure."]
        elif len(result.evidence_note) > MAX_NOTE:
            errors[f"results.{i}.evidence_note"] = [
                Message("At most %(n)s characters.", n=MAX_NOTE)
            ]
    if errors:
        raise ValidationFailed(errors=errors)
    # In place, by outcome: replacing the collection would insert the new rows
    # before deleting the old ones, against the unique (evaluation, outcome).
    existing = {r.commitment_id: r for r in evaluation.results}
    given = {r.outcome_id: r for r in results}
    for commitment_id, row in existing.items():
        if commitment_id not in given:
            evaluation.results.remove(row)
    session.flush()
    for outcome_id, result in given.items():
        found = existing.get(outcome_id)
        row = found if found is not None else EvaluationResult(commitment_id=outcome_id)
        if found is None:
            evaluation.results.append(row)
        row.verified_quantity = result.verified_quantity
        row.met_grade = result.met_grade or commitments[outcome_id].evidence_grade
        row.evidence_note = result.evidence_note.strip()
    session.flush()
    return evaluation


def submit(
    session: Session, evaluation: Evaluation, *, evaluator_id: int, now: datetime
) -> Evaluation:
    if evaluation.evaluator_id != evaluator_id:
        raise Forbidden("Only the assigned evaluator submits.")
    missing = set(_commitments(session, evaluation.project_id)) - {
        r.commitment_id for r in evaluation.results
    }
    if missing:
        raise ValidationFailed(
            errors={
                "results": [
                    Message("Record a result for every outcome (%(n)s missing).", n=len(missing))
                ]
            }
        )
    _move(session, evaluation, E.SUBMITTED, actor_id=evaluator_id, now=now)
    evaluation.submitted_at = now
    session.flush()
    return evaluation


def approve(
    session: Session, evaluation: Evaluation, *, admin_id: int, now: datetime
) -> Evaluation:
    """Four eyes: an admin who is not the evaluator approves; the figures become final."""
    if admin_id == evaluation.evaluator_id:
        raise Forbidden("The evaluator cannot approve its own evaluation.")
    _move(session, evaluation, E.APPROVED, actor_id=admin_id, now=now)
    evaluation.approved_by_id, evaluation.approved_at = admin_id, now
    commitments = _commitments(session, evaluation.project_id)
    for result in evaluation.results:
        commitments[result.commitment_id].verified_quantity = result.verified_quantity
        commitments[result.commitment_id].met_grade = result.met_grade
    session.flush()
    return evaluation


def send_back(
    session: Session, evaluation: Evaluation, *, admin_id: int, reason: str, now: datetime
) -> Evaluation:
    if not reason.strip():
        raise ValidationFailed(errors={"reason": ["Say what needs another look."]})
    _move(session, evaluation, E.RETURNED, actor_id=admin_id, now=now, reason=reason.strip())
    evaluation.return_reason = reason.strip()
    session.flush()
    return evaluation
