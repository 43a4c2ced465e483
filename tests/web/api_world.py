"""A small marketplace for the API fuzzer: real objects in every state an operation
acts on, the people entitled to act, and for each operation the request its rightful
person would send (``World.rightful``).

Built per test from the worked example settled by the scheduler (test_settlement's
fixtures), then the rest with factories and the API: drafts, submitted and valued
projects, one in funding with live pledges, a pledge whose card failed, a running
project with a report, and evaluations assigned, with results and submitted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from flask import Flask
from sqlalchemy import select

from marketplace.accounts import profile
from marketplace.accounts.models import LinkPurpose, Role, User
from marketplace.disputes import services as disputes
from marketplace.funding.models import Pledge
from marketplace.obligations import services as obligations
from marketplace.projects.models import Project, ProjectState
from marketplace.receipts.models import Receipt
from tests.factories import (
    DEFAULT_PASSWORD,
    AccreditationFactory,
    ApiTokenFactory,
    OrganisationFactory,
    ProjectFactory,
    UserFactory,
)
from tests.integration.funding_support import listed_project, pledge_via_api, tick
from tests.integration.test_progress_evidence import PDF, running_project, upload
from tests.integration.test_settlement import CLOSED, ENDED, Settled
from tests.support.obligations import accepted_obligation as accepted
from tests.support.obligations import obligation
from tests.web.test_api_accounts import registration
from tests.web.test_api_catalogue import NEW_TYPE, WORKED
from tests.web.test_api_projects import body as project_body

DECLINED_LATER = "pm_card_chargeCustomerFail"
LATER = {  # a project whose funding is still open when the settled example is done
    "funding_deadline": date(2027, 1, 15),
    "start_date": date(2027, 2, 1),
    "end_date": date(2028, 2, 1),
}


@dataclass
class Rightful:
    person: str
    path_parameters: dict[str, Any] = field(default_factory=dict)
    body: Any = None  # None: the generated body stands
    media_type: str | None = None
    # Run once before the operation's requests: a state the rest of the world must not
    # be in (an open dispute freezes the project that other operations retire from).
    prepare: Callable[[], None] | None = None


@dataclass
class World:
    headers: dict[str, dict[str, str]]  # person -> Authorization header ({} anonymous)
    ids: dict[str, list[Any]]  # path parameter -> every real value in the world
    rightful: dict[tuple[str, str], Rightful]


DECLARATION = {"text": "I have no ties to the project, its organisation or its buyers."}
ACCREDITATION = {
    "body": "Stichting Maatschappelijke Evaluatie",
    "reference": "SME-2026-0042",
    "themes": ["work", "youth"],
    "valid_from": "2026-01-01",
    "valid_until": "2028-12-31",
}


def _ok(response, *codes: int):
    assert response.status_code in (codes or (200, 201)), response.get_data(as_text=True)
    return response.json


def build_world(app: Flask, client, session, auth_headers, settled: Settled) -> World:
    project, admin, bank = settled.project, settled.admin, settled.bank
    owner = project.created_by
    owner.is_owner = True  # keeps the organisation's legal details
    organisation = project.organisation
    evaluator = session.get(User, settled.evaluator.id)
    second_evaluator = UserFactory(role=Role.EVALUATOR, organisation=OrganisationFactory())
    other_buyer = UserFactory(role=Role.BUYER, organisation=OrganisationFactory())
    stranger = UserFactory(role=Role.ENTREPRENEUR, organisation=OrganisationFactory())
    contracting = OrganisationFactory(name="Gemeente Schiedam", sroi_factor=Decimal(1))
    authority = UserFactory(role=Role.AUTHORITY, organisation=contracting)
    session.commit()
    people = {
        "admin": admin,
        "owner": owner,
        "bank": bank,
        "other_buyer": other_buyer,
        "evaluator": evaluator,
        "second_evaluator": second_evaluator,
        "stranger": stranger,
        "authority": authority,
    }
    headers = {"anonymous": {}} | {name: auth_headers(user) for name, user in people.items()}
    newcomer = UserFactory(
        role=Role.BUYER, organisation=OrganisationFactory(), email_verified_at=None
    )
    session.flush()
    _link, verification = profile.issue_link(
        session, LinkPurpose.VERIFY_EMAIL, newcomer.email, now=newcomer.created_at, user=newcomer
    )
    session.commit()
    h = headers
    mine = {"organisation": organisation, "created_by": owner}

    retirement = _ok(
        client.post(
            "/api/v1/retirements",
            headers={**h["bank"], "Idempotency-Key": "world-retirement"},
            json={
                "project_id": project.id,
                "quantity": 3,
                "beneficiary": "Gemeente Rotterdam",
                "purpose": "csr_voluntary",
                "claim": "contribution",
            },
        )
    )

    # funding rounds: one to edit and one to close
    def open_round(name: str) -> int:
        today = date.today()
        body = {
            "name": name,
            "submissions_open": today.isoformat(),
            "submissions_close": (today + timedelta(days=30)).isoformat(),
            "funding_deadline": (today + timedelta(days=60)).isoformat(),
        }
        return _ok(client.post("/api/v1/rounds", headers=h["admin"], json=body), 201)["id"]

    round_to_edit, round_to_close = open_round("Ronde A"), open_round("Ronde B")
    world_pool = _ok(
        client.post(
            "/api/v1/pools",
            headers=h["bank"],
            json={
                "budget_cents": 10_000,
                "match_ratio": "0.5",
                "cap_per_project_cents": 5_000,
                "payment_method": "pm_card_visa",
                "themes": ["education"],
            },
        ),
        201,
    )["id"]

    # a concern to triage, and one to dispute (only for the uphold's test: a disputed
    # project's tokens cannot be retired)
    settled_at = ENDED + timedelta(days=30)
    filed = disputes.file_concern(
        session, bank, project.id, text="The evidence of two jobs is thin.", now=settled_at
    )
    disputed = disputes.file_concern(
        session, other_buyer, project.id, text="Two of the jobs ended at once.", now=settled_at
    )

    # social-return obligations: one pending, one accepted with a credit to decide
    pending_obligation = obligation(session, bank, contracting.id, "SCH-1", settled_at)
    accepted_obligation = accepted(session, bank, authority, "SCH-2", settled_at)
    session.commit()
    credited = _ok(
        client.post(
            "/api/v1/retirements",
            headers={**h["bank"], "Idempotency-Key": "world-sroi"},
            json={
                "project_id": project.id,
                "quantity": 2,
                "beneficiary": "Gemeente Schiedam",
                "purpose": "sroi_obligation",
                "claim": "contribution",
                "obligation_id": accepted_obligation,
            },
        )
    )
    credit = obligations.credit_of(session, credited["id"])
    assert credit is not None
    receipt_id = session.scalar(
        select(Receipt.id).where(Receipt.organisation_id == bank.organisation_id)
    )
    assert receipt_id is not None

    def open_the_dispute() -> None:
        disputes.open_dispute(
            session, admin, disputed.id, reason="Jobs contested by an employer.", now=settled_at
        )
        session.commit()

    accreditation = AccreditationFactory(user_id=second_evaluator.id)
    session.commit()

    # a pledge whose card fails when funding closes (the owner is onboarded already)
    failing_project = listed_project(**mine)
    session.commit()
    failed = _ok(
        pledge_via_api(client, h["bank"], failing_project.id, 80, DECLINED_LATER, key="w-fail"),
        201,
    )
    # ... and one paid by bank transfer: its invoice is there once funding has closed
    by_transfer = _ok(
        pledge_via_api(client, h["bank"], failing_project.id, 5, "bank_transfer", key="w-bt"), 201
    )
    tick(app, CLOSED)

    # funding still open: a threshold pledge (so funding may close) and one to cancel
    funding = listed_project(**mine, **LATER)
    session.commit()
    _ok(pledge_via_api(client, h["bank"], funding.id, 80, key="w-threshold"), 201)
    open_pledge = _ok(pledge_via_api(client, h["bank"], funding.id, 5, key="w-open"), 201)

    drafts = [ProjectFactory(**mine, **LATER) for _ in range(3)]
    submitted = [ProjectFactory(**mine, **LATER, state=ProjectState.SUBMITTED) for _ in range(2)]
    running = running_project(**mine)
    evaluating = [running_project(**mine, state=ProjectState.EVALUATING) for _ in range(5)]
    spare_token = ApiTokenFactory(user=owner)
    session.commit()

    valued = drafts[2]
    _ok(client.post(f"/api/v1/projects/{valued.id}/submit", headers=h["owner"]))
    _ok(client.post(f"/api/v1/projects/{valued.id}/valuation", headers=h["admin"], json={}))
    report = _ok(
        client.post(
            f"/api/v1/projects/{running.id}/progress-reports",
            headers=h["owner"],
            json={"text": "Six people started work.", "figures": []},
        ),
        201,
    )

    def assign(target: Project) -> int:
        return _ok(
            client.post(
                f"/api/v1/projects/{target.id}/evaluator",
                headers=h["admin"],
                json={"evaluator_id": evaluator.id},
            )
        )["id"]

    def results_of(target: Project) -> dict:
        session.rollback()
        outcome = session.get(Project, target.id).outcomes[0]
        return {
            "results": [
                {"outcome_id": outcome.id, "verified_quantity": 12, "evidence_note": "Payroll."}
            ]
        }

    unassigned, in_progress, to_return, to_approve, undeclared = evaluating
    undeclared_id = assign(undeclared)
    in_progress_id = assign(in_progress)
    _ok(
        client.post(
            f"/api/v1/evaluations/{in_progress_id}/declaration",
            headers=h["evaluator"],
            json=DECLARATION,
        )
    )
    _ok(
        client.put(
            f"/api/v1/evaluations/{in_progress_id}/results",
            headers=h["evaluator"],
            json=results_of(in_progress),
        )
    )
    evidence = _ok(
        upload(
            client,
            f"/api/v1/evaluations/{in_progress_id}/evidence",
            h["evaluator"],
            "payroll.pdf",
            PDF,
        ),
        201,
    )
    submitted_ids = []
    for target in (to_return, to_approve):
        evaluation_id = assign(target)
        _ok(
            client.post(
                f"/api/v1/evaluations/{evaluation_id}/declaration",
                headers=h["evaluator"],
                json=DECLARATION,
            )
        )
        _ok(
            client.put(
                f"/api/v1/evaluations/{evaluation_id}/results",
                headers=h["evaluator"],
                json=results_of(target),
            )
        )
        _ok(client.post(f"/api/v1/evaluations/{evaluation_id}/submit", headers=h["evaluator"]))
        submitted_ids.append(evaluation_id)
    session.rollback()
    failed_pledge = session.get(Pledge, failed["id"])
    assert failed_pledge.state.value == "payment_failed", failed_pledge.state
    bank_pledge = session.scalars(
        select(Pledge.id).where(Pledge.project_id == project.id, Pledge.user_id == bank.id)
    ).first()
    session.rollback()

    p = "/api/v1/projects/{project_id}"
    e = "/api/v1/evaluations/{evaluation_id}"
    new_project = project_body(
        funding_deadline="2027-01-15", start_date="2027-02-01", end_date="2028-02-01"
    )
    results = results_of(in_progress)
    multipart = "multipart/form-data"
    rightful = {
        ("DELETE", "/api/v1/auth/tokens/{token_id}"): Rightful(
            "owner", {"token_id": spare_token.id}
        ),
        ("GET", "/api/v1/audit-events"): Rightful("admin"),
        ("GET", "/api/v1/auth/tokens"): Rightful("owner"),
        ("GET", "/api/v1/evaluations"): Rightful("evaluator"),
        ("GET", e): Rightful("evaluator", {"evaluation_id": in_progress_id}),
        ("GET", f"{e}/evidence"): Rightful("evaluator", {"evaluation_id": in_progress_id}),
        ("GET", "/api/v1/files/{file_id}"): Rightful("evaluator", {"file_id": evidence["id"]}),
        ("GET", "/api/v1/holdings"): Rightful("bank"),
        ("GET", "/api/v1/registry/serials/{serial}/trail"): Rightful(
            "anonymous", {"serial": f"SOM-P{project.id:06d}-2027-0000001"}
        ),
        ("GET", "/api/v1/me"): Rightful("bank"),
        ("GET", "/api/v1/outcome-types"): Rightful("anonymous"),
        ("GET", "/api/v1/outcome-types/{code}"): Rightful(
            "anonymous", {"code": "EMP_BIJSTAND_TO_WORK"}
        ),
        ("GET", "/api/v1/payouts/account"): Rightful("owner"),
        ("GET", "/api/v1/pledges"): Rightful("bank"),
        ("GET", "/api/v1/pledges/{pledge_id}"): Rightful("bank", {"pledge_id": bank_pledge}),
        ("GET", "/api/v1/pledges/{pledge_id}/invoice.pdf"): Rightful(
            "bank", {"pledge_id": by_transfer["id"]}
        ),
        ("GET", "/api/v1/projects"): Rightful("anonymous"),
        ("GET", p): Rightful("anonymous", {"project_id": project.id}),
        ("GET", f"{p}/history"): Rightful("anonymous", {"project_id": project.id}),
        ("GET", f"{p}/progress-reports"): Rightful("anonymous", {"project_id": running.id}),
        ("GET", f"{p}/settlement"): Rightful("owner", {"project_id": project.id}),
        ("GET", "/api/v1/registry/blocks"): Rightful("anonymous"),
        ("GET", "/api/v1/registry/retirements/{retirement_id}"): Rightful(
            "anonymous", {"retirement_id": retirement["id"]}
        ),
        ("GET", "/api/v1/users"): Rightful("admin"),
        ("PATCH", p): Rightful(
            "owner", {"project_id": drafts[0].id}, {"summary": "Jobs for twenty people."}
        ),
        ("POST", "/api/v1/auth/register"): Rightful("anonymous", {}, registration()),
        ("POST", "/api/v1/auth/verify"): Rightful("anonymous", {}, {"token": verification}),
        ("POST", "/api/v1/auth/tokens"): Rightful(
            "anonymous", {}, {"email": owner.email, "password": DEFAULT_PASSWORD}
        ),
        ("POST", f"{e}/approve"): Rightful("admin", {"evaluation_id": submitted_ids[1]}),
        ("POST", f"{e}/evidence"): Rightful(
            "evaluator", {"evaluation_id": in_progress_id}, {"file": PDF}, multipart
        ),
        ("POST", f"{e}/return"): Rightful(
            "admin", {"evaluation_id": submitted_ids[0]}, {"reason": "Add the UWV data."}
        ),
        ("POST", f"{e}/submit"): Rightful("evaluator", {"evaluation_id": in_progress_id}),
        ("POST", "/api/v1/outcome-types"): Rightful("admin", {}, NEW_TYPE),
        ("POST", "/api/v1/outcome-types/{code}/retire"): Rightful(
            "admin", {"code": "YOUTH_NEET_TO_EET"}
        ),
        ("POST", "/api/v1/payouts/account"): Rightful(
            "owner", {}, {"return_url": "http://localhost/payouts"}
        ),
        ("POST", "/api/v1/pledges/{pledge_id}/cancel"): Rightful(
            "bank", {"pledge_id": open_pledge["id"]}
        ),
        ("POST", "/api/v1/pledges/{pledge_id}/pay"): Rightful(
            "bank", {"pledge_id": failed["id"]}, {"payment_method": "pm_card_visa"}
        ),
        ("POST", "/api/v1/progress-reports/{report_id}/attachments"): Rightful(
            "owner", {"report_id": report["id"]}, {"file": PDF}, multipart
        ),
        ("POST", "/api/v1/projects"): Rightful("owner", {}, new_project),
        ("POST", f"{p}/close-funding"): Rightful("owner", {"project_id": funding.id}),
        ("POST", f"{p}/evaluator"): Rightful(
            "admin", {"project_id": unassigned.id}, {"evaluator_id": second_evaluator.id}
        ),
        ("POST", f"{p}/list"): Rightful("admin", {"project_id": valued.id}),
        ("POST", f"{p}/pledges"): Rightful(
            "bank", {"project_id": funding.id}, {"tokens": 1, "payment_method": "pm_card_visa"}
        ),
        ("POST", f"{p}/progress-reports"): Rightful(
            "owner", {"project_id": running.id}, {"text": "Nine at work.", "figures": []}
        ),
        ("POST", f"{p}/reject"): Rightful(
            "admin", {"project_id": submitted[0].id}, {"reason": "Not measurable."}
        ),
        ("POST", f"{p}/submit"): Rightful("owner", {"project_id": drafts[0].id}),
        ("POST", f"{p}/valuation"): Rightful("admin", {"project_id": submitted[1].id}, {}),
        ("POST", f"{p}/withdraw"): Rightful(
            "owner", {"project_id": drafts[1].id}, {"reason": "Funded elsewhere."}
        ),
        ("POST", "/api/v1/retirements"): Rightful(
            "bank",
            {},
            {
                "project_id": project.id,
                "quantity": 2,
                "beneficiary": "Gemeente Rotterdam",
                "purpose": "csr_voluntary",
                "claim": "contribution",
            },
        ),
        ("POST", "/api/v1/valuations/preview"): Rightful("bank", {}, WORKED),
        ("POST", "/api/v1/transfers"): Rightful(
            "bank",
            {},
            {
                "project_id": project.id,
                "quantity": 2,
                "to_organisation_id": other_buyer.organisation_id,
            },
        ),
        ("PUT", f"{e}/results"): Rightful("evaluator", {"evaluation_id": in_progress_id}, results),
        ("POST", f"{e}/declaration"): Rightful(
            "evaluator", {"evaluation_id": undeclared_id}, DECLARATION
        ),
        ("GET", "/api/v1/evaluators/{evaluator_id}/accreditations"): Rightful(
            "admin", {"evaluator_id": evaluator.id}
        ),
        ("POST", "/api/v1/evaluators/{evaluator_id}/accreditations"): Rightful(
            "admin", {"evaluator_id": second_evaluator.id}, ACCREDITATION
        ),
        ("PUT", "/api/v1/accreditations/{accreditation_id}"): Rightful(
            "admin", {"accreditation_id": accreditation.id}, ACCREDITATION
        ),
        ("POST", f"{p}/concerns"): Rightful(
            "bank", {"project_id": project.id}, {"text": "The payroll records look copied."}
        ),
        ("GET", f"{p}/disputes"): Rightful("anonymous", {"project_id": project.id}),
        ("GET", "/api/v1/concerns"): Rightful("admin"),
        ("GET", "/api/v1/concerns/{concern_id}"): Rightful("bank", {"concern_id": filed.id}),
        ("POST", "/api/v1/concerns/{concern_id}/dispute"): Rightful(
            "admin", {"concern_id": filed.id}, {"reason": "The payroll records are contested."}
        ),
        ("POST", "/api/v1/concerns/{concern_id}/dismiss"): Rightful(
            "admin", {"concern_id": filed.id}, {"reason": "The records were checked again."}
        ),
        ("POST", "/api/v1/concerns/{concern_id}/uphold"): Rightful(
            "admin",
            {"concern_id": disputed.id},
            {
                "finding": "Two of the jobs ended in the first month.",
                "quantities": [{"outcome_id": project.outcomes[0].id, "verified_quantity": 12}],
            },
            prepare=open_the_dispute,
        ),
        ("GET", "/api/v1/registry/buffer"): Rightful("anonymous"),
        ("PUT", "/api/v1/organisations/{organisation_id}"): Rightful(
            "owner",
            {"organisation_id": organisation.id},
            {
                "legal_name": "Werkplaats Delfshaven B.V.",
                "registry_id": "12345678",
                "address": "Schiedamseweg 1, 3026 AA Rotterdam",
            },
        ),
        ("POST", "/api/v1/organisations/{organisation_id}/verify"): Rightful(
            "admin", {"organisation_id": organisation.id}
        ),
        ("POST", "/api/v1/concerns/{concern_id}/files"): Rightful(
            "bank", {"concern_id": filed.id}, {"file": PDF}, multipart
        ),
        ("POST", "/api/v1/obligations"): Rightful(
            "bank",
            {},
            {
                "authority_organisation_id": contracting.id,
                "contract_reference": "SCH-3",
                "contract_title": "Groenonderhoud",
                "contract_value_cents": 50_000_000,
                "percentage": "0.05",
                "due_date": "2029-06-30",
            },
        ),
        ("GET", "/api/v1/obligations"): Rightful("bank"),
        ("GET", "/api/v1/rounds"): Rightful("anonymous"),
        ("GET", "/api/v1/open-data/projects"): Rightful("anonymous"),
        ("POST", "/api/v1/pools"): Rightful(
            "bank",
            {},
            {
                "budget_cents": 100_000,
                "match_ratio": "1.0",
                "cap_per_project_cents": 50_000,
                "payment_method": "pm_card_visa",
            },
        ),
        ("GET", "/api/v1/pools/{pool_id}"): Rightful("bank", {"pool_id": world_pool}),
        ("POST", "/api/v1/rounds"): Rightful(
            "admin",
            {},
            {
                "name": "Ronde C",
                "submissions_open": date.today().isoformat(),
                "submissions_close": (date.today() + timedelta(days=10)).isoformat(),
                "funding_deadline": (date.today() + timedelta(days=40)).isoformat(),
            },
        ),
        ("GET", "/api/v1/rounds/{round_id}"): Rightful("anonymous", {"round_id": round_to_edit}),
        ("PATCH", "/api/v1/rounds/{round_id}"): Rightful(
            "admin", {"round_id": round_to_edit}, {"description": "Werk in Zuid."}
        ),
        ("POST", "/api/v1/rounds/{round_id}/close"): Rightful(
            "admin", {"round_id": round_to_close}, {}
        ),
        ("GET", "/api/v1/obligations/{obligation_id}"): Rightful(
            "bank", {"obligation_id": accepted_obligation}
        ),
        ("GET", "/api/v1/obligations/{obligation_id}/credits"): Rightful(
            "authority", {"obligation_id": accepted_obligation}
        ),
        ("POST", "/api/v1/obligations/{obligation_id}/accept"): Rightful(
            "authority", {"obligation_id": pending_obligation}, {}
        ),
        ("POST", "/api/v1/obligations/{obligation_id}/reject"): Rightful(
            "authority",
            {"obligation_id": pending_obligation},
            {"reason": "The contract has no social-return clause."},
        ),
        ("POST", "/api/v1/credits/{credit_id}/sign-off"): Rightful(
            "authority", {"credit_id": credit.id}, {}
        ),
        ("POST", "/api/v1/credits/{credit_id}/reject"): Rightful(
            "authority",
            {"credit_id": credit.id},
            {"reason": "These serials were claimed for another tender."},
        ),
        ("GET", "/api/v1/authorities"): Rightful("anonymous"),
        ("GET", "/api/v1/receipts"): Rightful("bank"),
        ("GET", "/api/v1/receipts/{receipt_id}"): Rightful("bank", {"receipt_id": receipt_id}),
        ("PUT", "/api/v1/authorities/{organisation_id}/factor"): Rightful(
            "authority", {"organisation_id": contracting.id}, {"factor": "1.1"}
        ),
    }
    all_projects = session.scalars(select(Project.id)).all()
    session.rollback()
    ids = {
        "project_id": all_projects,
        "evaluator_id": [evaluator.id, second_evaluator.id],
        "accreditation_id": [accreditation.id],
        "concern_id": [filed.id, disputed.id],
        "organisation_id": [organisation.id, other_buyer.organisation_id, contracting.id],
        "obligation_id": [pending_obligation, accepted_obligation],
        "round_id": [round_to_edit, round_to_close],
        "pool_id": [world_pool],
        "credit_id": [credit.id],
        "receipt_id": [receipt_id],
        "pledge_id": [bank_pledge, open_pledge["id"], failed["id"]],
        "evaluation_id": [settled.evaluation_id, in_progress_id, *submitted_ids],
        "file_id": [evidence["id"]],
        "report_id": [report["id"]],
        "retirement_id": [retirement["id"]],
        "token_id": [spare_token.id],
        "code": ["EMP_BIJSTAND_TO_WORK", "YOUTH_NEET_TO_EET"],
    }
    return World(headers, ids, rightful)
