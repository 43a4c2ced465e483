"""Matches: the pledges matchfunding pools make beside other buyers' pledges, in the same
transaction (product.md "Matchfunding pools"; the pool's rules are ``pools.services``).

Invariants (held under the pool's row lock, so concurrent pledges on any of its projects
queue for it): a pool's live pledges never hold more than its budget, nor more than its
cap on one project; a project's pledged tokens never pass its total (the project row's
conditional update, as for every pledge).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from marketplace.audit import services as audit
from marketplace.funding import states as pledge_states
from marketplace.funding.models import LIVE_STATES, Pledge, PledgeState, PledgeStateChange
from marketplace.pools.models import Pool, PoolState
from marketplace.pools.services import match_tokens
from marketplace.projects.models import Project
from outcomes.errors import Message


@dataclass(frozen=True)
class Match:
    pool_id: int
    organisation_id: int
    user_id: int
    payment_setup_id: int
    tokens: int


@dataclass(frozen=True)
class Eligible:
    """What of a project a match depends on."""

    id: int
    round_id: int | None
    theme: str
    city: str
    tokens_total: int
    tokens_pledged: int
    token_price_cents: int


def committed_cents(session: Session, pool_id: int, project_id: int | None = None) -> int:
    """What the pool's live pledges hold (on one project, when given)."""
    query = select(func.coalesce(func.sum(Pledge.amount_cents), 0)).where(
        Pledge.pool_id == pool_id, Pledge.state.in_(LIVE_STATES)
    )
    if project_id is not None:
        query = query.where(Pledge.project_id == project_id)
    return int(session.scalar(query) or 0)


def find_match(
    session: Session, project: Eligible, *, buyer_organisation_id: int, tokens: int
) -> Match | None:
    """The match a pledge of ``tokens`` brings: from the oldest active pool of another
    organisation that takes the project and has money left for it; its row stays locked
    until the pledge's transaction ends. None when no pool matches."""
    candidates = session.scalars(
        select(Pool)
        .where(Pool.state == PoolState.ACTIVE, Pool.organisation_id != buyer_organisation_id)
        .order_by(Pool.id)
    ).all()
    left = project.tokens_total - project.tokens_pledged - tokens
    for candidate in candidates:
        if left <= 0:
            return None
        if not candidate.takes(round_id=project.round_id, theme=project.theme, city=project.city):
            continue
        pool = session.scalar(
            select(Pool)
            .where(Pool.id == candidate.id, Pool.state == PoolState.ACTIVE)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if pool is None:
            continue
        matched = match_tokens(
            tokens,
            pool.match_ratio,
            price_cents=project.token_price_cents,
            budget_left_cents=pool.budget_cents - committed_cents(session, pool.id),
            cap_left_cents=pool.cap_per_project_cents
            - committed_cents(session, pool.id, project.id),
            tokens_left=left,
        )
        if matched > 0:
            return Match(
                pool.id, pool.organisation_id, pool.created_by_id, pool.payment_setup_id, matched
            )
    return None


def make_match(
    session: Session,
    match: Match,
    *,
    project_id: int,
    price_cents: int,
    matched_pledge_id: int,
    now: datetime,
) -> int:
    """The funder's pledge of the match, with its history and audit rows (the project's
    tokens are reserved by the caller, with the matched pledge's). Returns its id."""
    pledge_id = session.execute(
        insert(Pledge)
        .values(
            project_id=project_id,
            organisation_id=match.organisation_id,
            user_id=match.user_id,
            payment_setup_id=match.payment_setup_id,
            tokens=match.tokens,
            amount_cents=match.tokens * price_cents,
            state=PledgeState.COMMITTED,
            pool_id=match.pool_id,
            matched_pledge_id=matched_pledge_id,
            created_at=now,
            updated_at=now,
        )
        .returning(Pledge.id)
    ).scalar_one()
    first = pledge_states.LIFECYCLE.history_values(
        pledge_id,
        None,
        PledgeState.COMMITTED,
        None,
        now,
        Message(
            "matched %(tokens)s tokens of pledge %(pledge)s from pool %(pool)s",
            tokens=match.tokens,
            pledge=str(matched_pledge_id),
            pool=str(match.pool_id),
        ),
    )
    session.execute(insert(PledgeStateChange).values(**first))
    audit.transitions(session, [PledgeStateChange(**first)])
    return int(pledge_id)


def cancel_match(session: Session, pledge: Pledge, *, actor_id: int | None, now: datetime) -> int:
    """Cancelling a pledge cancels its match, if it has one still committed: the pool's
    money is released (its live pledges hold it) and the tokens go back to the project.
    Returns the tokens released."""
    match = session.scalar(
        select(Pledge).where(
            Pledge.matched_pledge_id == pledge.id, Pledge.state == PledgeState.COMMITTED
        )
    )
    if match is None:
        return 0
    pledge_states.LIFECYCLE.move(
        session,
        match,
        PledgeState.CANCELLED,
        actor_id=actor_id,
        now=now,
        reason=Message("the matched pledge %(pledge)s was cancelled", pledge=str(pledge.id)),
    )
    session.execute(
        update(Project)
        .where(Project.id == match.project_id)
        .values(tokens_pledged=Project.tokens_pledged - match.tokens)
        .execution_options(synchronize_session=False)
    )
    return match.tokens


@dataclass(frozen=True)
class Offer:
    """A pool that would match a pledge here now, as the pledge form says it."""

    name: str
    ratio: Decimal  # tokens added for each token pledged
    left_cents: int


def offer_for(session: Session, project: Project, organisation_id: int | None) -> Offer | None:
    """The pool a pledge on ``project`` would be matched by now (read only: the pledge
    itself decides, under the pool's lock)."""
    if project.token_price_cents is None:
        return None
    for pool in session.scalars(
        select(Pool).where(Pool.state == PoolState.ACTIVE).order_by(Pool.id)
    ):
        if pool.organisation_id == organisation_id or not pool.takes(
            round_id=project.round_id, theme=project.theme.value, city=project.city
        ):
            continue
        left = min(
            pool.budget_cents - committed_cents(session, pool.id),
            pool.cap_per_project_cents - committed_cents(session, pool.id, project.id),
        )
        if left >= project.token_price_cents:
            return Offer(pool.name, pool.match_ratio.normalize(), left)
    return None


def matched_by(session: Session, project_id: int) -> list[str]:
    """The pools whose live pledges fund the project (their names)."""
    return list(
        session.scalars(
            select(Pool.name)
            .join(Pledge, Pledge.pool_id == Pool.id)
            .where(Pledge.project_id == project_id, Pledge.state.in_(LIVE_STATES))
            .distinct()
            .order_by(Pool.name)
        )
    )
