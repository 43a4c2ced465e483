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
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection, event, func, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from marketplace.accounts.models import User
from marketplace.audit.models import AuditEvent
from outcomes.lifecycle import StateHistory


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
        connection.execute(insert(AuditEvent), rows)


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


# Every lifecycle's history table (``outcomes.lifecycle.StateHistory``), by class.
HISTORIES = StateHistory.kinds


def _state_name(value) -> str:
    return getattr(value, "value", value) or "new"


def _email_of(session: Session, user_id: int) -> str:
    """The e-mail of a user, from the session's identity map when it is there."""
    known = session.identity_map.get(identity_key(User, user_id))
    if known is not None:
        return known.email
    found = session.connection().scalar(select(User.email).where(User.id == user_id))
    return found or f"user:{user_id}"


def _transition_row(session: Session, change, actor: Actor) -> dict:
    what, key = HISTORIES[type(change)]
    subject_id = getattr(change, key)
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
        reason=change.reason_text,
        **(
            {"reason_template": change.reason, "reason_params": change.reason_params}
            if change.reason_params
            else {}
        ),
    )


def transitions(session: Session, changes: Iterable[object]) -> None:
    """Rows for history rows (of the ``HISTORIES`` kinds) written in this transaction.

    The session listener calls it for those flushed through the session; a history
    row written with a Core insert is passed in by whoever wrote it.
    """
    _write(session.connection(), transition_rows(session, changes))


def transition_rows(session: Session, changes: Iterable[object]) -> list[dict]:
    """The rows ``transitions`` writes, for a statement that writes them with the work."""
    changes = list(changes)
    if not changes:
        return []
    actor = current_actor()
    return [_transition_row(session, c, actor) for c in changes]


@event.listens_for(Session, "after_flush")
def _transitions_flushed(session: Session, _context) -> None:
    transitions(session, (obj for obj in session.new if type(obj) in HISTORIES))


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


def period(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """``since`` and ``until`` of the days ``first`` to ``last`` inclusive (UTC midnights)."""

    def midnight(day: date | None) -> datetime | None:
        return datetime.combine(day, time(), tzinfo=UTC) if day else None

    return midnight(first), midnight(last + timedelta(days=1) if last else None)


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
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(AuditEvent.id.desc())
        .limit(filters.per_page)
        .offset((filters.page - 1) * filters.per_page)
    ).all()
    return list(items), total
