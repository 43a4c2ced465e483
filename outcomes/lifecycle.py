"""The one state-machine helper: every lifecycle (project, pledge, evaluation) moves through it.

Invariants:
- A lifecycle's ``transitions`` is its whole table; any other move raises the
  lifecycle's refusal (a ``Conflict`` with code ``invalid_transition``) and
  changes nothing.
- A move is one conditional update (``UPDATE ... WHERE id = :id AND state =
  :from``): of two concurrent moves of one row exactly one wins, the other is
  refused with the state it found.
- Every move (and every row's creation, through ``record_creation``) appends
  one history row: who, when, from, to and why. History rows are never edited.
- History tables are declared with ``StateHistory``: the audit log (above)
  finds every history row flushed through it, whichever lifecycle wrote it.
- A reason with figures is a ``Message``: its template is kept in ``reason`` and
  its figures in ``reason_params`` (amounts in cents under keys ending
  ``_cents``), so each reader sees it in their language with money formatted;
  ``reason_text`` is the plain English for the API and the audit log.

It lives here, beside the declarative base and the domain's errors, because
it is the lowest layer with a database: ``outcomes`` (evaluations) and
``marketplace`` (projects, pledges) both use it, and dependencies point down.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import update
from sqlalchemy.orm import Session

from outcomes.db import affected
from outcomes.errors import Conflict, Message, plain_euros

S = TypeVar("S", bound=enum.Enum)


def plain_figure(key: str, value: Any) -> Any:
    """A reason's figure in plain English: cents as euros, counts with separators."""
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    return plain_euros(key, value) if key.endswith("_cents") else f"{value:,}"


class StateHistory:
    """A history table of a lifecycle: ``subject`` names it in the audit log.

    ``subject`` is (what, the column holding the subject's id), e.g. ("pledge", "pledge_id").
    Each table has ``reason`` (text, or a template) and ``reason_params`` (its figures).
    """

    reason: str
    reason_params: dict[str, Any] | None

    @property
    def reason_text(self) -> str:
        """The reason in plain English (the API's and the audit log's)."""
        if not self.reason_params:
            return self.reason or ""
        return self.reason % {k: plain_figure(k, v) for k, v in self.reason_params.items()}

    subject: ClassVar[tuple[str, str]]
    # Every concrete history class, for the audit log's listener.
    kinds: ClassVar[dict[type, tuple[str, str]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "subject" in cls.__dict__:
            StateHistory.kinds[cls] = cls.subject


class InvalidTransition(Conflict):
    """The row is not in a state from which this move is allowed."""

    code = "invalid_transition"
    title = "This change is not possible in the current state"


@dataclass(frozen=True)
class Lifecycle(Generic[S]):
    """One lifecycle: its model, history table, table of moves and refusal.

    ``stamp`` names the model's column set to ``now`` on each move (or None);
    ``after_move(session, row, from_state, to_state)`` runs in the same transaction
    after each move (e.g. to bump a cache version, or keep a running total).
    """

    name: str
    model: type[Any]
    history: type[Any]
    subject_column: str
    transitions: frozenset[tuple[S, S]]
    refusal: type[Conflict] = InvalidTransition
    stamp: str | None = "updated_at"
    after_move: Callable[[Session, Any, S, S], None] | None = field(default=None)

    def allows(self, from_state: S, to_state: S) -> bool:
        return (from_state, to_state) in self.transitions

    def move(
        self,
        session: Session,
        row: Any,
        to_state: S,
        *,
        actor_id: int | None,
        now: datetime,
        reason: str = "",
    ) -> Any:
        """Move ``row`` to ``to_state`` and record it; the refusal otherwise.

        Returns the history row (added and flushed).
        """
        from_state = row.state
        if not self.allows(from_state, to_state):
            raise self.refusal(
                "A %(before)s %(name)s cannot become %(after)s.",
                params={"name": self.name, "before": from_state.value, "after": to_state.value},
            )
        session.flush()
        values: dict[str, Any] = {"state": to_state}
        if self.stamp:
            values[self.stamp] = now
        moved = affected(
            session.execute(
                update(self.model)
                .where(self.model.id == row.id, self.model.state == from_state)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        )
        if moved != 1:
            session.refresh(row)
            raise self.refusal(
                "The %(name)s is now %(state)s; it cannot become %(after)s.",
                params={"name": self.name, "state": row.state.value, "after": to_state.value},
            )
        session.refresh(row, list(values))
        change = self.record(session, row.id, from_state, to_state, actor_id, now, reason)
        if self.after_move is not None:
            self.after_move(session, row, from_state, to_state)
        session.flush()
        return change

    def change(
        self,
        session: Session,
        row: Any,
        to_state: S,
        *,
        actor: Any | None,
        now: datetime,
        reason: str = "",
    ) -> Any:
        """``move`` for a person (any object with an ``id``) or None (the platform)."""
        return self.move(
            session, row, to_state, actor_id=actor.id if actor else None, now=now, reason=reason
        )

    def record(
        self,
        session: Session,
        row_id: int,
        from_state: S | None,
        to_state: S,
        actor_id: int | None,
        now: datetime,
        reason: str,
    ) -> Any:
        """A history row alone: a creation (``from_state`` None) or a move made in bulk."""
        change = self.history(
            **self.history_values(row_id, from_state, to_state, actor_id, now, reason)
        )
        session.add(change)
        return change

    def history_values(
        self,
        row_id: int,
        from_state: S | None,
        to_state: S,
        actor_id: int | None,
        now: datetime,
        reason: str,
    ) -> dict[str, Any]:
        """The columns of a history row, for a Core insert on a hot path."""
        template, params = str(reason), None
        if isinstance(reason, Message) and reason.params:
            template, params = reason.template, dict(reason.params)
        return {
            self.subject_column: row_id,
            "at": now,
            "from_state": from_state,
            "to_state": to_state,
            "actor_id": actor_id,
            "reason": template,
            "reason_params": params,
        }
