"""Evidence files and progress-report attachments: private storage and who may read them.

Invariants:
- Bytes are written to the store ``STORAGE_URL`` names (a folder outside the web
  root, ``EVIDENCE_DIR`` by default, or a private bucket) under a random key, in
  full before the key is known; the database row with size and SHA-256 is added in
  the same transaction that follows, so a rolled-back upload leaves at most an
  unreferenced file and never a row without its bytes.
- Evaluation evidence is readable by the evaluator of that evaluation, admins
  and members of the project's own organisation. Report attachments are also
  readable by the project's buyers and its evaluator. Anyone else is told the
  file does not exist.
- Bytes are checked against their SHA-256 when read; a mismatch is an error,
  never a silent serve.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role, User
from marketplace.core.storage import Storage
from marketplace.funding.models import Pledge
from marketplace.projects.models import Project, ProjectState
from outcomes import evaluation as domain
from outcomes.commitments import OutcomeCommitment
from outcomes.errors import Conflict, Message, NotFound, Unavailable, ValidationFailed
from outcomes.evidence import EvidenceFile, check_upload
from outcomes.progress import ProgressReport

log = logging.getLogger(__name__)
MAX_FILES_PER_OWNER = 50


class EvidenceDamaged(Unavailable):
    code = "evidence_damaged"
    title = "A stored evidence file does not match its recorded SHA-256"


def _commitment_of(session: Session, project_id: int, outcome_id: int | None) -> int | None:
    if outcome_id is None:
        return None
    found = session.scalar(
        select(OutcomeCommitment.id).where(
            OutcomeCommitment.id == outcome_id, OutcomeCommitment.project_id == project_id
        )
    )
    if found is None:
        raise ValidationFailed(errors={"outcome_id": ["Not an outcome of this project."]})
    return found


def _store(
    session: Session,
    store: Storage,
    user: User,
    *,
    project_id: int,
    raw_name: str,
    data: bytes,
    now: datetime,
    outcome_id: int | None = None,
    evaluation_id: int | None = None,
    progress_report_id: int | None = None,
    concern_id: int | None = None,
) -> EvidenceFile:
    checked = check_upload(raw_name, data, max_bytes=store.max_bytes)
    commitment_id = _commitment_of(session, project_id, outcome_id)
    if evaluation_id is not None:
        owner = EvidenceFile.evaluation_id == evaluation_id
    elif progress_report_id is not None:
        owner = EvidenceFile.progress_report_id == progress_report_id
    else:
        owner = EvidenceFile.concern_id == concern_id
    if len(session.scalars(select(EvidenceFile.id).where(owner)).all()) >= MAX_FILES_PER_OWNER:
        raise ValidationFailed(
            errors={"file": [Message("At most %(n)s files.", n=MAX_FILES_PER_OWNER)]}
        )
    row = EvidenceFile(
        project_id=project_id,
        evaluation_id=evaluation_id,
        progress_report_id=progress_report_id,
        concern_id=concern_id,
        commitment_id=commitment_id,
        filename=checked.filename,
        content_type=checked.content_type,
        size_bytes=checked.size_bytes,
        sha256=checked.sha256,
        storage_key=store.put(data),
        uploaded_by_id=user.id,
        uploaded_at=now,
    )
    session.add(row)
    session.flush()
    return row


def add_evidence(
    session: Session,
    store: Storage,
    user: User,
    evaluation_id: int,
    *,
    filename: str,
    data: bytes,
    outcome_id: int | None,
    now: datetime,
) -> EvidenceFile:
    """The assigned evaluator adds a file while the results may still be changed."""
    evaluation = session.get(domain.Evaluation, evaluation_id)
    if evaluation is None or evaluation.evaluator_id != user.id:
        raise NotFound("No such evaluation.")
    if evaluation.state not in domain.EDITABLE:
        raise Conflict(
            "A %(state)s evaluation takes no more evidence.",
            code="invalid_transition",
            params={"state": evaluation.state.value},
        )
    return _store(
        session,
        store,
        user,
        project_id=evaluation.project_id,
        raw_name=filename,
        data=data,
        now=now,
        outcome_id=outcome_id,
        evaluation_id=evaluation.id,
    )


def add_attachment(
    session: Session,
    store: Storage,
    user: User,
    report_id: int,
    *,
    filename: str,
    data: bytes,
    now: datetime,
) -> EvidenceFile:
    """The project's own organisation attaches a file to its report while the project runs."""
    report = session.get(ProgressReport, report_id)
    project = session.get(Project, report.project_id) if report else None
    if report is None or project is None or user.organisation_id != project.organisation_id:
        raise NotFound("No such progress report.")
    if project.state is not ProjectState.RUNNING:
        raise Conflict(
            "A %(state)s project takes no more attachments.",
            code="invalid_transition",
            params={"state": project.state.value},
        )
    return _store(
        session,
        store,
        user,
        project_id=project.id,
        raw_name=filename,
        data=data,
        now=now,
        progress_report_id=report.id,
    )


def add_concern_file(
    session: Session,
    store: Storage,
    user: User,
    *,
    project_id: int,
    concern_id: int,
    filename: str,
    data: bytes,
    now: datetime,
) -> EvidenceFile:
    """A file supporting a concern (the disputes feature checks who and when)."""
    return _store(
        session,
        store,
        user,
        project_id=project_id,
        raw_name=filename,
        data=data,
        now=now,
        concern_id=concern_id,
    )


def may_read(session: Session, user: User | None, row: EvidenceFile) -> bool:
    if user is None:
        return False
    if user.role is Role.ADMIN:
        return True
    if row.concern_id is not None:  # between the person who raised it and the platform
        return row.uploaded_by_id == user.id
    project = session.get_one(Project, row.project_id)
    if user.organisation_id == project.organisation_id:
        return True
    evaluator_id = session.scalar(
        select(domain.Evaluation.evaluator_id).where(domain.Evaluation.project_id == row.project_id)
    )
    if row.evaluation_id is not None:
        return evaluator_id == user.id
    return evaluator_id == user.id or bool(
        session.scalar(
            select(
                exists().where(
                    Pledge.project_id == row.project_id,
                    Pledge.organisation_id == user.organisation_id,
                )
            )
        )
    )


def readable(session: Session, user: User | None, rows: list[EvidenceFile]) -> list[EvidenceFile]:
    return [row for row in rows if may_read(session, user, row)]


def open_file(
    session: Session, store: Storage, user: User | None, file_id: int
) -> tuple[EvidenceFile, bytes]:
    row = session.get(EvidenceFile, file_id)
    if row is None or not may_read(session, user, row):
        raise NotFound("No such file.")
    data = store.get(row.storage_key)
    if hashlib.sha256(data).hexdigest() != row.sha256:
        log.error("evidence file %s does not match its SHA-256", row.id)
        raise EvidenceDamaged("The stored file is damaged; the administrators have been told.")
    return row, data


def files_of_evaluation(session: Session, evaluation_id: int) -> list[EvidenceFile]:
    return list(
        session.scalars(
            select(EvidenceFile)
            .where(EvidenceFile.evaluation_id == evaluation_id)
            .order_by(EvidenceFile.id)
        )
    )


def files_of_reports(session: Session, report_ids: list[int]) -> dict[int, list[EvidenceFile]]:
    found: dict[int, list[EvidenceFile]] = {i: [] for i in report_ids}
    for row in session.scalars(
        select(EvidenceFile)
        .where(EvidenceFile.progress_report_id.in_(report_ids))
        .order_by(EvidenceFile.id)
    ):
        if row.progress_report_id is not None:
            found[row.progress_report_id].append(row)
    return found
