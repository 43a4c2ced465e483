"""Matchfunding pools: a verified buyer organisation (a municipality, a foundation) opens
one; a pledge on an eligible project brings its match (``find_match``, called by funding
in the pledge's own transaction). product.md "Matchfunding pools".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy.orm import Session

from marketplace.accounts.authorisation import OrganisationUnverified
from marketplace.accounts.models import Organisation, Role, User
from marketplace.pools.models import POOL_LIFECYCLE, Pool, PoolState
from marketplace.rounds.services import distinct_cities
from outcomes.errors import Forbidden, NotFound, ValidationFailed


@dataclass(frozen=True)
class NewPool:
    budget_cents: int
    match_ratio: Decimal
    cap_per_project_cents: int
    name: str = ""
    round_id: int | None = None
    themes: list[str] = field(default_factory=list)
    cities: list[str] = field(default_factory=list)


def match_tokens(
    tokens: int,
    ratio: Decimal,
    *,
    price_cents: int,
    budget_left_cents: int,
    cap_left_cents: int,
    tokens_left: int,
) -> int:
    """The match of a pledge of ``tokens``: ``floor(tokens * ratio)``, or fewer as the
    pool's budget, its cap on the project and the project's tokens allow; never negative."""
    wanted = int((Decimal(tokens) * ratio).to_integral_value(rounding=ROUND_FLOOR))
    affordable = min(budget_left_cents, cap_left_cents) // price_cents if price_cents > 0 else 0
    return max(0, min(wanted, affordable, tokens_left))


def check_funder(session: Session, funder: User) -> None:
    """A pool is opened by a buyer of a verified organisation (Forbidden otherwise); checked
    before its payment method is saved at Stripe."""
    if funder.role is not Role.BUYER:
        raise Forbidden("Pools are opened by buyer organisations.")
    organisation = session.get_one(Organisation, funder.organisation_id)
    if organisation.verified_at is None:
        raise OrganisationUnverified("Your organisation is verified before it opens a pool.")


def open_pool(
    session: Session, funder: User, data: NewPool, *, payment_setup_id: int, now: datetime
) -> Pool:
    """A new active pool of the funder's organisation, paying with a saved method (flushes).
    Raises Forbidden (not a buyer of a verified organisation) and ValidationFailed."""
    check_funder(session, funder)
    if data.cap_per_project_cents > data.budget_cents:
        raise ValidationFailed(
            errors={"cap_per_project_cents": ["The cap on a project is at most the budget."]}
        )
    pool = Pool(
        organisation_id=funder.organisation_id,
        created_by_id=funder.id,
        payment_setup_id=payment_setup_id,
        name=data.name,
        budget_cents=data.budget_cents,
        match_ratio=data.match_ratio,
        cap_per_project_cents=data.cap_per_project_cents,
        round_id=data.round_id,
        themes=sorted(set(data.themes)),
        cities=distinct_cities([c for c in data.cities if c.strip()]),
        state=PoolState.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    session.add(pool)
    session.flush()
    POOL_LIFECYCLE.record(session, pool.id, None, PoolState.ACTIVE, funder.id, now, "opened")
    session.flush()
    return pool


def get_pool(session: Session, user: User, pool_id: int) -> Pool:
    """The pool, for its funder's organisation and admins (others: NotFound)."""
    pool = session.get(Pool, pool_id)
    if pool is None or (
        user.role is not Role.ADMIN and pool.organisation_id != user.organisation_id
    ):
        raise NotFound("No such pool.")
    return pool
