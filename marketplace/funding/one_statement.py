"""A returning buyer's pledge on PostgreSQL in one statement (its hot path).

Every row a pledge writes is known before the database is asked, once its id is: the
read before (``read_ahead``; through the API ``read_ahead_as_caller``, which reads the
caller too, so the request's first round trip is its only read) takes the ids from the
pledges' sequence along with all else the pledge needs (its project's figures, the
saved method, the pools that could match), so the pledge, its history and audit rows,
the pool's match with its own, the pools' running totals and the idempotency record are
written by one statement of data-modifying CTEs. Its claims come first: the
reservation (the project row's conditional update, as on every database), then a
match's budget and cap claims on its pool (so the locks are taken project first, then
pool, as every other writer takes them); the rows after them.

The statement is its own transaction (the request's reads end before it): the project's
row is locked from its update to the statement's commit, inside the server, and never
while Python runs or a packet travels; that lock is what every pledge of a popular
project queues on. So the statement must hold whole or not happen: unless the
reservation and the match's claims each took their row, ``refuse_unless`` (migration
0031) fails it, and the caller makes the pledge on the general path, under the locks,
in the request's transaction. That is also where a match read without a lock that no
longer holds, and a project that refuses the pledge, are decided and explained.

What the statement does is what the statements of the general path
(``services._reserve``) do one by one; the tests run both, on PostgreSQL and SQLite.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Table,
    and_,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from marketplace.accounts import authorisation
from marketplace.accounts.models import Organisation
from marketplace.audit.models import AuditEvent
from marketplace.core import autocommit
from marketplace.core.hot import Hot
from marketplace.core.idempotency import Idempotency, IdempotencyRecord, Replayed
from marketplace.funding import matching
from marketplace.funding.models import Pledge, PledgeStateChange
from marketplace.payments import services as payments
from marketplace.payments.models import BANK_TRANSFER, MethodType
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


def _ids(caller: Any = None) -> Any:
    """Two ids from the pledges' sequence; with a ``caller`` (a CTE of its rows), taken
    only for a caller found."""
    sequence = func.pg_get_serial_sequence("pledges", "id")
    ids = select(
        func.nextval(sequence).label("pledge_id"), func.nextval(sequence).label("match_id")
    )
    if caller is None:
        return ids.subquery("ids")
    return ids.where(caller.c.id.is_not(None)).correlate(caller).lateral("ids")


# What a pledge reads of its project, on both paths (by these names).
PROJECT_FIGURES = (
    "state",
    "funding_deadline",
    "tokens_total",
    "tokens_pledged",
    "token_price_cents",
    "round_id",
    "theme",
    "city",
)
_Figures = namedtuple("_Figures", PROJECT_FIGURES)  # type: ignore[misc]


def project_figures(project_id: Any, organisation_id: Any) -> Any:
    """The figures of a project a buyer's organisation may know of (listed, or its own)."""
    return select(*[Project.__table__.c[name] for name in PROJECT_FIGURES]).where(
        Project.id == project_id,
        or_(Project.listed_at.is_not(None), Project.organisation_id == organisation_id),
    )


@dataclass(frozen=True)
class Ahead:
    """All a returning buyer's pledge reads before it writes, in one round trip: the
    fingerprint of a response already stored under its Idempotency-Key, the project's
    figures, whether the organisation is verified, the saved method, two ids from the
    pledges' sequence and the pools that could match (none of it locked)."""

    replayed: str | None
    project: Any | None  # a row of PROJECT_FIGURES
    verified: bool
    card: payments.SavedCard | None
    pledge_id: int
    match_id: int
    pools: list[Any]

    def plan(self, project: matching.Eligible) -> Plan:
        found = matching.eligible_candidates(project, self.pools)
        return Plan(self.pledge_id, self.match_id, found)


def _ahead_statement(*, as_caller: bool) -> Any:
    """The read ahead; ``as_caller``: with the caller's columns (``authorisation.CALLER``)
    first, the organisation and person being those of the token whose digest it is given
    (no row for a token of no active person), else of the parameters given."""
    caller = None
    if as_caller:
        caller = authorisation.caller_query(bindparam("digest")).cte("caller")
        organisation: Any = select(caller.c.organisation_id).scalar_subquery()
        user: Any = select(caller.c.id).scalar_subquery()
    else:
        organisation, user = bindparam("organisation_id"), bindparam("user_id")
    project = project_figures(bindparam("project_id"), organisation).subquery("project")
    card = payments.saved_query(organisation, bindparam("payment_method")).limit(1).subquery("card")
    verified = (
        select(Organisation.verified_at.is_not(None))
        .where(Organisation.id == organisation)
        .scalar_subquery()
    )
    replayed = (
        select(IdempotencyRecord.fingerprint)
        .where(IdempotencyRecord.user_id == user)
        .where(IdempotencyRecord.key == bindparam("key"))
        .scalar_subquery()
    )
    ids = _ids(caller)
    pools = matching.candidates_query(bindparam("project_id"), organisation).subquery("pools")
    return (
        select(
            *([caller.c[name] for name in authorisation.CALLER] if caller is not None else []),
            replayed.label("replayed"),
            verified.label("verified"),
            ids.c.pledge_id,
            ids.c.match_id,
            *[column.label(f"project_{column.name}") for column in project.c],
            *[column.label(f"card_{column.name}") for column in card.c],
            pools,
        )
        # With the caller first: a token of no one reads nothing, nor takes ids.
        .select_from(caller.join(ids, true()) if caller is not None else ids)
        .outerjoin(project, true())
        .outerjoin(card, true())
        .outerjoin(pools, true())
        .order_by(pools.c.id)
    )


# Built once, with bind parameters, and sent by the driver (``core.hot``): building and
# compiling them anew, or SQLAlchemy's lookup of them each time, would cost more Python
# than the round trips saved.
_AHEAD = Hot(partial(_ahead_statement, as_caller=False))
_AHEAD_AS_CALLER = Hot(partial(_ahead_statement, as_caller=True))


def reads_ahead(session: Session, payment_method: str) -> bool:
    """Whether a pledge with this method reads ahead (a returning buyer's saved method, on
    PostgreSQL): the one statement follows."""
    return used(session) and payment_method not in (BANK_TRANSFER, MethodType.SEPA_DEBIT.value)


def read_ahead(
    session: Session,
    *,
    project_id: int,
    organisation_id: int,
    payment_method: str,
    idempotency: Idempotency | None,
) -> Ahead:
    rows = _AHEAD.rows(
        session,
        {
            "project_id": project_id,
            "organisation_id": organisation_id,
            "payment_method": payment_method,
            "user_id": idempotency.user_id if idempotency else None,
            "key": idempotency.key if idempotency else None,
        },
    )
    return _ahead(rows, 0)


def read_ahead_as_caller(
    session: Session, *, digest: str, project_id: int, payment_method: str, key: str | None
) -> tuple[Any | None, Ahead | None]:
    """The read ahead with the caller read along (one round trip for both, the pledge's
    first): the row that admits the caller (``authorisation.admitted``) and what the pledge
    reads, for the person and organisation of the token with this ``digest``; (None, None)
    for a token of no active person. ``key``: the request's Idempotency-Key as sent."""
    rows = _AHEAD_AS_CALLER.rows(
        session,
        {
            "digest": digest,
            "project_id": project_id,
            "payment_method": payment_method,
            "key": key,
        },
    )
    if not rows:
        return None, None
    callers = len(authorisation.CALLER)
    return authorisation.CallerRow(*rows[0][:callers]), _ahead(rows, callers)


def _ahead(rows: list[Any], start: int) -> Ahead:
    """The Ahead of the read's rows, its columns from ``start`` on."""
    first = rows[0][start:]
    figures = len(PROJECT_FIGURES)
    project = first[4 : 4 + figures]
    card = first[4 + figures : 9 + figures]
    pools = start + 9 + figures
    return Ahead(
        replayed=first[0],
        project=_Figures(*project) if project[0] is not None else None,
        verified=bool(first[1]),
        card=payments.saved_card(card) if card[0] is not None else None,
        pledge_id=int(first[2]),
        match_id=int(first[3]),
        pools=[row[pools:] for row in rows if row[pools] is not None],
    )


class Refused(Exception):
    """The project (its tokens, its state) or a pool's claims refused the statement, which
    then did nothing at all: the caller makes the pledge on the general path."""


# The SQLSTATE of refuse_unless (migration 0031), raised when the statement is refused.
REFUSED = "MKREF"


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
) -> None:
    """The statement, committed on its own: the reads before it end first (they locked
    nothing and wrote nothing the pledge needs), and the statement runs as its own
    transaction, so the project's row (and a pool's) is let go the moment the statement
    ends, never held while Python runs. ``audit_rows`` are the pledge's, then the
    match's (if any).

    Raises Refused when the project or a pool refused it (nothing was written), and
    Replayed when a twin stored the idempotency key first."""
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
    statement = _WRITES[(match is not None, record is not None)]
    driver = autocommit.driver(session)
    apart = driver.autocommit  # the reads before ran on their own (``reads_apart``)
    if not apart:
        driver.commit()  # the request's reads end here
        driver.autocommit = True
    try:
        statement.rows(session, params)
    except IntegrityError:
        if idempotency is None:
            raise
        raise Replayed(idempotency) from None
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == REFUSED:
            raise Refused from None
        raise
    finally:
        if not apart:
            driver.autocommit = False


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
    # Should the reservation or a match's claims be refused, refuse_unless fails the
    # statement, which is its own transaction: nothing of it remains.
    rows = ["p", "mp"] if with_match else ["p"]
    own = [
        _rows(Pledge, PLEDGE, rows, "pledged"),
        _rows(PledgeStateChange, HISTORY, [f"{r[:-1]}h" for r in rows], "histories"),
        _rows(AuditEvent, AUDIT, [f"{r[:-1]}a" for r in rows], "audits"),
    ]
    if with_record:
        own.append(_rows(IdempotencyRecord, RECORD, ["r"], "remembered"))
    counted = [select(func.count()).select_from(cte).scalar_subquery() for cte in own]
    claims = [reserved]
    if with_match:
        claims += _claims(reserved)
    # The claims first, then the rows (each CTE runs when the main query first reads it):
    # the rows' foreign keys then find the project's row (and the pool's) locked by this
    # transaction already, where taken first their key-share locks would meet every
    # other pledge's update of that row in a multixact. The statement fails whole unless
    # each claim took its one row.
    counts = select(
        *[
            select(func.count()).select_from(claim).scalar_subquery().label(claim.name)
            for claim in claims
        ],
        *counted,
    ).subquery("counts")
    held = and_(*[counts.c[claim.name] == 1 for claim in claims])
    return select(func.refuse_unless(held, "refused")).select_from(counts)


_WRITES = {
    (with_match, with_record): Hot(
        partial(_write_statement, with_match=with_match, with_record=with_record)
    )
    for with_match in (False, True)
    for with_record in (False, True)
}


def _claims(reserved: Any) -> list[Any]:
    """A match's claims on its pool, made once the project's tokens are reserved: the
    pool's budget, then its cap on the project."""
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
    return [budget, cap]


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
