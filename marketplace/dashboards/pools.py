"""A matchfunding pool's figures for its funder: budget, committed, charged, refunded, and
per project the tokens its pledges paid for, were minted and the social value they bought."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace.funding.models import LIVE_STATES, Pledge, PledgeState
from marketplace.payments.models import MoneyState, Payment, PaymentState, Refund
from marketplace.pools.models import Pool
from marketplace.projects.models import Project
from marketplace.settlement.models import Settlement, SettlementShare


@dataclass
class PoolProject:
    project_id: int
    title: str
    tokens: int = 0  # matched tokens in live pledges
    committed_cents: int = 0
    charged_cents: int = 0
    refunded_cents: int = 0
    tokens_paid: int = 0
    tokens_minted: int | None = None  # once settled
    verified_value_cents: int | None = None


@dataclass
class PoolFigures:
    pool: Pool
    committed_cents: int = 0
    charged_cents: int = 0
    refunded_cents: int = 0
    tokens_minted: int = 0
    verified_value_cents: int = 0
    projects: list[PoolProject] = field(default_factory=list)

    @property
    def left_cents(self) -> int:
        return max(0, self.pool.budget_cents - self.committed_cents)


def pool_figures(session: Session, pool: Pool) -> PoolFigures:
    """The pool's money and what it bought. A settled project's tokens minted to the pool
    are its share of the funder's minted tokens in proportion to the tokens it paid
    (rounded down; exact when the funder bought there only through the pool)."""
    rows: dict[int, PoolProject] = {}
    titles = dict(
        session.execute(
            select(Project.id, Project.title)
            .join(Pledge, Pledge.project_id == Project.id)
            .where(Pledge.pool_id == pool.id)
            .distinct()
        ).all()
    )
    for project_id, title in sorted(titles.items()):
        rows[project_id] = PoolProject(project_id, title)
    for project_id, state, tokens, cents in session.execute(
        select(
            Pledge.project_id, Pledge.state, func.sum(Pledge.tokens), func.sum(Pledge.amount_cents)
        )
        .where(Pledge.pool_id == pool.id)
        .group_by(Pledge.project_id, Pledge.state)
    ):
        row = rows[project_id]
        if state in LIVE_STATES:
            row.tokens += int(tokens)
            row.committed_cents += int(cents)
        if state is PledgeState.PAID:
            row.tokens_paid += int(tokens)
    for project_id, cents in session.execute(
        select(Pledge.project_id, func.sum(Payment.amount_cents))
        .join(Payment, Payment.pledge_id == Pledge.id)
        .where(Pledge.pool_id == pool.id, Payment.state == PaymentState.SUCCEEDED)
        .group_by(Pledge.project_id)
    ):
        rows[project_id].charged_cents = int(cents)
    for project_id, cents in session.execute(
        select(Pledge.project_id, func.sum(Refund.amount_cents))
        .join(Refund, Refund.pledge_id == Pledge.id)
        .where(Pledge.pool_id == pool.id, Refund.state == MoneyState.SUCCEEDED)
        .group_by(Pledge.project_id)
    ):
        rows[project_id].refunded_cents = int(cents)
    funder_paid = defaultdict(int)
    for project_id, tokens in session.execute(
        select(Pledge.project_id, func.sum(Pledge.tokens))
        .where(
            Pledge.organisation_id == pool.organisation_id,
            Pledge.project_id.in_(list(rows)),
            Pledge.state == PledgeState.PAID,
        )
        .group_by(Pledge.project_id)
    ):
        funder_paid[project_id] = int(tokens)
    for project_id, minted, v_verified, all_minted in session.execute(
        select(
            Settlement.project_id,
            SettlementShare.tokens_minted,
            Settlement.v_verified_cents,
            Settlement.tokens_minted,
        )
        .join(SettlementShare, SettlementShare.settlement_id == Settlement.id)
        .where(
            Settlement.project_id.in_(list(rows)),
            SettlementShare.organisation_id == pool.organisation_id,
        )
    ):
        row = rows[project_id]
        paid = funder_paid[project_id]
        row.tokens_minted = minted * row.tokens_paid // paid if paid else 0
        row.verified_value_cents = v_verified * row.tokens_minted // all_minted if all_minted else 0
    figures = PoolFigures(pool, projects=list(rows.values()))
    for row in figures.projects:
        figures.committed_cents += row.committed_cents
        figures.charged_cents += row.charged_cents
        figures.refunded_cents += row.refunded_cents
        figures.tokens_minted += row.tokens_minted or 0
        figures.verified_value_cents += row.verified_value_cents or 0
    return figures
