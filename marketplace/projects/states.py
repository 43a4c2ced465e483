"""The project state machine: the one way a project changes state.

Invariants:
- ``TRANSITIONS`` is the whole table (product.md "Project lifecycle"); any
  other move raises ``InvalidTransition`` (409 ``invalid_transition``).
- A transition is an atomic conditional update (``... WHERE state = :from``),
  so of two concurrent requests for the same move exactly one succeeds and
  the other is refused; nothing is half-done.
- Every transition appends one history row with who, when, from, to and why.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.projects import counts as listing_counts
from marketplace.projects.models import Project, ProjectState, ProjectStateChange
from outcomes.errors import Conflict

S = ProjectState

TRANSITIONS: frozenset[tuple[ProjectState, ProjectState]] = frozenset(
    {
        (S.DRAFT, S.SUBMITTED),
        (S.DRAFT, S.WITHDRAWN),
        (S.SUBMITTED, S.VALUED),
        (S.SUBMITTED, S.REJECTED),
        (S.SUBMITTED, S.WITHDRAWN),
        (S.VALUED, S.VALUED),  # re-valued by the expert panel
        (S.VALUED, S.FUNDING),
        (S.VALUED, S.REJECTED),
        (S.VALUED, S.WITHDRAWN),
        (S.FUNDING, S.FUNDED),
        (S.FUNDING, S.UNFUNDED),
        (S.FUNDING, S.WITHDRAWN),
        (S.FUNDED, S.RUNNING),
        (S.FUNDED, S.UNFUNDED),  # charges failed and were not paid within the grace period
        (S.RUNNING, S.EVALUATING),
        (S.EVALUATING, S.SETTLED),
    }
)

FINAL_STATES = frozenset({S.SETTLED, S.REJECTED, S.UNFUNDED, S.WITHDRAWN})


class InvalidTransition(Conflict):
    """The project is not in a state from which this move is allowed."""

    code = "invalid_transition"
    title = "The project cannot make this change in its current state"


def can_transition(from_state: ProjectState, to_state: ProjectState) -> bool:
    return (from_state, to_state) in TRANSITIONS


def transition(
    session: Session,
    project: Project,
    to_state: ProjectState,
    *,
    actor: User | None,
    now: datetime,
    reason: str = "",
) -> ProjectStateChange:
    """Move ``project`` to ``to_state`` and record it.

    Raises InvalidTransition when the move is not in the table, or when the
    project's state changed underneath (a concurrent request won).
    """
    from_state = project.state
    if not can_transition(from_state, to_state):
        raise InvalidTransition(
            f"A {from_state.value} project cannot become {to_state.value}.",
        )
    session.flush()
    result = session.execute(
        update(Project)
        .where(Project.id == project.id, Project.state == from_state)
        .values(state=to_state, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.refresh(project)
        raise InvalidTransition(
            f"The project is now {project.state.value}; it cannot become {to_state.value}.",
        )
    session.refresh(project, ["state", "updated_at"])
    change = ProjectStateChange(
        project_id=project.id,
        at=now,
        from_state=from_state,
        to_state=to_state,
        actor=actor,
        reason=reason,
    )
    session.add(change)
    listing_counts.bump(session)
    session.flush()
    return change


def record_creation(session: Session, project: Project, *, actor: User, now: datetime) -> None:
    """The first history row: the project came into being as a draft."""
    session.add(
        ProjectStateChange(
            project_id=project.id,
            at=now,
            from_state=None,
            to_state=project.state,
            actor=actor,
            reason="created",
        )
    )
