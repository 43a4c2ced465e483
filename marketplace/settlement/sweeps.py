"""The sweeps from the end date to settled: open evaluations, settle, finish.

Each is safe twice and in two processes: opening is an atomic state change,
settling is claimed by the settlement's unique row, and finishing is an atomic
state change once the refunds and the premium transfer (sent by the payment
sweeps, keyed by their rows) have gone through.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from marketplace.core.sweeps import SweepContext
from marketplace.projects.models import Project, ProjectState
from marketplace.projects.states import InvalidTransition, transition
from marketplace.settlement import services
from marketplace.settlement.models import Settlement


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
                    reason="the end date has passed: evaluation opens",
                )
                session.commit()
                opened += 1
            except InvalidTransition:
                session.rollback()
    return f"opened {opened} evaluations"


def settle_projects(ctx: SweepContext, now: datetime) -> str:
    """Compute and record the settlement of every approved evaluation."""
    settled = 0
    with ctx.db.session_factory() as session:
        for project, evaluation in services.approved_unsettled(session):
            if services.settle_project(
                session, project, evaluation, fee_rate=ctx.settings.platform_fee_rate, now=now
            ):
                settled += 1
            session.commit()
    return f"computed {settled} settlements"


def finish_settlements(ctx: SweepContext, now: datetime) -> str:
    """Mark settled the projects whose settlement money has all moved."""
    finished = 0
    with ctx.db.session_factory() as session:
        open_ones = session.scalars(
            select(Settlement).where(Settlement.finished_at.is_(None)).order_by(Settlement.id)
        ).all()
        for settlement in open_ones:
            try:
                finished += services.finish_if_paid(session, settlement, now=now)
                session.commit()
            except InvalidTransition:
                session.rollback()
    return f"settled {finished} projects"
