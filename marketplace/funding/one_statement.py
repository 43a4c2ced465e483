"""A returning buyer's pledge on PostgreSQL in one statement (its hot path).

Every row a pledge writes is known before the database is asked, once its id is: the
read before (``plan``) takes the ids from the pledges' sequence along with the pools that
could match, so the pledge, its history and audit rows, the pool's match with its own,
the pools' running totals and the idempotency record are written by one statement of
data-modifying CTEs, whose first part is the reservation (the project row's conditional
update, as on every database). Everything else in it is conditional on that reservation,
and the match's rows on the pool's budget and cap claims (which come after it, so the
locks are taken project first, then pool, as every other writer takes them).

What the statement does is what the statements of the general path
(``services._reserve``) do one by one; the tests run both, on PostgreSQL and SQLite.
When the optimistic match (figures read without a lock) does not hold, the statement
says so and the caller finishes the pledge on the general path, under the locks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    exists,
    func,
    insert,
    literal,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.audit.models import AuditEvent
from marketplace.core.idempotency import Idempotency, IdempotencyRecord, Replayed
from marketplace.funding import matching
from marketplace.funding.models import Pledge, PledgeStateChange
from marketplace.pools import totals as pool_totals
from marketplace.pools.models import Pool, PoolProject
from marketplace.projects.models import Project, ProjectState
from outcomes.db import Base


def used(session: Session) -> bool:
    """Whether the session's database takes the one statement (PostgreSQL)."""
    return session.get_bind().dialect.name == "postgresql"


@dataclass(frozen=True)
class Plan:
    pledge_id: int
    match_id: int
    found: list[matching.Candidate]


def plan(session: Session, project: matching.Eligible, buyer_organisation_id: int) -> Plan:
    """Two ids from the pledges' sequence (the pledge's, and its match's should a pool
    make one) and the pools that take the project, read without a lock; one round trip."""
    sequence = func.pg_get_serial_sequence("pledges", "id")
    ids = select(
        func.nextval(sequence).label("pledge_id"), func.nextval(sequence).label("match_id")
    ).subquery("ids")
    pools = matching.candidates_query(project, buyer_organisation_id).subquery("pools")
    rows = session.execute(
        select(ids, pools).select_from(ids).outerjoin(pools, true()).order_by(pools.c.id)
    ).all()
    found = matching.eligible_candidates(project, [row[2:] for row in rows if row[2] is not None])
    return Plan(int(rows[0].pledge_id), int(rows[0].match_id), found)


@dataclass(frozen=True)
class Outcome:
    reserved: bool  # the project's tokens were reserved and the pledge's rows written
    budget_held: bool  # the pool's budget took the match
    matched: bool  # ... and its cap on the project: the match's rows were written


def write(
    session: Session,
    *,
    project_id: int,
    today: date,
    tokens: int,
    price_cents: int,
    pledge: dict[str, Any],
    history: dict[str, Any],
    match: matching.Match | None,
    match_pledge: dict[str, Any] | None,
    match_history: dict[str, Any] | None,
    audit_rows: list[dict[str, Any]],
    idempotency: Idempotency | None,
    record: dict[str, Any] | None,
) -> Outcome:
    """The statement. ``audit_rows`` are the pledge's, then the match's (if any).

    Raises Replayed when a twin stored the idempotency key first."""
    reserving = tokens + (match.tokens if match else 0)
    reserved = (
        update(Project)
        .where(
            Project.id == project_id,
            Project.state == ProjectState.FUNDING,
            Project.funding_deadline >= today,
            Project.tokens_pledged + reserving <= Project.tokens_total,
        )
        .values(tokens_pledged=Project.tokens_pledged + reserving)
        .returning(Project.id)
        .cte("reserved")
    )
    if_reserved = exists(select(reserved.c.id))
    pledges: list[tuple[dict[str, Any], ColumnElement[bool]]] = [(pledge, if_reserved)]
    histories = [(history, if_reserved)]
    audits = [(audit_rows[0], if_reserved)]
    counted = [select(func.count()).select_from(reserved).scalar_subquery()]
    if match is not None:
        assert match_pledge and match_history  # noqa: S101 - made with the match
        cents = match.tokens * price_cents
        budget = (
            pool_totals.budget_claim(match.pool_id, cents)
            .where(if_reserved)
            .returning(Pool.id)
            .cte("budget")
        )
        cap = (
            pool_totals.cap_claim(
                "postgresql",
                cents,
                match.cap_cents,
                source=select(budget.c.id, literal(project_id), literal(cents)),
            )
            .returning(PoolProject.pool_id)
            .cte("cap")
        )
        if_matched = exists(select(cap.c.pool_id))
        pledges.append((match_pledge, if_matched))
        histories.append((match_history, if_matched))
        audits.append((audit_rows[1], if_matched))
        counted.append(select(func.count()).select_from(budget).scalar_subquery())
        counted.append(select(func.count()).select_from(cap).scalar_subquery())
    writes = [
        _rows_if(Pledge, pledges, "pledged"),
        _rows_if(PledgeStateChange, histories, "histories"),
        _rows_if(AuditEvent, audits, "audits"),
    ]
    if record is not None:
        writes.append(_rows_if(IdempotencyRecord, [(record, if_reserved)], "remembered"))
    try:
        row = session.execute(select(*counted).add_cte(*writes)).one()
    except IntegrityError:
        if idempotency is None:
            raise
        raise Replayed(idempotency) from None
    held = match is not None and row[1] == 1
    return Outcome(reserved=row[0] == 1, budget_held=held, matched=held and row[2] == 1)


def _rows_if(
    model: type[Base], rows: Sequence[tuple[dict[str, Any], ColumnElement[bool]]], name: str
) -> Any:
    """A CTE inserting each row whose condition holds (the values typed as the columns)."""
    table: Table = model.__table__  # type: ignore[assignment]
    names = sorted({key for values, _ in rows for key in values})
    selects = [
        select(*[literal(values.get(key), table.c[key].type) for key in names]).where(condition)
        for values, condition in rows
    ]
    source = selects[0] if len(selects) == 1 else union_all(*selects)
    return insert(table).from_select(names, source).returning(table.c[names[0]]).cte(name)
