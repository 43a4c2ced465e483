"""Guards that must hold on their own, each tested where a mutant once slipped through
(issue 23): every request here is one that would succeed but for the guard."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import Role
from marketplace.funding.models import Pledge
from marketplace.projects.models import ProjectState
from outcomes import evaluation as domain
from outcomes.errors import Forbidden
from tests.factories import OrganisationFactory, UserFactory
from tests.integration.funding_support import (
    AFTER_DEADLINE,
    buyer,
    listed_project,
    pledge_via_api,
    project_state,
)
from tests.integration.test_settlement import (  # noqa: F401 - fixtures
    assign_evaluator,
    worked_example,
)

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_only_the_owner_closes_funding_even_with_the_threshold_met(client, session, auth_headers):
    project = listed_project()
    assert pledge_via_api(client, auth_headers(buyer()), project.id, 85).status_code == 201
    stranger = UserFactory(role=Role.ENTREPRENEUR, organisation=OrganisationFactory())

    refused = client.post(
        f"/api/v1/projects/{project.id}/close-funding", headers=auth_headers(stranger)
    )

    assert refused.status_code in (403, 404)
    assert project_state(session, project.id).state is ProjectState.FUNDING
    owner = client.post(
        f"/api/v1/projects/{project.id}/close-funding", headers=auth_headers(project.created_by)
    )
    assert owner.status_code == 200  # the same request, by the owner, succeeds


def test_the_domain_refuses_an_approval_by_the_evaluator_itself(
    client, session, auth_headers, worked_example
):
    project, admin = worked_example
    evaluation, evaluator = assign_evaluator(client, auth_headers, project, admin)
    outcome = project.outcomes[0]
    mine = auth_headers(evaluator)
    client.put(
        f"/api/v1/evaluations/{evaluation['id']}/results",
        headers=mine,
        json={
            "results": [
                {"outcome_id": outcome.id, "verified_quantity": 3, "evidence_note": "Seen."}
            ]
        },
    )
    assert (
        client.post(f"/api/v1/evaluations/{evaluation['id']}/submit", headers=mine).status_code
        == 200
    )
    session.rollback()
    submitted = session.get(domain.Evaluation, evaluation["id"])

    # Below every role check: the domain itself says no to the evaluator's own approval.
    with pytest.raises(Forbidden):
        domain.approve(session, submitted, admin_id=evaluator.id, now=NOW)
    session.rollback()
    approved = domain.approve(session, submitted, admin_id=admin.id, now=NOW)
    assert approved.state is domain.EvaluationState.APPROVED


def test_a_pledge_key_replays_its_answer_even_after_funding_closed(
    app, client, session, auth_headers
):
    """The stored answer comes back for the same key and body, before anything is checked
    again: funding has closed since, yet the replay is the first 201, not a 409."""
    from tests.integration.funding_support import tick

    project = listed_project()
    headers = auth_headers(buyer())
    first = pledge_via_api(client, headers, project.id, 85, key="pledge-once")
    tick(app, AFTER_DEADLINE)  # funding closes, the pledge is charged

    again = pledge_via_api(client, headers, project.id, 85, key="pledge-once")

    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Pledge)) == 1


def test_markup_in_a_summary_is_shown_as_text(client, session, auth_headers):
    project = listed_project(summary="<script>alert(1)</script><b>bold</b> & more")

    page = client.get(f"/projects/{project.id}").get_data(as_text=True)

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt; &amp; more" in page
