"""Nothing irreversible happens on the first click: each such form answers with its
review step (the consequence in words and figures) and the database is untouched;
only the review page's own button acts.

The actions: pledge, cancel a pledge, close funding, withdraw a project, retire
tokens, approve results. Their single-page tests (test_pages_*) check the wording
further; this file checks the rule for all six at once and a twice-clicked confirm.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from marketplace.projects.models import ProjectState
from marketplace.registry.models import Retirement
from tests.conftest import review_fields
from tests.factories import ProjectFactory
from tests.integration.funding_support import listed_project, pledge_via_api
from tests.integration.test_settlement import (  # noqa: F401 - the fixtures
    assign_evaluator,
    settled_example,
    worked_example,
)
from tests.web.test_authorisation_matrix import database_state


@dataclass
class Action:
    person: str  # email
    page: str
    action: str
    data: dict
    shows: str  # a phrase of the review step
    done: str  # a phrase of the page after confirming


@pytest.fixture
def actions(app, client, session, auth_headers, settled_example) -> dict[str, Action]:
    settled, admin, bank = settled_example.project, settled_example.admin, settled_example.bank
    owner = settled.created_by
    funding = listed_project(organisation=owner.organisation, created_by=owner)
    draft = ProjectFactory(organisation=owner.organisation, created_by=owner)
    session.commit()
    open_pledge = pledge_via_api(client, auth_headers(bank), funding.id, 85).json
    submitted = ProjectFactory(
        organisation=owner.organisation, created_by=owner, state=ProjectState.EVALUATING
    )
    session.commit()
    evaluation, evaluator = assign_evaluator(client, auth_headers, submitted, admin)
    session.rollback()
    outcome = submitted.outcomes[0].id
    session.rollback()
    evaluator_headers = auth_headers(evaluator)
    e = f"/api/v1/evaluations/{evaluation['id']}"
    result = {"outcome_id": outcome, "verified_quantity": 9, "evidence_note": "Payroll."}
    saved = client.put(f"{e}/results", headers=evaluator_headers, json={"results": [result]})
    assert saved.status_code == 200, saved.json
    assert client.post(f"{e}/submit", headers=evaluator_headers).status_code == 200
    p = f"/projects/{funding.id}"
    return {
        "pledge": Action(
            bank.email,
            p,
            f"{p}/pledge",
            {"tokens": "5", "payment_method": "pm_card_visa"},
            "5 tokens at €10.00 = €50.00.",
            "Pledged 5 tokens",
        ),
        "cancel": Action(
            bank.email,
            "/pledges",
            f"/pledges/{open_pledge['id']}/cancel",
            {},
            "Your pledge of 85 tokens (€850.00) ends; nothing is charged.",
            "The pledge is cancelled",
        ),
        "close funding": Action(
            owner.email,
            p,
            f"{p}/close-funding",
            {},
            "85 of 100 tokens are pledged: every pledge is charged now, €850.00 in all.",
            "Funding is closed",
        ),
        "withdraw": Action(
            owner.email,
            f"/projects/{draft.id}",
            f"/projects/{draft.id}/withdraw",
            {"reason": "Funded by the city instead."},
            "leaves the marketplace for good",
            "The project is withdrawn.",
        ),
        "retire": Action(
            bank.email,
            "/holdings",
            "/holdings/retire",
            {
                "project_id": str(settled.id),
                "quantity": "12",
                "beneficiary": "Gemeente Rotterdam",
                "purpose": "csr_voluntary",
                "claim": "contribution",
            },
            "12 tokens of",
            "Retired 12 tokens.",
        ),
        "approve": Action(
            admin.email,
            f"/evaluations/{evaluation['id']}",
            f"/evaluations/{evaluation['id']}/approve",
            {},
            "9 of 20 verified.",
            "Approved.",
        ),
    }


SIX = ["pledge", "cancel", "close funding", "withdraw", "retire", "approve"]


@pytest.mark.parametrize("name", SIX)
def test_the_first_click_only_shows_what_will_happen(app, web, actions, name):
    act = actions[name]
    web.login(act.person)
    before = database_state(app)

    review = web.submit(act.page, act.data, action=act.action)

    assert review.status_code == 200
    text = " ".join(review.get_data(as_text=True).split())
    assert 'class="card review"' in text and act.shows in text, text[:3000]
    assert database_state(app) == before, f"{name} changed the database before its review"

    done = web.confirm(act.page, act.data, action=act.action, follow_redirects=True)

    assert done.status_code == 200
    assert act.done in done.get_data(as_text=True)
    assert database_state(app) != before


def test_a_retirement_confirmed_twice_is_one_retirement(app, web, session, actions):
    """The review page's button clicked twice sends the same form key: one retirement."""
    act = actions["retire"]
    web.login(act.person)
    page = web.get(act.page).get_data(as_text=True)
    form_key = re.search(r'name="form_key" value="([^"]+)"', page).group(1)
    review = web.submit(act.page, {**act.data, "form_key": form_key}, action=act.action)

    fields = review_fields(review.get_data(as_text=True))
    first = web.client.post(act.action, data=dict(fields))
    second = web.client.post(act.action, data=dict(fields))

    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Retirement)) == 1
