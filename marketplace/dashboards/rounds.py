"""A round's figures, as its public page and the API show them: its listed projects,
their tokens, the money raised and the social value verified once settled."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace.projects.models import Project, ProjectState
from marketplace.settlement.models import Settlement


@dataclass(frozen=True)
class RoundFigures:
    projects: int  # listed (public) projects of the round
    tokens_total: int
    tokens_pledged: int
    tokens_paid: int
    raised_cents: int  # paid tokens at their price (refunds of unfunded projects taken out)
    settled: int
    verified_value_cents: int  # V_verified of the settled projects
    by_state: dict[str, int]


def round_figures(session: Session, round_id: int) -> RoundFigures:
    listed = (Project.round_id == round_id, Project.listed_at.is_not(None))
    totals = session.execute(
        select(
            func.count(Project.id),
            func.coalesce(func.sum(Project.tokens_total), 0),
            func.coalesce(func.sum(Project.tokens_pledged), 0),
            func.coalesce(func.sum(Project.tokens_paid), 0),
            func.coalesce(func.sum(Project.tokens_paid * Project.token_price_cents), 0),
        ).where(*listed)
    ).one()
    states = dict(
        session.execute(
            select(Project.state, func.count(Project.id)).where(*listed).group_by(Project.state)
        ).all()
    )
    verified = session.execute(
        select(func.count(Settlement.id), func.coalesce(func.sum(Settlement.v_verified_cents), 0))
        .join(Project, Project.id == Settlement.project_id)
        .where(*listed, Project.state == ProjectState.SETTLED)
    ).one()
    return RoundFigures(
        projects=int(totals[0]),
        tokens_total=int(totals[1] or 0),
        tokens_pledged=int(totals[2] or 0),
        tokens_paid=int(totals[3] or 0),
        raised_cents=int(totals[4] or 0),
        settled=int(verified[0] or 0),
        verified_value_cents=int(verified[1] or 0),
        by_state={state.value: int(n) for state, n in states.items()},
    )
