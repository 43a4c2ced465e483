"""The sweeps from the end date to settled: open evaluations, settle, finish.

Each is safe twice and in two processes: opening is an atomic state change,
settling is claimed by the settlement's unique row, and finishing is an atomic
state change once the refunds and the premium transfer (sent by the payment
sweeps, keyed by their rows) have gone through.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from marketplace.core.sweeps import SweepContext
from marketplace.evaluations import services as evaluation_services
from marketplace.projects.models import Project, ProjectState
from marketplace.projects.states import InvalidTransition, transition
from marketplace.settlement import services
from marketplace.settlement.models import Settlement
from outcomes.errors import Message
from outcomes.evaluation import Evaluation, EvaluationState
from outcomes.progress import ProgressReport, is_late


def open_evaluations(ctx: SweepContext, now: datetime) -> str:
    """From 00:00 of the day after its end date a running project is evaluated."""
    today = ctx.local_date(now)
    opened = 0
    with ctx.db.session_factory() as session:
        due = session.scalars(
            select(Project)
            .where(Project.state == ProjectState.RUNNING, Project.end_date < today)
            .order_by(Project.id)
        ).all()
        for project in due:
            try:
                transition(
                    session,
                    project,
                    ProjectState.EVALUATING,
                    actor=None,
                    now=now,
                    reason=Message("the end date has passed: evaluation opens"),
                )
                session.commit()
                opened += 1
            except InvalidTransition:
                session.rollback()
    return f"opened {opened} evaluations"


def settle_projects(ctx: SweepContext, now: datetime) -> str:
    """Compute and record the settlement of every approved evaluation (projects in parallel
    on PostgreSQL; each is claimed by inserting its settlement, so it is settled once)."""
    with ctx.db.session_factory() as session:
        due = [(p.id, e.id) for p, e in services.approved_unsettled(session)]

    def settle(pairs: list[tuple[int, int]]) -> tuple[int]:
        settled = 0
        with ctx.db.session_factory() as session:
            for project_id, evaluation_id in pairs:
                if services.settle_project(
                    session,
                    session.get_one(Project, project_id),
                    session.get_one(Evaluation, evaluation_id),
                    fee_rate=ctx.settings.platform_fee_rate,
                    buffer_rate=ctx.settings.buffer_rate,
                    now=now,
                ):
                    settled += 1
                session.commit()
        return (settled,)

    (settled,) = ctx.in_parallel(due, lambda pair: pair[0], settle) or (0,)
    return f"computed {settled} settlements"


def finish_settlements(ctx: SweepContext, now: datetime) -> str:
    """Mark settled the projects whose settlement money has all moved."""
    with ctx.db.session_factory() as session:
        open_ones = session.scalars(
            select(Settlement.id).where(Settlement.finished_at.is_(None)).order_by(Settlement.id)
        ).all()

    def finish(ids: list[int]) -> tuple[int]:
        finished = 0
        with ctx.db.session_factory() as session:
            for settlement_id in ids:
                try:
                    finished += services.finish_if_paid(
                        session, session.get_one(Settlement, settlement_id), now=now
                    )
                    session.commit()
                except InvalidTransition:
                    session.rollback()
        return (finished,)

    (finished,) = ctx.in_parallel(open_ones, lambda i: i, finish) or (0,)
    return f"settled {finished} projects"


def flag_late(ctx: SweepContext, now: datetime) -> str:
    """Keep the public flags: late to report (running, no report for three months) and late
    to verify (evaluating, not approved 60 days after the end date)."""
    today = ctx.local_date(now)
    changed = 0
    with ctx.db.transaction() as session:
        last = dict(
            session.execute(
                select(ProgressReport.project_id, func.max(ProgressReport.created_at)).group_by(
                    ProgressReport.project_id
                )
            ).all()
        )
        approved = set(
            session.scalars(
                select(Evaluation.project_id).where(Evaluation.state == EvaluationState.APPROVED)
            )
        )
        candidates = session.scalars(
            select(Project).where(
                Project.state.in_((ProjectState.RUNNING, ProjectState.EVALUATING))
                | Project.late_to_report
                | Project.late_to_verify
            )
        ).all()
        for project in candidates:
            report = project.state is ProjectState.RUNNING and is_late(
                project.start_date, last.get(project.id), today
            )
            verify = evaluation_services.late_to_verify(project, project.id in approved, today)
            if (report, verify) != (project.late_to_report, project.late_to_verify):
                project.late_to_report, project.late_to_verify = report, verify
                changed += 1
    return f"{changed} projects' late flags changed"
