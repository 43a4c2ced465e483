"""The project lifecycle (product.md "Project lifecycle"): its table of moves.

Moves go through ``outcomes.lifecycle`` (conditional update, history row, typed
refusal); a move also bumps the listing's count version, so cached counts of
projects per state are recomputed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.projects import counts as listing_counts
from marketplace.projects.models import Project, ProjectState, ProjectStateChange
from outcomes.lifecycle import InvalidTransition, Lifecycle

__all__ = ["FINAL_STATES", "LIFECYCLE", "TRANSITIONS", "InvalidTransition", "transition"]

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

LIFECYCLE: Lifecycle[ProjectState] = Lifecycle(
    name="project",
    model=Project,
    history=ProjectStateChange,
    subject_column="project_id",
    transitions=TRANSITIONS,
    after_move=lambda session, _project, _before, _after: listing_counts.bump(session),
)


def can_transition(from_state: ProjectState, to_state: ProjectState) -> bool:
    return LIFECYCLE.allows(from_state, to_state)


# Move a project to a state and record it; InvalidTransition otherwise.
transition = LIFECYCLE.change


def record_creation(session: Session, project: Project, *, actor: User, now: datetime) -> None:
    """The first history row: the project came into being as a draft."""
    LIFECYCLE.record(session, project.id, None, project.state, actor.id, now, "created")
