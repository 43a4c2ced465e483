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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Table,
    bindparam,
    exists,
    func,
    insert,
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


# Statements are built once, with bind parameters, and executed on the session's
# connection: building and compiling them anew would cost more than the round trips saved.
_built: dict[Any, Any] = {}


def _once(key: Any, build: Callable[[], Any]) -> Any:
    if key not in _built:
        _built[key] = build()  # two threads may both build it: the same statement
    return _built[key]


@dataclass(frozen=True)
class Plan:
    pledge_id: int
    match_id: int
    found: list[matching.Candidate]


def _plan_statement() -> Any:
    sequence = func.pg_get_serial_sequence("pledges", "id")
    ids = select(
        func.nextval(sequence).label("pledge_id"), func.nextval(sequence).label("match_id")
    ).subquery("ids")
    pools = matching.candidates_query(
        bindparam("project_id"), bindparam("organisation_id")
    ).subquery("pools")
    return select(ids, pools).select_from(ids).outerjoin(pools, true()).order_by(pools.c.id)


def plan(session: Session, project: matching.Eligible, buyer_organisation_id: int) -> Plan:
    """Two ids from the pledges' sequence (the pledge's, and its match's should a pool
    make one) and the pools that take the project, read without a lock; one round trip."""
    rows = (
        session.connection()
        .execute(
            _once("plan", _plan_statement),
            {"project_id": project.id, "organisation_id": buyer_organisation_id},
        )
        .all()
    )
    found = matching.eligible_candidates(project, [row[2:] for row in rows if row[2] is not None])
    return Plan(int(rows[0].pledge_id), int(rows[0].match_id), found)


@dataclass(frozen=True)
class Outcome:
    """The rows are always written: a refused reservation rolls the request's transaction
    back, refused match claims are undone with ``undo_match``."""

    reserved: bool  # the project's tokens were reserved (with the match's, if any)
    matched: bool  # ... and the pool's budget and cap on the project took the match


SAVEPOINT = "pledge_match"


PLEDGE = (
    "id",
    "project_id",
    "organisation_id",
    "user_id",
    "payment_setup_id",
    "tokens",
    "amount_cents",
    "state",
    "pool_id",
    "matched_pledge_id",
    "created_at",
    "updated_at",
)
HISTORY = ("pledge_id", "at", "from_state", "to_state", "actor_id", "reason", "reason_params")
AUDIT = (
    "at",
    "kind",
    "action",
    "subject",
    "actor_id",
    "actor",
    "via",
    "remote_addr",
    "request_id",
    "detail",
)
RECORD = ("user_id", "key", "fingerprint", "status_code", "response", "created_at")


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
    params: dict[str, Any] = {
        "project_id": project_id,
        "today": today,
        "reserving": tokens + (match.tokens if match else 0),
    }
    rows = [("p", PLEDGE, pledge), ("h", HISTORY, history), ("a", AUDIT, audit_rows[0])]
    if match is not None:
        assert match_pledge and match_history  # noqa: S101 - made with the match
        params |= {
            "pool_id": match.pool_id,
            "cents": match.tokens * price_cents,
            "cap_cents": match.cap_cents,
        }
        rows += [
            ("mp", PLEDGE, match_pledge),
            ("mh", HISTORY, match_history),
            ("ma", AUDIT, audit_rows[1]),
        ]
    if record is not None:
        rows.append(("r", RECORD, record))
    for prefix, columns, values in rows:
        params |= {f"{prefix}_{column}": values.get(column) for column in columns}
    statement = _once(
        ("write", match is not None, record is not None),
        lambda: _write_statement(with_match=match is not None, with_record=record is not None),
    )
    connection = session.connection()
    if match is not None:
        connection.exec_driver_sql(f"SAVEPOINT {SAVEPOINT}")
    try:
        row = connection.execute(statement, params).one()
    except IntegrityError:
        if idempotency is None:
            raise
        raise Replayed(idempotency) from None
    first = 4 if record is not None else 3  # the counts of the rows written come first
    reserved = row[first] == 1
    matched = match is not None and reserved and row[first + 1] == row[first + 2] == 1
    return Outcome(reserved=reserved, matched=matched)


def undo_match(session: Session) -> None:
    """Everything the statement wrote with a match whose claims were refused, undone (to
    the savepoint it took): the caller makes the pledge on the general path."""
    session.connection().exec_driver_sql(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")


def reservation(project_id: Any, today: Any, count: Any) -> Any:
    """The one conditional update that reserves ``count`` tokens of a project still in
    funding (on both paths; values or bind parameters)."""
    return (
        update(Project)
        .where(
            Project.id == project_id,
            Project.state == ProjectState.FUNDING,
            Project.funding_deadline >= today,
            Project.tokens_pledged + count <= Project.tokens_total,
        )
        .values(tokens_pledged=Project.tokens_pledged + count)
        .execution_options(synchronize_session=False)
    )


def _write_statement(*, with_match: bool, with_record: bool) -> Any:
    reserved = (
        reservation(
            bindparam("project_id"),
            bindparam("today"),
            bindparam("reserving", type_=Integer),
        )
        .returning(Project.id)
        .cte("reserved")
    )
    # The rows come first and need no lock; the main query reads them before the
    # reservation, so the project's row (and a pool's) is locked for as little as it can
    # be. Should the reservation be refused, the request's transaction is rolled back;
    # should a match's claims be, the caller rolls back to the savepoint taken before.
    rows = ["p", "mp"] if with_match else ["p"]
    own = [
        _rows(Pledge, PLEDGE, rows, "pledged"),
        _rows(PledgeStateChange, HISTORY, [f"{r[:-1]}h" for r in rows], "histories"),
        _rows(AuditEvent, AUDIT, [f"{r[:-1]}a" for r in rows], "audits"),
    ]
    if with_record:
        own.append(_rows(IdempotencyRecord, RECORD, ["r"], "remembered"))
    counted = [select(func.count()).select_from(cte).scalar_subquery() for cte in own]
    counted.append(select(func.count()).select_from(reserved).scalar_subquery())
    if not with_match:
        return select(*counted)
    cents = bindparam("cents", type_=BigInteger)
    budget = (
        pool_totals.budget_claim(bindparam("pool_id"), cents)
        .where(exists(select(reserved.c.id)))
        .returning(Pool.id)
        .cte("budget")
    )
    cap = (
        pool_totals.cap_claim(
            "postgresql",
            cents,
            bindparam("cap_cents"),
            source=select(budget.c.id, bindparam("project_id"), cents),
        )
        .returning(PoolProject.pool_id)
        .cte("cap")
    )
    counted.append(select(func.count()).select_from(budget).scalar_subquery())
    counted.append(select(func.count()).select_from(cap).scalar_subquery())
    return select(*counted)


def _rows(model: type[Base], columns: Sequence[str], prefixes: Sequence[str], name: str) -> Any:
    """A CTE inserting one row for each prefix (its parameters ``{prefix}_{column}``), the
    values typed as the columns."""
    table: Table = model.__table__  # type: ignore[assignment]
    selects = [
        select(*[bindparam(f"{prefix}_{column}", type_=table.c[column].type) for column in columns])
        for prefix in prefixes
    ]
    source = selects[0] if len(selects) == 1 else union_all(*selects)
    return insert(table).from_select(list(columns), source).returning(table.c[columns[0]]).cte(name)
