"""The project state machine: every pair of states, allowed or refused, on both databases."""

import itertools
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from marketplace.projects.models import Project, ProjectState, ProjectStateChange
from marketplace.projects.states import TRANSITIONS, InvalidTransition, transition
from tests.factories import ProjectFactory, UserFactory

NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)
S = ProjectState

EXPECTED = {
    S.DRAFT: {S.SUBMITTED, S.WITHDRAWN},
    S.SUBMITTED: {S.VALUED, S.REJECTED, S.WITHDRAWN},
    S.VALUED: {S.VALUED, S.FUNDING, S.REJECTED, S.WITHDRAWN},
    S.FUNDING: {S.FUNDED, S.UNFUNDED, S.WITHDRAWN},
    S.FUNDED: {S.RUNNING, S.UNFUNDED},
    S.RUNNING: {S.EVALUATING},
    S.EVALUATING: {S.SETTLED},
    S.SETTLED: set(),
    S.REJECTED: set(),
    S.UNFUNDED: set(),
    S.WITHDRAWN: set(),
}


def test_the_table_is_exactly_the_product_lifecycle():
    assert {(a, b) for a, targets in EXPECTED.items() for b in targets} == set(TRANSITIONS)


def changes(session, project_id):
    session.rollback()
    return session.scalar(
        select(func.count())
        .select_from(ProjectStateChange)
        .where(ProjectStateChange.project_id == project_id)
    )


@pytest.mark.parametrize(
    ("from_state", "to_state"), list(itertools.product(S, S)), ids=lambda s: s.value
)
def test_every_transition_is_allowed_or_refused_as_the_table_says(session, from_state, to_state):
    project = ProjectFactory(state=from_state)
    admin = UserFactory(admin=True)

    if to_state in EXPECTED[from_state]:
        change = transition(session, project, to_state, actor=admin, now=NOW, reason="test")
        session.commit()
        assert (change.from_state, change.to_state, change.actor_id, change.at) == (
            from_state,
            to_state,
            admin.id,
            NOW,
        )
        assert session.get(Project, project.id).state is to_state
        assert changes(session, project.id) == 1
    else:
        with pytest.raises(InvalidTransition) as refused:
            transition(session, project, to_state, actor=admin, now=NOW)
        assert refused.value.code == "invalid_transition"
        assert changes(session, project.id) == 0
        assert session.get(Project, project.id).state is from_state


def test_a_stale_object_cannot_move_a_project_that_moved_meanwhile(app, session):
    project = ProjectFactory(state=S.SUBMITTED)
    admin = UserFactory(admin=True)
    other = app.extensions["db"].session_factory()
    mine = other.get(Project, project.id)
    other.commit()  # end the read; ``mine`` keeps the state it saw
    transition(
        session,
        session.get(Project, project.id),
        S.REJECTED,
        actor=admin,
        now=NOW,
        reason="declined by the panel",
    )
    session.commit()

    with pytest.raises(InvalidTransition):
        transition(other, mine, S.VALUED, actor=admin, now=NOW)
    other.rollback()
    other.close()
    assert changes(session, project.id) == 1


@pytest.mark.parametrize(("from_state", "action"), [(S.DRAFT, "submit"), (S.VALUED, "list")])
def test_of_two_simultaneous_requests_one_wins_and_the_other_gets_409(
    app, auth_headers, from_state, action
):
    project = ProjectFactory(state=from_state)
    owner = UserFactory(entrepreneur=True, organisation=project.organisation)
    actor = owner if action == "submit" else UserFactory(admin=True)
    headers = auth_headers(actor)
    barrier = threading.Barrier(2)
    statuses = []

    def act():
        client = app.test_client()
        barrier.wait()
        statuses.append(
            client.post(f"/api/v1/projects/{project.id}/{action}", headers=headers).status_code
        )

    threads = [threading.Thread(target=act) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 409]
    with app.extensions["db"].session_factory() as check:
        assert (
            check.scalar(
                select(func.count())
                .select_from(ProjectStateChange)
                .where(ProjectStateChange.project_id == project.id)
            )
            == 1
        )
