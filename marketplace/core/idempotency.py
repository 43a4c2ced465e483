"""Idempotent requests: an ``Idempotency-Key`` makes a request happen once.

Invariants:
- A record belongs to one user and key; it keeps the first successful response
  (status and body) and the fingerprint (method, path, canonical body) of the
  request that made it. The pair (user, key) is unique in the database.
- The same key with the same request replays the stored response; with another
  request it is refused (409 ``idempotency_conflict``), whatever the order.
- A service stores the record in the transaction that does the work
  (``remember``), so the work and its record commit together or not at all.
  When a concurrent twin stored the key first, the service raises ``Replayed``:
  the edge rolls its own work back and answers with the twin's response.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from outcomes.db import Base, UTCDateTime
from outcomes.errors import Conflict, ValidationFailed

HEADER = "Idempotency-Key"
# The header as the OpenAPI document describes it, for every route that takes it.
OPENAPI_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Repeat a request safely: the same key and body return the first response.",
}
MAX_KEY = 255


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    title = "This Idempotency-Key was used with another request"


@dataclass(frozen=True)
class Idempotency:
    """An ``Idempotency-Key`` with the fingerprint of the request that carried it."""

    user_id: int
    key: str
    fingerprint: str


class Replayed(Exception):
    """This key already has a response: roll back and answer with ``record``'s."""

    def __init__(self, idempotency: Idempotency) -> None:
        super().__init__(idempotency.key)
        self.idempotency = idempotency


def fingerprint(method: str, path: str, body: Any) -> str:
    """SHA-256 of the method, the path and the body as canonical JSON."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def parse(user_id: int, key: str | None, method: str, path: str, body: Any) -> Idempotency | None:
    """The request's idempotency (None without a key); ValidationFailed for a bad key."""
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= MAX_KEY:
        raise ValidationFailed(errors={HEADER: ["Between 1 and 255 characters."]})
    return Idempotency(user_id=user_id, key=key, fingerprint=fingerprint(method, path, body))


def from_request(user_id: int) -> Idempotency | None:
    """The current request's ``Idempotency-Key`` with its fingerprint (the API's edges)."""
    from flask import request

    if HEADER not in request.headers:
        return None
    try:
        body: Any = request.get_json(silent=True)
    except RecursionError:  # a body no route accepts: its bytes stand for it
        body = request.get_data(as_text=True)
    return parse(user_id, request.headers.get(HEADER), request.method, request.path, body)


def key_of_request() -> str | None:
    """The current request's ``Idempotency-Key`` as ``from_request`` reads it, unchecked
    (to look its record up before the caller is known)."""
    from flask import request

    return (request.headers.get(HEADER) or "").strip() or None


def replay(session: Session, idempotency: Idempotency | None) -> IdempotencyRecord | None:
    """The stored response for this key, or None; IdempotencyConflict for another request."""
    if idempotency is None:
        return None
    record = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == idempotency.user_id,
            IdempotencyRecord.key == idempotency.key,
        )
    )
    if record is not None:
        _same_request(idempotency, record.fingerprint)
    return record


def check(session: Session, idempotency: Idempotency | None) -> None:
    """Before the work: Replayed when this key already has a response."""
    if replay(session, idempotency) is not None:
        assert idempotency is not None  # noqa: S101 - replay found a record for it
        raise Replayed(idempotency)


def check_stored(idempotency: Idempotency | None, stored: str | None) -> None:
    """``check`` with the fingerprint stored under the key already read (None: none is)."""
    if idempotency is None or stored is None:
        return
    _same_request(idempotency, stored)
    raise Replayed(idempotency)


def _same_request(idempotency: Idempotency, stored: str) -> None:
    """IdempotencyConflict unless the key was first used with this request."""
    if stored != idempotency.fingerprint:
        raise IdempotencyConflict("This Idempotency-Key was first used with another request.")


def remember(
    session: Session,
    idempotency: Idempotency | None,
    *,
    status_code: int,
    response: dict[str, Any],
    now: datetime,
) -> None:
    """Store the response in the work's transaction; Replayed when a twin stored it first.

    A plain insert (no savepoint): on the hot path of a pledge every round trip
    counts, and after a unique violation the whole transaction is rolled back by
    the edge anyway.
    """
    if idempotency is None:
        return
    try:
        session.execute(
            insert(IdempotencyRecord).values(
                **record_values(idempotency, status_code=status_code, response=response, now=now)
            )
        )
    except IntegrityError:
        raise Replayed(idempotency) from None


def record_values(
    idempotency: Idempotency, *, status_code: int, response: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The columns of the record that stores a response (for a statement that writes it
    together with the work)."""
    return {
        "user_id": idempotency.user_id,
        "key": idempotency.key,
        "fingerprint": idempotency.fingerprint,
        "status_code": status_code,
        "response": response,
        "created_at": now,
    }
