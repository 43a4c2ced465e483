"""Matches: the pledges matchfunding pools make beside other buyers' pledges, in the same
transaction (product.md "Matchfunding pools"; the pool's rules are ``pools.services``).

Invariants (held under the pool's row lock, so concurrent pledges on any of its projects
queue for it): a pool's live pledges never hold more than its budget, nor more than its
cap on one project; a project's pledged tokens never pass its total (the project row's
conditional update, as for every pledge).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, func, insert, select, update
from sqlalchemy.orm import Session

from marketplace.audit import services as audit
from marketplace.funding import states as pledge_states
from marketplace.funding.models import LIVE_STATES, Pledge, PledgeState, PledgeStateChange
from marketplace.pools import totals as pool_totals
from marketplace.pools.models import Pool, PoolProject, PoolState, takes
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
    cap_cents: int


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
    """What the pool's live pledges hold (on one project, when given): its running total."""
    if project_id is None:
        query = select(Pool.committed_cents).where(Pool.id == pool_id)
    else:
        query = select(PoolProject.committed_cents).where(
            PoolProject.pool_id == pool_id, PoolProject.project_id == project_id
        )
    return int(session.scalar(query) or 0)


@dataclass(frozen=True)
class Candidate:
    """An active pool of another organisation as read without a lock, with its totals."""

    id: int
    organisation_id: int
    user_id: int
    payment_setup_id: int
    ratio: Decimal
    budget_left_cents: int
    cap_cents: int
    cap_left_cents: int

    def match(self, tokens: int, *, price_cents: int, tokens_left: int) -> int:
        return match_tokens(
            tokens,
            self.ratio,
            price_cents=price_cents,
            budget_left_cents=self.budget_left_cents,
            cap_left_cents=self.cap_left_cents,
            tokens_left=tokens_left,
        )

    def as_match(self, tokens: int) -> Match:
        return Match(
            self.id,
            self.organisation_id,
            self.user_id,
            self.payment_setup_id,
            tokens,
            self.cap_cents,
        )


def candidates_query(project_id: Any, buyer_organisation_id: Any) -> Select:
    """The active pools of other organisations, oldest first, with their totals (on the
    project too) and what decides whether they take it. The ids are values, or bind
    parameters for a statement built once."""
    query: Select = (
        select(
            Pool.id,
            Pool.organisation_id,
            Pool.created_by_id,
            Pool.payment_setup_id,
            Pool.match_ratio,
            (Pool.budget_cents - Pool.committed_cents).label("budget_left_cents"),
            Pool.cap_per_project_cents,
            (Pool.cap_per_project_cents - func.coalesce(PoolProject.committed_cents, 0)).label(
                "cap_left_cents"
            ),
            Pool.round_id,
            Pool.themes,
            Pool.cities,
        )
        .outerjoin(
            PoolProject,
            and_(PoolProject.pool_id == Pool.id, PoolProject.project_id == project_id),
        )
        .where(Pool.state == PoolState.ACTIVE, Pool.organisation_id != buyer_organisation_id)
        .order_by(Pool.id)
    )
    return query


def eligible_candidates(project: Eligible, rows: Iterable[Any]) -> list[Candidate]:
    """Of the rows of ``candidates_query`` (its columns, in its order), the pools that take
    the project."""
    return [
        Candidate(*row[:8])
        for row in rows
        if takes(
            row[8],
            row[9],
            row[10],
            round_id=project.round_id,
            theme=project.theme,
            city=project.city,
        )
    ]


def find_match(
    session: Session,
    project: Eligible,
    found: list[Candidate],
    *,
    tokens: int,
) -> Match | None:
    """The match a pledge of ``tokens`` brings, from the first of the ``found`` pools with
    money left for it, its figures read again under its row lock (held until the pledge's
    transaction ends). The caller holds the project's row lock, so ``project``'s figures
    are exact and the locks are taken in the order every writer takes them. None when no
    pool matches."""
    left = project.tokens_total - project.tokens_pledged - tokens
    for candidate in found:
        if left <= 0:
            return None
        row = session.execute(
            select(Pool.budget_cents - Pool.committed_cents)
            .where(Pool.id == candidate.id, Pool.state == PoolState.ACTIVE)
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE: pledges refer to it
        ).first()
        if row is None:
            continue
        exact = replace(
            candidate,
            budget_left_cents=int(row[0]),
            cap_left_cents=candidate.cap_cents - committed_cents(session, candidate.id, project.id),
        )
        matched = exact.match(tokens, price_cents=project.token_price_cents, tokens_left=left)
        if matched > 0:
            return exact.as_match(matched)
    return None


def pledge_values(
    match: Match, *, project_id: int, price_cents: int, matched_pledge_id: int, now: datetime
) -> dict[str, Any]:
    """The columns of the funder's pledge of the match."""
    return {
        "project_id": project_id,
        "organisation_id": match.organisation_id,
        "user_id": match.user_id,
        "payment_setup_id": match.payment_setup_id,
        "tokens": match.tokens,
        "amount_cents": match.tokens * price_cents,
        "state": PledgeState.COMMITTED,
        "pool_id": match.pool_id,
        "matched_pledge_id": matched_pledge_id,
        "created_at": now,
        "updated_at": now,
    }


def history_values(
    match: Match, *, pledge_id: int, matched_pledge_id: int, now: datetime
) -> dict[str, Any]:
    """The columns of its first history row (the platform made it: no actor)."""
    return pledge_states.LIFECYCLE.history_values(
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


def make_match(
    session: Session,
    match: Match,
    *,
    project_id: int,
    price_cents: int,
    matched_pledge_id: int,
    now: datetime,
) -> int:
    """The funder's pledge of the match, held in the pool's totals, with its history and
    audit rows (the project's tokens are reserved by the caller, with the matched
    pledge's; the match was computed under the pool's lock). Returns its id."""
    if not pool_totals.hold(
        session,
        pool_id=match.pool_id,
        project_id=project_id,
        cents=match.tokens * price_cents,
        cap_cents=match.cap_cents,
    ):
        raise RuntimeError(f"pool {match.pool_id} refused a match computed under its lock")
    values = pledge_values(
        match,
        project_id=project_id,
        price_cents=price_cents,
        matched_pledge_id=matched_pledge_id,
        now=now,
    )
    pledge_id = session.execute(insert(Pledge).values(**values).returning(Pledge.id)).scalar_one()
    first = history_values(match, pledge_id=pledge_id, matched_pledge_id=matched_pledge_id, now=now)
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
