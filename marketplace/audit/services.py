"""Writing and reading the audit log.

Invariants:
- Money and transitions are written in the transaction that makes them, so
  the log holds exactly what was committed: the ledger calls ``money`` when it
  writes an entry; a session listener writes a row for every state-history
  row flushed (project, pledge, evaluation), whichever layer made it.
- Refusals and administrators' changes are written after the response is
  decided, in a transaction of their own: a refused request rolls its own
  work back, and its refusal must still be on record.
- Who and from where come from the request (the signed-in person or the API
  token's owner, the client address, the request id) or, outside a request,
  from ``acting_as`` (the scheduler, the CLI).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, event, func, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from marketplace.accounts.models import User
from marketplace.audit.models import AuditEvent
from marketplace.funding.models import PledgeStateChange
from marketplace.projects.models import ProjectStateChange
from outcomes.evaluation import EvaluationStateChange


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    label: str
    via: str
    remote_addr: str | None = None
    request_id: str | None = None


_outside_requests: ContextVar[str] = ContextVar("audit_via", default="system")
# Set by the web layer: returns the Actor of the request being served, or None.
_request_actor = None


def use_request_actor(resolver) -> None:
    """The web layer tells the log how to find the person behind a request."""
    global _request_actor
    _request_actor = resolver


@contextlib.contextmanager
def acting_as(via: str) -> Iterator[None]:
    """Outside a request: name what is acting (``scheduler``, ``cli``)."""
    token = _outside_requests.set(via)
    try:
        yield
    finally:
        _outside_requests.reset(token)


def act_as_for_this_process(via: str) -> None:
    """A command-line process: everything it does outside a request is done by ``via``."""
    _outside_requests.set(via)


def current_actor() -> Actor:
    actor = _request_actor() if _request_actor else None
    if actor is not None:
        return actor
    via = _outside_requests.get()
    return Actor(user_id=None, label=via, via=via)


def _row(kind: str, action: str, subject: str, at: datetime, actor: Actor, **detail) -> dict:
    return {
        "at": at,
        "kind": kind,
        "action": action[:200],
        "subject": subject[:200],
        "actor_id": actor.user_id,
        "actor": actor.label[:254],
        "via": actor.via,
        "remote_addr": actor.remote_addr,
        "request_id": actor.request_id,
        "detail": detail,
    }


def _write(connection: Connection, rows: list[dict]) -> None:
    if rows:
        connection.execute(insert(AuditEvent.__table__), rows)


@dataclass(frozen=True)
class Movement:
    """One journal entry as the log shows it."""

    entry_id: int
    reference: str
    kind: str
    legs: list[tuple[str, str, int]]  # (debit account code, credit account code, cents)


def money(session: Session, movements: Iterable[Movement], *, at: datetime) -> None:
    """Rows for journal entries written in this transaction."""
    actor = current_actor()
    _write(
        session.connection(),
        [
            _row(
                "money",
                m.kind,
                f"journal:{m.reference}",
                at,
                actor,
                entry_id=m.entry_id,
                amount_cents=sum(cents for _, _, cents in m.legs),
                legs=[
                    {"debit": debit, "credit": credit, "cents": cents}
                    for debit, credit, cents in m.legs
                ],
            )
            for m in movements
        ],
    )


HISTORIES = {
    ProjectStateChange: ("project", "project_id"),
    PledgeStateChange: ("pledge", "pledge_id"),
    EvaluationStateChange: ("evaluation", "evaluation_id"),
}


def _state_name(value) -> str:
    return getattr(value, "value", value) or "new"


def _email_of(session: Session, user_id: int) -> str:
    """The e-mail of a user, from the session's identity map when it is there."""
    known = session.identity_map.get(identity_key(User, user_id))
    if known is not None:
        return known.email
    found = session.connection().scalar(select(User.email).where(User.id == user_id))
    return found or f"user:{user_id}"


def transition_row(session: Session, what: str, subject_id: int, change, actor: Actor) -> dict:
    if change.actor_id is not None and change.actor_id != actor.user_id:
        # Someone other than the caller acted (a command, a sweep on a person's behalf).
        label = _email_of(session, change.actor_id)
        actor = Actor(change.actor_id, label, actor.via, actor.remote_addr, actor.request_id)
    return _row(
        "transition",
        f"{what} {_state_name(change.from_state)} -> {_state_name(change.to_state)}",
        f"{what}:{subject_id}",
        change.at,
        actor,
        reason=change.reason or "",
    )


@event.listens_for(Session, "after_flush")
def _transitions_flushed(session: Session, _context) -> None:
    changes = [obj for obj in session.new if type(obj) in HISTORIES]
    if not changes:
        return
    actor = current_actor()
    rows = []
    for change in changes:
        what, key = HISTORIES[type(change)]
        rows.append(transition_row(session, what, getattr(change, key), change, actor))
    _write(session.connection(), rows)


def transitions(session: Session, what: str, changes: Iterable[tuple[int, object]]) -> None:
    """Rows for history rows written with a Core insert (the listener does not see them)."""
    actor = current_actor()
    _write(
        session.connection(),
        [
            transition_row(session, what, subject_id, change, actor)
            for subject_id, change in changes
        ],
    )


def record(session: Session, kind: str, action: str, subject: str, at: datetime, **detail):
    """A row in the session's transaction."""
    _write(session.connection(), [_row(kind, action, subject, at, current_actor(), **detail)])


def on_its_own(
    engine, actor: Actor, kind: str, action: str, subject: str, at: datetime, **detail
) -> None:
    """A row in a transaction of its own (refusals: the request's work was rolled back)."""
    with engine.begin() as connection:
        _write(connection, [_row(kind, action, subject, at, actor, **detail)])


@dataclass(frozen=True)
class AuditFilters:
    kind: str | None = None
    actor: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    page: int = 1
    per_page: int = 100


def search(session: Session, filters: AuditFilters) -> tuple[list[AuditEvent], int]:
    """Newest first."""
    query = select(AuditEvent)
    if filters.kind:
        query = query.where(AuditEvent.kind == filters.kind)
    if filters.actor:
        query = query.where(
            AuditEvent.actor.contains(filters.actor.strip().lower(), autoescape=True)
        )
    if filters.subject:
        subject = filters.subject.strip()
        query = query.where(AuditEvent.subject.startswith(subject, autoescape=True))
    if filters.since:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until:
        query = query.where(AuditEvent.at < filters.until)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    items = session.scalars(
        query.order_by(AuditEvent.id.desc())
        .limit(filters.per_page)
        .offset((filters.page - 1) * filters.per_page)
    ).all()
    return list(items), total
