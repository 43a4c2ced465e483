"""Evaluations as the marketplace runs them: who may evaluate, who sees what.

Invariants:
- Only admins assign, and only to an active evaluator account whose
  organisation neither owns the project nor pledged to it (409
  ``conflict_of_interest``); only a running or evaluating project gets one.
- An evaluator sees only the evaluations assigned to it (others are "not
  found"); admins see all.
- Approval is by an admin who is not the evaluator (outcomes.evaluation).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from marketplace.accounts.authorisation import require_acting_for, require_role
from marketplace.accounts.models import Role, User
from marketplace.funding.models import Pledge
from marketplace.notifications import notices
from marketplace.projects.models import Project, ProjectState
from marketplace.projects.services import get_project
from outcomes import evaluation as domain
from outcomes import progress
from outcomes.errors import Conflict, NotFound, ValidationFailed

LATE_TO_VERIFY_AFTER = timedelta(days=60)


class ConflictOfInterest(Conflict):
    code = "conflict_of_interest"
    title = "This evaluator has a conflict of interest"


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
