"""Refusals that only authorisation can give: each request is one that would succeed.

The matrix in test_authorisation_matrix.py sends empty bodies, so a 422 or a 409
counted as "refused" there even if the guard was gone. Here a project goes its
whole way through the API (draft, submitted, valued, listed, pledged, closed,
running, evaluated, sent back, approved, settled, retired) and at each step, with
the object in the state where the step succeeds, everyone outside the step's
audience (AUDIENCE in the matrix) first sends the exact request its audience will
send, valid body and all: each must be refused (no 2xx) and change nothing. Then
the rightful person sends it and it succeeds, which shows the body was valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from marketplace.accounts.models import Role
from marketplace.funding.models import Pledge
from marketplace.projects.models import Project, ProjectState
from outcomes.evaluation import Evaluation
from tests.factories import ApiTokenFactory, OrganisationFactory, ProjectFactory, UserFactory
from tests.integration.funding_support import tick
from tests.integration.test_settlement import CLOSED, ENDED, STARTED, onboard_owner
from tests.web.test_authorisation_matrix import AUDIENCE, PEOPLE, database_state

DECLINED_LATER = "pm_card_chargeCustomerFail"


@dataclass
class Step:
    endpoint: str
    method: str
    path: str
    body: dict | None
    by: str  # the person in the audience who then succeeds


class Journey:
    """The eight people with API tokens, and a way to try one step on all of them."""

    def __init__(self, app, client, auth_headers) -> None:
        self.app, self.client = app, client
        owners = OrganisationFactory()
        self.users = {
            "admin": UserFactory(role=Role.ADMIN),
            "owner": UserFactory(role=Role.ENTREPRENEUR, organisation=owners),
            "other_entrepreneur": UserFactory(
                role=Role.ENTREPRENEUR, organisation=OrganisationFactory()
            ),
            "buyer": UserFactory(role=Role.BUYER, organisation=OrganisationFactory()),
            "other_buyer": UserFactory(role=Role.BUYER, organisation=OrganisationFactory()),
            "evaluator": UserFactory(role=Role.EVALUATOR, organisation=OrganisationFactory()),
            "other_evaluator": UserFactory(role=Role.EVALUATOR, organisation=OrganisationFactory()),
            "authority": UserFactory(
                role=Role.AUTHORITY, organisation=OrganisationFactory(sroi_factor=Decimal(1))
            ),
            "other_authority": UserFactory(
                role=Role.AUTHORITY, organisation=OrganisationFactory(sroi_factor=Decimal(1))
            ),
        }
        self.headers = {"anonymous": {}} | {
            person: auth_headers(user) for person, user in self.users.items()
        }
        self.refusals: list[tuple[str, str, int]] = []
        self.steps: set[tuple[str, str]] = set()

    def send(self, step: Step, person: str, n: int):
        headers = {**self.headers[person], "Idempotency-Key": f"{step.path}-{person}-{n}"}
        return self.client.open(step.path, method=step.method, headers=headers, json=step.body)

    def step(self, step: Step):
        """Everyone outside the audience is refused and changes nothing; then ``by``
        succeeds. Returns the successful answer."""
        endpoint, _args = self.app.url_map.bind("localhost").match(step.path, step.method)
        assert endpoint == step.endpoint, (step.path, endpoint)
        audience = AUDIENCE[(step.endpoint, step.method)]
        assert step.by in audience
        self.steps.add((step.endpoint, step.method))
        before = database_state(self.app)
        outsiders = [person for person in PEOPLE if person not in audience]
        assert outsiders, step.endpoint
        for n, person in enumerate(outsiders):
            answer = self.send(step, person, n)
            assert not 200 <= answer.status_code < 300, (step.endpoint, person, answer.json)
            assert answer.status_code < 500, (step.endpoint, person, answer.json)
            assert database_state(self.app) == before, (step.endpoint, person)
            self.refusals.append((step.endpoint, person, answer.status_code))
        answer = self.send(step, step.by, len(outsiders))
        assert 200 <= answer.status_code < 300, (step.endpoint, step.by, answer.get_data())
        return answer.json if answer.status_code != 204 else None


@pytest.fixture
def journey(app, client, auth_headers, clock):
    return Journey(app, client, auth_headers)


def draft_of(journey: Journey) -> Project:
    owner = journey.users["owner"]
    return ProjectFactory(
        organisation=owner.organisation,
        created_by=owner,
        funding_deadline=date(2026, 12, 1),
        start_date=date(2026, 12, 10),
        end_date=date(2027, 12, 10),
    )


def test_a_project_from_draft_to_retired_tokens_refuses_everyone_else_at_each_step(
    app, client, session, journey
):
    project = draft_of(journey)
    session.commit()
    p = f"/api/v1/projects/{project.id}"

    journey.step(
        Step("projects_api.ProjectItem", "PATCH", p, {"summary": "Jobs for 20 people."}, "owner")
    )
    journey.step(Step("projects_api.Submit", "POST", f"{p}/submit", None, "owner"))
    journey.step(Step("projects_api.Valuation", "POST", f"{p}/valuation", {}, "admin"))
    listed = journey.step(Step("projects_api.List", "POST", f"{p}/list", None, "admin"))
    assert listed["state"] == "funding"
    threshold = listed["threshold_tokens"]

    pledge = journey.step(
        Step(
            "funding_api.Pledges",
            "POST",
            f"{p}/pledges",
            {"tokens": threshold, "payment_method": "pm_card_visa"},
            "buyer",
        )
    )
    assert pledge["tokens"] == threshold
    onboard_owner(client, lambda user: journey.headers["owner"], project)
    closed = journey.step(
        Step("funding_api.CloseFunding", "POST", f"{p}/close-funding", None, "owner")
    )
    assert closed["state"] in ("funded", "running")
    tick(app, CLOSED)
    tick(app, STARTED)
    session.rollback()
    outcome_id = session.get(Project, project.id).outcomes[0].id

    journey.step(
        Step(
            "evaluations_api.ProgressReports",
            "POST",
            f"{p}/progress-reports",
            {"text": "Half-way: 9 people at work.", "figures": []},
            "owner",
        )
    )
    tick(app, ENDED)
    evaluation = journey.step(
        Step(
            "evaluations_api.AssignEvaluator",
            "POST",
            f"{p}/evaluator",
            {"evaluator_id": journey.users["evaluator"].id},
            "admin",
        )
    )
    e = f"/api/v1/evaluations/{evaluation['id']}"
    results = {
        "results": [
            {"outcome_id": outcome_id, "verified_quantity": 14, "evidence_note": "Payroll."}
        ]
    }
    declaration = {"text": "I have no ties to the project, its organisation or its buyers."}
    journey.step(
        Step("evaluations_api.Declaration", "POST", f"{e}/declaration", declaration, "evaluator")
    )
    journey.step(Step("evaluations_api.Results", "PUT", f"{e}/results", results, "evaluator"))
    journey.step(Step("evaluations_api.Submit", "POST", f"{e}/submit", None, "evaluator"))
    returned = journey.step(
        Step("evaluations_api.SendBack", "POST", f"{e}/return", {"reason": "Add UWV."}, "admin")
    )
    assert returned["state"] != "submitted"
    resubmitted = client.post(f"{e}/submit", headers=journey.headers["evaluator"])
    assert resubmitted.status_code == 200, resubmitted.json
    approved = journey.step(Step("evaluations_api.Approve", "POST", f"{e}/approve", None, "admin"))
    assert approved["state"] == "approved"
    session.rollback()
    assert session.get(Evaluation, evaluation["id"]).state.value == "approved"

    tick(app, ENDED + timedelta(days=1))
    retired = journey.step(
        Step(
            "registry_api.Retirements",
            "POST",
            "/api/v1/retirements",
            {
                "project_id": project.id,
                "quantity": 3,
                "beneficiary": "Gemeente Rotterdam",
                "purpose": "csr_voluntary",
                "claim": "contribution",
            },
            "buyer",
        )
    )
    assert retired["quantity"] == 3
    # every step was tried by people outside its audience, with their own refusals
    assert len(journey.steps) == 14
    assert {person for _e, person, _s in journey.refusals} == set(PEOPLE)
    assert len(journey.refusals) >= 13 * 4, len(journey.refusals)


def test_the_side_roads_refuse_everyone_else_with_a_body_that_would_succeed(
    app, client, session, journey
):
    # withdraw: the owner's draft
    draft = draft_of(journey)
    # reject: a submitted project
    submitted = draft_of(journey)
    submitted.state = ProjectState.SUBMITTED
    session.commit()
    journey.step(
        Step(
            "projects_api.Withdraw", "POST", f"/api/v1/projects/{draft.id}/withdraw", None, "owner"
        )
    )
    journey.step(
        Step(
            "projects_api.Reject",
            "POST",
            f"/api/v1/projects/{submitted.id}/reject",
            {"reason": "The outcomes cannot be measured."},
            "admin",
        )
    )

    # cancel: the buyer's pledge while funding; pay: the buyer's pledge whose card failed
    project = draft_of(journey)
    session.commit()
    p = f"/api/v1/projects/{project.id}"
    admin = journey.headers["admin"]
    for action in ("submit", "valuation", "list"):
        who = journey.headers["owner"] if action == "submit" else admin
        assert client.post(f"{p}/{action}", headers=who, json={}).status_code == 200
    session.rollback()
    threshold = session.get(Project, project.id).threshold_tokens
    buyer = journey.headers["buyer"]
    first = client.post(
        f"{p}/pledges",
        headers={**buyer, "Idempotency-Key": "first"},
        json={"tokens": 1, "payment_method": "pm_card_visa"},
    ).json
    journey.step(
        Step(
            "funding_api.CancelPledge",
            "POST",
            f"/api/v1/pledges/{first['id']}/cancel",
            None,
            "buyer",
        )
    )
    failing = client.post(
        f"{p}/pledges",
        headers={**buyer, "Idempotency-Key": "second"},
        json={"tokens": threshold, "payment_method": DECLINED_LATER},
    ).json
    onboard_owner(client, lambda user: journey.headers["owner"], project)
    tick(app, CLOSED)
    session.rollback()
    assert session.get(Pledge, failing["id"]).state.value == "payment_failed"
    paid = journey.step(
        Step(
            "funding_api.PayPledge",
            "POST",
            f"/api/v1/pledges/{failing['id']}/pay",
            {"payment_method": "pm_card_visa"},
            "buyer",
        )
    )
    assert paid["state"] == "paid"
    session.rollback()  # the test's read of the pledge ends before the factory writes

    # revoke: the owner's own token
    token = ApiTokenFactory(user=journey.users["owner"])
    session.commit()
    journey.step(
        Step("accounts_api.TokenItem", "DELETE", f"/api/v1/auth/tokens/{token.id}", None, "owner")
    )
    assert len(journey.steps) == 5
    assert session.scalars(select(Pledge.state).where(Pledge.id == first["id"])).one().value == (
        "cancelled"
    )


def test_the_obligation_road_refuses_everyone_else_with_a_body_that_would_succeed(
    client, session, journey
):
    authority = journey.users["authority"]
    contract = {
        "authority_organisation_id": authority.organisation_id,
        "contract_reference": "RTM-2027-0142",
        "contract_title": "Schoonmaak stadskantoren",
        "contract_value_cents": 120_000_000,
        "percentage": "0.05",
        "due_date": "2029-12-31",
    }
    made = journey.step(
        Step("obligations_api.Obligations", "POST", "/api/v1/obligations", contract, "buyer")
    )
    assert made["obligation_cents"] == 6_000_000
    o = f"/api/v1/obligations/{made['id']}"
    accepted = journey.step(
        Step("obligations_api.AcceptObligation", "POST", f"{o}/accept", {}, "authority")
    )
    assert accepted["state"] == "accepted"
    second = client.post(
        "/api/v1/obligations",
        headers=journey.headers["buyer"],
        json={**contract, "contract_reference": "RTM-2027-0143"},
    ).json
    rejected = journey.step(
        Step(
            "obligations_api.RejectObligation",
            "POST",
            f"/api/v1/obligations/{second['id']}/reject",
            {"reason": "The contract has no social-return clause."},
            "authority",
        )
    )
    assert rejected["state"] == "rejected"
    factor = journey.step(
        Step(
            "obligations_api.AuthorityFactor",
            "PUT",
            f"/api/v1/authorities/{authority.organisation_id}/factor",
            {"factor": "1.1"},
            "authority",
        )
    )
    assert factor["factor"] == "1.1"
    assert len(journey.steps) == 4
