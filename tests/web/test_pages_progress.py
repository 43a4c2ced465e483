"""Progress reports and evidence files through the pages, as their users post and open them."""

from __future__ import annotations

import io
import re

from sqlalchemy import select

from marketplace.accounts.models import Role, User
from marketplace.funding.models import PledgeState
from marketplace.projects.models import ProjectState
from outcomes.evidence import EvidenceFile
from tests.factories import EvaluationFactory, PledgeFactory, UserFactory
from tests.integration.test_progress_evidence import PDF, PNG, running_project

FILE_LINK = re.compile(r'href="(/files/\d+)">([^<]+)</a>')


def html(response):
    return response.get_data(as_text=True)


def test_the_owner_posts_a_report_with_an_attachment_that_buyers_open(web, session):
    project = running_project()
    outcome = project.outcomes[0]
    owner = UserFactory(role=Role.ENTREPRENEUR, organisation=project.organisation)
    backer = PledgeFactory(project=project, state=PledgeState.PAID)
    session.commit()
    page = f"/projects/{project.id}"
    action = f"/projects/{project.id}/progress-reports"
    web.login(owner.email)
    assert "Post a progress report" in html(web.get(page))

    empty = web.submit(page, {"text": "  ", f"figure-{outcome.id}": "-2"}, action=action)
    assert empty.status_code == 422
    assert 'class="field has-error"><label for="text"' in html(empty)
    assert f'has-error"><label for="figure-{outcome.id}"' in html(empty)

    posted = web.submit(
        page,
        {
            "text": "Nine people in work; the second cohort starts in March.",
            f"figure-{outcome.id}": "9",
            "file": (io.BytesIO(PDF), "cohort-1.pdf"),
        },
        action=action,
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "Your progress report is published." in html(posted)
    assert "9 of 20 so far" in html(posted)
    [(link, name)] = FILE_LINK.findall(html(posted))
    assert name == "cohort-1.pdf"

    public = web.as_user(UserFactory(role=Role.BUYER).email).get(page)
    assert "Nine people in work" in html(public)
    assert "1 attachment, for the project's buyers" in html(public)
    assert "cohort-1.pdf" not in html(public)
    buyer = web.as_user(backer.user.email)
    assert FILE_LINK.findall(html(buyer.get(page))) == [(link, "cohort-1.pdf")]
    opened = buyer.get(link)
    assert opened.status_code == 200
    assert opened.data == PDF


def test_the_evaluator_uploads_evidence_on_the_evaluation_page(web, session):
    project = running_project(state=ProjectState.EVALUATING)
    evaluation = EvaluationFactory(project_id=project.id)
    evaluator = session.get(User, evaluation.evaluator_id)
    session.commit()
    page = f"/evaluations/{evaluation.id}"
    action = f"/evaluations/{evaluation.id}/evidence"
    web.login(evaluator.email)
    assert "No file yet." in html(web.get(page))

    wrong = web.submit(
        page,
        {"outcome_id": "", "file": (io.BytesIO(PNG), "payroll.pdf")},
        action=action,
        content_type="multipart/form-data",
    )
    assert wrong.status_code == 422
    assert "The content is image/png" in html(wrong)

    stored = web.submit(
        page,
        {"outcome_id": str(project.outcomes[0].id), "file": (io.BytesIO(PDF), "payroll.pdf")},
        action=action,
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "payroll.pdf is stored with its SHA-256." in html(stored)
    [(link, _name)] = FILE_LINK.findall(html(stored))
    assert web.get(link).data == PDF
    session.rollback()
    row = session.scalars(select(EvidenceFile)).one()
    assert row.sha256[:16] in html(stored)
    assert web.as_user(UserFactory(role=Role.BUYER).email).get(link).status_code == 404
