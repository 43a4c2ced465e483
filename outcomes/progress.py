"""Progress reports: what a running project tells its buyers and the public on the way.

Invariants:
- Reports are appended, never edited; each has a text and, per outcome
  commitment of the project, an optional figure achieved so far (>= 0).
- A project running more than ``REPORT_EVERY`` without a report (counted from
  its start date) is late to report; the marketplace's sweep keeps that flag.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import JSON, ForeignKey, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from outcomes.commitments import OutcomeCommitment
from outcomes.db import Base, UTCDateTime
from outcomes.errors import Message, ValidationFailed

REPORT_EVERY = timedelta(days=91)  # three months
MAX_TEXT = 20_000


class ProgressReport(Base):
    __tablename__ = "progress_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    # {commitment id (as text): quantity achieved so far}
    figures: Mapped[dict[str, int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


def add_report(
    session: Session,
    *,
    project_id: int,
    author_id: int,
    text: str,
    figures: dict[int, int],
    now: datetime,
) -> ProgressReport:
    errors: dict[str, list[str]] = {}
    if not text.strip():
        errors["text"] = ["Say how the project is doing."]
    elif len(text) > MAX_TEXT:
        errors["text"] = [Message("At most %(n)s characters.", n=MAX_TEXT)]
    own = set(
        session.scalars(
            select(OutcomeCommitment.id).where(OutcomeCommitment.project_id == project_id)
        )
    )
    for commitment_id, quantity in figures.items():
        if commitment_id not in own:
            errors[f"figures.{commitment_id}"] = ["Not an outcome of this project."]
        elif quantity < 0:
            errors[f"figures.{commitment_id}"] = ["Zero or more."]
    if errors:
        raise ValidationFailed(errors=errors)
    report = ProgressReport(
        project_id=project_id,
        author_id=author_id,
        text=text.strip(),
        figures={str(k): v for k, v in figures.items()},
        created_at=now,
    )
    session.add(report)
    session.flush()
    return report


def last_report_at(session: Session, project_id: int) -> datetime | None:
    return session.scalar(
        select(func.max(ProgressReport.created_at)).where(ProgressReport.project_id == project_id)
    )


def next_due(start: date, last: datetime | None) -> date:
    """Three months after the start or the last report, whichever is later."""
    since = max(start, last.date()) if last is not None else start
    return since + REPORT_EVERY


def is_late(start: date, last: datetime | None, today: date) -> bool:
    """Past the date the next report was due."""
    return today > next_due(start, last)
