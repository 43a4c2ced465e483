"""One row per audited event; the database refuses to change or delete a row.

Invariants:
- Rows are only ever inserted: triggers on both databases abort any UPDATE or
  DELETE of ``audit_events`` (an operator who must purge old rows drops the
  triggers on purpose, in a migration that leaves its own trace).
- Every money movement (journal entry), every state transition (project,
  pledge, evaluation), every refused request (401/403, failed sign-in) and
  every change an administrator makes has a row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from outcomes.db import Base, UTCDateTime

KINDS = ("money", "transition", "refused", "admin", "account")

APPEND_ONLY = "audit_events is append-only"
# The migration creates these; the test suite needs them to empty the table.
SQLITE_TRIGGERS = {
    f"audit_events_no_{verb.lower()}": (
        f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
        f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
    )
    for verb in ("UPDATE", "DELETE")
}
POSTGRES_FUNCTION = (
    "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END; $$"
)
POSTGRES_TRIGGER = (
    "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "kind", "id"), Index(None, "subject"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # money | transition | refused | admin
    kind: Mapped[str] = mapped_column(String(20))
    # e.g. "payment", "project funding -> funded", "403 Forbidden", "POST projects.value"
    action: Mapped[str] = mapped_column(String(200))
    # e.g. "project:42", "pledge:7", "journal:payment:pi_123", "/api/v1/users"
    subject: Mapped[str] = mapped_column(String(200))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # the person's e-mail, or what acted without one: scheduler, stripe, cli, anonymous
    actor: Mapped[str] = mapped_column(String(254))
    # web | api | webhook | scheduler | cli | system
    via: Mapped[str] = mapped_column(String(20))
    remote_addr: Mapped[str | None] = mapped_column(String(45))
    request_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
