"""Evaluations as the marketplace runs them: who may evaluate, who sees what.

Invariants:
- Only admins assign, and only to an active evaluator account whose
  organisation neither owns the project nor pledged to it (409
  ``conflict_of_interest``) and whose accreditation covers the project's theme
  on the day (409 ``not_accredited``); only a running or evaluating project
  gets one.
- An evaluator sees only the evaluations assigned to it (others are "not
  found"); admins see all.
- Approval is by an admin who is not the evaluator (outcomes.evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from marketplace.accounts.authorisation import require_acting_for, require_role
from marketplace.accounts.models import Role, User
from marketplace.audit import services as audit
from marketplace.evaluations.models import Accreditation
from marketplace.funding.models import Pledge
from marketplace.notifications import notices
from marketplace.projects.models import Project, ProjectState, Theme
from marketplace.projects.services import get_project
from outcomes import evaluation as domain
from outcomes import progress
from outcomes.errors import Conflict, Message, NotFound, ValidationFailed

LATE_TO_VERIFY_AFTER = timedelta(days=60)


class ConflictOfInterest(Conflict):
    code = "conflict_of_interest"
    title = "This evaluator has a conflict of interest"


class NotAccredited(Conflict):
    code = "not_accredited"
    title = "This evaluator is not accredited for this project"


def _independence(session: Session, evaluator: User, project: Project) -> None:
    if evaluator.organisation_id == project.organisation_id:
        raise ConflictOfInterest("The evaluator belongs to the project's own organisation.")
    if session.scalar(
        select(
            exists().where(
                Pledge.project_id == project.id, Pledge.organisation_id == evaluator.organisation_id
            )
        )
    ):
        raise ConflictOfInterest("The evaluator's organisation pledged to this project.")


def accreditations(session: Session, user_id: int) -> list[Accreditation]:
    return list(
        session.scalars(
            select(Accreditation)
            .where(Accreditation.user_id == user_id)
            .order_by(Accreditation.valid_until.desc(), Accreditation.id)
        )
    )


def accreditation_for(
    session: Session, user_id: int, project: Project, day: date
) -> Accreditation | None:
    """The evaluator's accreditation covering the project's theme on ``day``, if any."""
    return next(
        (a for a in accreditations(session, user_id) if a.covers(project.theme.value, day)), None
    )


def assign_evaluator(
    session: Session, admin: User, project_id: int, evaluator_id: int, *, now: datetime
) -> domain.Evaluation:
    require_role(admin, Role.ADMIN)
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound("No such project.")
    if project.state not in (ProjectState.RUNNING, ProjectState.EVALUATING):
        raise Conflict(
            "A %(state)s project has nothing to evaluate.",
            code="invalid_transition",
            params={"state": project.state.value},
        )
    evaluator = session.get(User, evaluator_id)
    if evaluator is None or evaluator.role is not Role.EVALUATOR or not evaluator.is_active:
        raise ValidationFailed(errors={"evaluator_id": ["Not an active evaluator account."]})
    _independence(session, evaluator, project)
    if accreditation_for(session, evaluator.id, project, now.date()) is None:
        raise NotAccredited(
            "%(name)s has no accreditation for %(theme)s projects valid today.",
            params={"name": evaluator.name, "theme": project.theme.value},
        )
    evaluation = domain.assign(
        session, project_id=project.id, evaluator_id=evaluator.id, admin_id=admin.id, now=now
    )
    notices.evaluation_assigned(
        session,
        evaluation_id=evaluation.id,
        evaluator_id=evaluator.id,
        evaluator_organisation_id=evaluator.organisation_id,
        project_title=project.title,
        organisation_name=project.organisation.name,
        end=project.end_date,
        now=now,
    )
    notices.declaration_needed(
        session,
        evaluation_id=evaluation.id,
        evaluator_id=evaluator.id,
        evaluator_organisation_id=evaluator.organisation_id,
        project_title=project.title,
        now=now,
    )
    return evaluation


def get_evaluation(session: Session, user: User, evaluation_id: int) -> domain.Evaluation:
    evaluation = session.get(domain.Evaluation, evaluation_id)
    if evaluation is None or not (user.role is Role.ADMIN or evaluation.evaluator_id == user.id):
        raise NotFound("No such evaluation.")
    return evaluation


def evaluation_of(session: Session, project_id: int) -> domain.Evaluation | None:
    return session.scalar(
        select(domain.Evaluation).where(domain.Evaluation.project_id == project_id)
    )


def list_evaluations(
    session: Session, user: User, *, page: int, per_page: int
) -> tuple[list[domain.Evaluation], int]:
    require_role(user, Role.EVALUATOR, Role.ADMIN)
    query = select(domain.Evaluation)
    if user.role is Role.EVALUATOR:
        query = query.where(domain.Evaluation.evaluator_id == user.id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(domain.Evaluation.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return list(items), total


def record_results(
    session: Session,
    user: User,
    evaluation_id: int,
    results: list[domain.ResultInput],
    *,
    now: datetime,
) -> domain.Evaluation:
    require_role(user, Role.EVALUATOR)
    evaluation = get_evaluation(session, user, evaluation_id)
    return domain.record_results(
        session, evaluation, evaluator_id=user.id, results=results, now=now
    )


def declare(
    session: Session, user: User, evaluation_id: int, *, text: str, now: datetime
) -> domain.Evaluation:
    """The evaluator's conflict-of-interest declaration (before any result)."""
    require_role(user, Role.EVALUATOR)
    evaluation = get_evaluation(session, user, evaluation_id)
    return domain.declare(session, evaluation, evaluator_id=user.id, text=text, now=now)


def submit(session: Session, user: User, evaluation_id: int, *, now: datetime) -> domain.Evaluation:
    require_role(user, Role.EVALUATOR)
    evaluation = get_evaluation(session, user, evaluation_id)
    return domain.submit(session, evaluation, evaluator_id=user.id, now=now)


def approve(
    session: Session, admin: User, evaluation_id: int, *, now: datetime
) -> domain.Evaluation:
    require_role(admin, Role.ADMIN)
    evaluation = get_evaluation(session, admin, evaluation_id)
    return domain.approve(session, evaluation, admin_id=admin.id, now=now)


def send_back(
    session: Session, admin: User, evaluation_id: int, *, reason: str, now: datetime
) -> domain.Evaluation:
    require_role(admin, Role.ADMIN)
    evaluation = get_evaluation(session, admin, evaluation_id)
    domain.send_back(session, evaluation, admin_id=admin.id, reason=reason, now=now)
    evaluator = session.get_one(User, evaluation.evaluator_id)
    project = session.get_one(Project, evaluation.project_id)
    notices.evaluation_returned(
        session,
        evaluation_id=evaluation.id,
        evaluator_id=evaluator.id,
        evaluator_organisation_id=evaluator.organisation_id,
        project_title=project.title,
        reason=reason.strip(),
        now=now,
    )
    return evaluation


def late_to_verify(project: Project, approved: bool, today: date) -> bool:
    """Evaluating, not approved, and more than 60 days past the end date."""
    return (
        project.state is ProjectState.EVALUATING
        and not approved
        and today > project.end_date + LATE_TO_VERIFY_AFTER
    )


def post_progress_report(
    session: Session,
    user: User,
    project_id: int,
    *,
    text: str,
    figures: dict[int, int],
    now: datetime,
) -> progress.ProgressReport:
    """The owner reports on a running project; the late-to-report flag clears at once."""
    project = get_project(session, user, project_id)
    require_acting_for(
        user, project.organisation_id, "Only the project's own organisation reports on it."
    )
    if project.state is not ProjectState.RUNNING:
        raise Conflict(
            "A %(state)s project is not running: progress reports are posted while it runs.",
            code="invalid_transition",
            params={"state": project.state.value},
        )
    report = progress.add_report(
        session, project_id=project.id, author_id=user.id, text=text, figures=figures, now=now
    )
    project.late_to_report = False
    session.flush()
    return report


def progress_reports(
    session: Session, user: User | None, project_id: int
) -> list[progress.ProgressReport]:
    """A project's reports, newest first, for whoever may see the project."""
    get_project(session, user, project_id)
    return list(
        session.scalars(
            select(progress.ProgressReport)
            .where(progress.ProgressReport.project_id == project_id)
            .order_by(progress.ProgressReport.id.desc())
        )
    )


# ---------------------------------------------------------------- accreditation

MAX_BODY, MAX_REFERENCE = 200, 100
THEMES = tuple(t.value for t in Theme)


@dataclass(frozen=True)
class AccreditationInput:
    body: str
    reference: str
    themes: tuple[str, ...]
    valid_from: date
    valid_until: date


def _checked(data: AccreditationInput) -> AccreditationInput:
    errors: dict[str, list[Any]] = {}
    body, reference = " ".join(data.body.split()), " ".join(data.reference.split())
    if not body:
        errors["body"] = ["Name the accrediting body."]
    elif len(body) > MAX_BODY:
        errors["body"] = [Message("At most %(n)s characters.", n=MAX_BODY)]
    if not reference:
        errors["reference"] = ["Give the accreditation's reference."]
    elif len(reference) > MAX_REFERENCE:
        errors["reference"] = [Message("At most %(n)s characters.", n=MAX_REFERENCE)]
    themes = tuple(dict.fromkeys(data.themes))
    if not themes:
        errors["themes"] = ["Choose at least one theme."]
    elif any(theme not in THEMES for theme in themes):
        errors["themes"] = ["Choose from the marketplace's themes."]
    if data.valid_until < data.valid_from:
        errors["valid_until"] = ["The accreditation ends after it starts."]
    if errors:
        raise ValidationFailed(errors=errors)
    return AccreditationInput(body, reference, themes, data.valid_from, data.valid_until)


def evaluator_accreditations(session: Session, admin: User, user_id: int) -> list[Accreditation]:
    require_role(admin, Role.ADMIN)
    return accreditations(session, _evaluator(session, user_id).id)


def _evaluator(session: Session, user_id: int) -> User:
    found = session.get(User, user_id)
    if found is None or found.role is not Role.EVALUATOR:
        raise NotFound("No such evaluator.")
    return found


def add_accreditation(
    session: Session, admin: User, user_id: int, data: AccreditationInput, *, now: datetime
) -> Accreditation:
    require_role(admin, Role.ADMIN)
    evaluator = _evaluator(session, user_id)
    clean = _checked(data)
    row = Accreditation(
        user_id=evaluator.id,
        body=clean.body,
        reference=clean.reference,
        themes=list(clean.themes),
        valid_from=clean.valid_from,
        valid_until=clean.valid_until,
        created_by_id=admin.id,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    _audit(session, "accreditation added", row, now)
    return row


def update_accreditation(
    session: Session, admin: User, accreditation_id: int, data: AccreditationInput, *, now: datetime
) -> Accreditation:
    require_role(admin, Role.ADMIN)
    row = session.get(Accreditation, accreditation_id)
    if row is None:
        raise NotFound("No such accreditation.")
    clean = _checked(data)
    row.body, row.reference, row.themes = clean.body, clean.reference, list(clean.themes)
    row.valid_from, row.valid_until, row.updated_at = clean.valid_from, clean.valid_until, now
    session.flush()
    _audit(session, "accreditation changed", row, now)
    return row


def _audit(session: Session, action: str, row: Accreditation, now: datetime) -> None:
    audit.record(
        session,
        "admin",
        action,
        f"user:{row.user_id}",
        now,
        accreditation=row.id,
        body=row.body,
        reference=row.reference,
        themes=",".join(row.themes),
        valid=f"{row.valid_from.isoformat()}..{row.valid_until.isoformat()}",
    )


@dataclass(frozen=True)
class Candidate:
    evaluator: User
    accreditation: Accreditation | None
    open_evaluations: int
    conflict: str  # why not independent, or ""


def candidates(session: Session, admin: User, project: Project, *, day: date) -> list[Candidate]:
    """Every active evaluator for the assignment page: accredited and independent ones
    first, those with the fewest open evaluations first, then by name."""
    require_role(admin, Role.ADMIN)
    open_counts = dict(
        session.execute(
            select(domain.Evaluation.evaluator_id, func.count())
            .where(domain.Evaluation.state != domain.EvaluationState.APPROVED)
            .group_by(domain.Evaluation.evaluator_id)
        ).all()
    )
    people = session.scalars(
        select(User).where(User.role == Role.EVALUATOR, User.is_active).order_by(User.name)
    ).all()
    rows = []
    for person in people:
        try:
            _independence(session, person, project)
            conflict = ""
        except ConflictOfInterest as exc:
            conflict = exc.message
        rows.append(
            Candidate(
                person,
                accreditation_for(session, person.id, project, day),
                int(open_counts.get(person.id, 0)),
                conflict,
            )
        )
    return sorted(
        rows,
        key=lambda c: (bool(c.conflict) or c.accreditation is None, c.open_evaluations),
    )
