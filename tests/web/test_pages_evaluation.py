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
    locked = web.submit(
        f"/evaluations/{evaluation.id}",
        {f"verified-{commitment}": "14", f"note-{commitment}": "UWV.", "action": "save"},
        action=f"/evaluations/{evaluation.id}/results",
    )
    assert locked.status_code == 409  # no result before the declaration
    assert "Sign the conflict-of-interest declaration" in html(locked)
    unticked = web.submit(
        f"/evaluations/{evaluation.id}",
        {"interests": ""},
        action=f"/evaluations/{evaluation.id}/declaration",
    )
    assert unticked.status_code == 422
    signed = web.submit(
        f"/evaluations/{evaluation.id}",
        {"confirm": "yes", "interests": "I reviewed a sister project in 2024."},
        action=f"/evaluations/{evaluation.id}/declaration",
        follow_redirects=True,
    )
    assert "Declaration signed." in html(signed)
    session.rollback()
    declared = session.get(Evaluation, evaluation.id)
    assert declared.declared_at is not None
    assert declared.declaration.endswith("Interests declared: I reviewed a sister project in 2024.")
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


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def test_uploading_evidence_keeps_what_the_evaluator_typed(
    app, web, session, auth_headers, client, worked_example
):
    """Issue 16: typed quantities and notes were lost when a file was uploaded."""
    import io

    from outcomes.evidence import EvidenceFile

    project, admin = worked_example
    evaluation, evaluator = assign_evaluator(client, auth_headers, project, admin)
    commitment = project.outcomes[0].id
    web.login(evaluator.email)
    page = f"/evaluations/{evaluation['id']}"

    # Complete results and a file: both kept, the results saved.
    complete = web.submit(
        page,
        {
            f"verified-{commitment}": "14",
            f"note-{commitment}": "Payroll records, UWV extract.",
            "action": "upload",
            "file": (io.BytesIO(PDF), "uwv.pdf"),
        },
        action=f"{page}/results",
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert complete.status_code == 200
    shown = html(complete)
    assert "uwv.pdf is stored with its SHA-256." in shown
    assert 'value="14"' in shown and "Payroll records, UWV extract." in shown
    session.rollback()
    stored = session.get(Evaluation, evaluation["id"])
    assert [r.verified_quantity for r in stored.results] == [14]

    # Half-typed results and a file: the file is kept, the typing stays on the page.
    half = web.submit(
        page,
        {
            f"verified-{commitment}": "15",
            f"note-{commitment}": "",
            "action": "upload",
            "file": (io.BytesIO(PDF), "second.pdf"),
        },
        action=f"{page}/results",
        content_type="multipart/form-data",
    )
    assert half.status_code == 200
    assert 'value="15"' in html(half)
    session.rollback()
    names = session.scalars(select(EvidenceFile.filename).order_by(EvidenceFile.id)).all()
    assert names == ["uwv.pdf", "second.pdf"]
    assert [r.verified_quantity for r in session.get(Evaluation, evaluation["id"]).results] == [14]

    # Upload with no file: asked for one, nothing lost.
    none = web.submit(
        page,
        {f"verified-{commitment}": "16", "action": "upload"},
        action=f"{page}/results",
        content_type="multipart/form-data",
    )
    assert none.status_code == 422
    assert "Choose a file." in html(none) and 'value="16"' in html(none)
