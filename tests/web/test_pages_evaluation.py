"""The evaluation pages as the panel and the evaluator use them, and the settlement page."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from marketplace.accounts.models import Role
from marketplace.funding.models import Pledge
from marketplace.projects.models import ProjectState
from outcomes.evaluation import Evaluation
from tests.factories import OrganisationFactory, UserFactory
from tests.integration.funding_support import project_state, tick
from tests.integration.test_settlement import ENDED, assign_evaluator, worked_example  # noqa: F401


def html(response):
    return response.get_data(as_text=True)


def test_assign_record_submit_approve_and_see_the_settlement(app, web, session, worked_example):
    project, admin = worked_example
    evaluator = UserFactory(
        role=Role.EVALUATOR, organisation=OrganisationFactory(), name="Dr. Noor Bakker"
    )
    web.login(admin.email)
    queue = html(web.client.get("/evaluations"))
    assert project.title in queue
    assert "Dr. Noor Bakker" in queue
    web.submit(
        "/evaluations",
        {"evaluator_id": str(evaluator.id)},
        action=f"/projects/{project.id}/evaluator",
    )
    session.rollback()
    evaluation = session.scalars(select(Evaluation)).one()
    commitment = project.outcomes[0].id

    web = web.as_user(evaluator.email)
    missing = web.submit(
        f"/evaluations/{evaluation.id}",
        {f"verified-{commitment}": "14", f"note-{commitment}": "", "action": "submit"},
        action=f"/evaluations/{evaluation.id}/results",
    )
    assert missing.status_code == 422
    assert f'id="note-{commitment}"' in html(missing)
    assert "field-error" in html(missing)
    done = web.submit(
        f"/evaluations/{evaluation.id}",
        {f"verified-{commitment}": "14", f"note-{commitment}": "UWV records.", "action": "submit"},
        action=f"/evaluations/{evaluation.id}/results",
        follow_redirects=True,
    )
    assert "Submitted for approval" in html(done)

    web = web.as_user(admin.email)
    review = web.submit(
        f"/evaluations/{evaluation.id}", {}, action=f"/evaluations/{evaluation.id}/approve"
    )
    assert "14 of 20 verified." in " ".join(html(review).split())
    approved = web.confirm(
        f"/evaluations/{evaluation.id}",
        {},
        action=f"/evaluations/{evaluation.id}/approve",
        follow_redirects=True,
    )
    assert "Approved" in html(approved)
    tick(app, ENDED + timedelta(days=1))
    assert project_state(session, project.id).state is ProjectState.SETTLED

    page = html(web.client.get(f"/projects/{project.id}/settlement"))
    assert "€70,872.00" in page  # raised
    assert "€3,260.12" in page  # refunded
    assert "1,680" in page  # minted

    session.rollback()
    buyer_email = session.scalars(select(Pledge).order_by(Pledge.id)).first().user.email
    session.rollback()  # end the read before the factories write
    assert web.as_user(buyer_email).get(f"/projects/{project.id}/settlement").status_code == 200
    stranger = web.as_user(UserFactory().email)
    assert stranger.get(f"/projects/{project.id}/settlement").status_code == 404


def test_the_evaluator_cannot_approve_from_the_page(
    app, web, session, auth_headers, client, worked_example
):
    project, admin = worked_example
    evaluation, evaluator = assign_evaluator(client, auth_headers, project, admin)
    web.login(evaluator.email)

    response = web.submit(
        f"/evaluations/{evaluation['id']}", {}, action=f"/evaluations/{evaluation['id']}/approve"
    )

    assert response.status_code == 403
