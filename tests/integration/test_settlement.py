"""From the end date to settled: evaluation, four eyes, settlement to the cent, exactly once."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import Role, User
from marketplace.core.sweeps import SweepContext, sweep_context
from marketplace.funding.models import Pledge
from marketplace.funding.sweeps import execute_refunds
from marketplace.ledger.models import AccountKind, JournalEntry, LedgerAccount
from marketplace.ledger.services import Leg, get_account, post
from marketplace.payments.gateway import StripeGateway
from marketplace.payments.models import MoneyState, Refund, Transfer
from marketplace.projects import services as projects
from marketplace.projects.models import Project, ProjectState
from marketplace.scheduler import run_sweeps
from marketplace.settlement.models import Settlement
from marketplace.settlement.sweeps import settle_projects
from tests.factories import OrganisationFactory, ProjectFactory, UserFactory
from tests.integration.funding_support import (
    assert_books_agree_with_stripe,
    buyer,
    payment_intents,
    pledge_via_api,
    project_state,
    refunds,
    tick,
    visit,
)

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CLOSED = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)  # 00:00 on 2 December in Amsterdam
STARTED = datetime(2026, 12, 9, 23, 0, tzinfo=UTC)
ENDED = datetime(2027, 12, 10, 23, 0, tzinfo=UTC)  # 00:00 the day after the end date


def listed_worked_example(session) -> tuple[Project, User]:
    """product.md's worked example valued and listed: price 2,953, threshold 2,032, 2,540
    tokens; (the project, the admin who valued it)."""
    from datetime import date

    project = ProjectFactory(
        state=ProjectState.SUBMITTED,
        funding_deadline=date(2026, 12, 1),
        start_date=date(2026, 12, 10),
        end_date=date(2027, 12, 10),
    )
    admin = UserFactory(role=Role.ADMIN)
    projects.value_project(session, admin, project, overrides=[], premium_rate=None, now=NOW)
    # The figures of the worked example (the valuation's own token count differs).
    project.tokens_total, project.token_price_cents, project.threshold_tokens = 2540, 2953, 2032
    projects.list_for_funding(session, admin, project, now=NOW, today=NOW.date())
    session.commit()
    return project, admin


def onboard_owner(client, auth_headers, project) -> None:
    """The owner's payout account, onboarded at (the development) Stripe."""
    owner = auth_headers(project.created_by)
    link = client.post(
        "/api/v1/payouts/account", headers=owner, json={"return_url": "http://localhost/payouts"}
    ).json["onboarding_url"]
    visit(link)
    client.get("/api/v1/payouts/account", headers=owner)


@pytest.fixture
def worked_example(app, client, session, auth_headers, clock):
    """product.md's worked example: two buyers pay 1,000 and 1,400 tokens (S = 2,400);
    the project runs and reaches its end date."""
    project, admin = listed_worked_example(session)
    for tokens in (1000, 1400):
        assert pledge_via_api(client, auth_headers(buyer()), project.id, tokens).status_code == 201
    onboard_owner(client, auth_headers, project)
    tick(app, CLOSED)
    tick(app, STARTED)
    tick(app, ENDED)
    assert project_state(session, project.id).state is ProjectState.EVALUATING
    return project, admin


def assign_evaluator(client, auth_headers, project, admin) -> tuple[dict, User]:
    """The panel assigns an evaluator of an independent organisation: (evaluation, evaluator)."""
    evaluator = UserFactory(role=Role.EVALUATOR, organisation=OrganisationFactory())
    evaluation = client.post(
        f"/api/v1/projects/{project.id}/evaluator",
        headers=auth_headers(admin),
        json={"evaluator_id": evaluator.id},
    )
    assert evaluation.status_code == 200, evaluation.json
    declared = client.post(
        f"/api/v1/evaluations/{evaluation.json['id']}/declaration",
        headers=auth_headers(evaluator),
        json={"text": "I have no ties to the project, its organisation or its buyers."},
    )
    assert declared.status_code == 200, declared.json
    return declared.json, evaluator


def evaluate(client, auth_headers, project, admin, verified: int, met_grade: str | None = None):
    evaluation, evaluator = assign_evaluator(client, auth_headers, project, admin)
    admin_headers = auth_headers(admin)
    evaluation_id = evaluation["id"]
    mine = auth_headers(evaluator)
    outcome = project.outcomes[0]
    recorded = client.put(
        f"/api/v1/evaluations/{evaluation_id}/results",
        headers=mine,
        json={
            "results": [
                {
                    "outcome_id": outcome.id,
                    "verified_quantity": verified,
                    "evidence_note": "Payroll records checked against UWV data.",
                    **({"met_grade": met_grade} if met_grade else {}),
                }
            ]
        },
    )
    assert recorded.status_code == 200, recorded.json
    assert (
        client.post(f"/api/v1/evaluations/{evaluation_id}/submit", headers=mine).json["state"]
        == "submitted"
    )
    approved = client.post(f"/api/v1/evaluations/{evaluation_id}/approve", headers=admin_headers)
    assert approved.json["state"] == "approved"
    return evaluation_id, evaluator


@dataclass(frozen=True)
class Settled:
    """The worked example after its settlement."""

    project: Project
    admin: User
    bank: User  # the first buyer: 1,000 tokens pledged, 700 minted
    evaluation_id: int
    evaluator: User


@pytest.fixture
def settled_example(app, client, session, auth_headers, worked_example) -> Settled:
    """The worked example evaluated (14 of 20 people: 70% of the value) and settled by
    the scheduler the day after its end."""
    project, admin = worked_example
    evaluation_id, evaluator = evaluate(client, auth_headers, project, admin, verified=14)
    tick(app, ENDED + timedelta(days=1))
    session.rollback()
    bank = session.scalars(select(Pledge).order_by(Pledge.id)).first().user
    return Settled(project, admin, bank, evaluation_id, evaluator)


def retire(client, headers: dict, project_id: int, quantity: int, key: str, **claim):
    """Retire tokens over the API (a voluntary CSR contribution unless told otherwise)."""
    body = {
        "project_id": project_id,
        "quantity": quantity,
        "beneficiary": "Gemeente Rotterdam",
        "purpose": "csr_voluntary",
        "claim": "contribution",
        **claim,
    }
    return client.post(
        "/api/v1/retirements", headers={**headers, "Idempotency-Key": key}, json=body
    )


def test_the_worked_example_settles_to_the_cent(app, client, session, auth_headers, worked_example):
    project, admin = worked_example
    evaluate(client, auth_headers, project, admin, verified=14)  # 14 of 20: 70% of the value

    summary = tick(app, ENDED + timedelta(days=1))

    assert summary["settle_projects"] == "computed 1 settlements"
    assert summary["finish_settlements"] == "settled 1 projects"
    assert project_state(session, project.id).state is ProjectState.SETTLED
    body = client.get(
        f"/api/v1/projects/{project.id}/settlement", headers=auth_headers(project.created_by)
    ).json
    assert body["state"] == "settled"
    assert body["v_verified_cents"] * 10 == pytest.approx(body["v_target_cents"] * 7, abs=10)
    assert (
        body["raised_cents"],
        body["cost_tranche_cents"],
        body["tokens_minted"],
        body["premium_payout_cents"],
        body["refund_total_cents"],
        body["fees_cents"],
    ) == (7_087_200, 6_000_496, 1680, 760_692, 326_012, 300_025 + 38_035)
    assert [(b["tokens_paid"], b["tokens_minted"], b["refund_cents"]) for b in body["buyers"]] == [
        (1000, 665, 135_838),
        (1400, 931, 190_174),
    ]
    assert body["buffer_tokens"] == body["tokens_buffer"] == 84  # floor(1,680 x 5%), product.md
    # social value per euro, verified: V_verified / (raised - refunds) = / 6,761,188
    shown = client.get(f"/api/v1/projects/{project.id}").json
    per_euro = Decimal(body["v_verified_cents"]) / Decimal(7_087_200 - 326_012)
    assert shown["value_per_euro_basis"] == "verified"
    assert Decimal(shown["value_per_euro"]) == per_euro.quantize(Decimal("0.0001"), ROUND_HALF_EVEN)

    # At Stripe: charges == transfers + fees + refunds, to the cent.
    gateway = app.extensions["stripe"].client
    charged = sum(i.amount for i in payment_intents(app) if i.status == "succeeded")
    transferred = sum(t.amount for t in gateway.v1.transfers.list(params={"limit": 100}).data)
    refunded = sum(r.amount for r in refunds(app))
    session.rollback()
    fees = session.scalar(
        select(LedgerAccount.balance_cents).where(LedgerAccount.code == "platform:fees")
    )
    assert (charged, transferred, fees, refunded) == (
        7_087_200,
        5_700_471 + 722_657,
        338_060,
        326_012,
    )
    assert charged == transferred + fees + refunded
    escrow = session.scalar(
        select(LedgerAccount.balance_cents).where(
            LedgerAccount.code == f"escrow:project:{project.id}"
        )
    )
    assert escrow == 0
    assert_books_agree_with_stripe(app, session, ENDED)


def test_settling_twice_and_in_two_runs_moves_money_once(
    app, client, session, auth_headers, worked_example
):
    project, admin = worked_example
    evaluate(client, auth_headers, project, admin, verified=14)
    ctx = sweep_context(app)

    first = settle_projects(ctx, ENDED)
    second = settle_projects(ctx, ENDED)
    tick(app, ENDED + timedelta(days=1))
    tick(app, ENDED + timedelta(days=2))

    assert (first, second) == ("computed 1 settlements", "computed 0 settlements")
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Settlement)) == 1
    assert session.scalar(select(func.count()).select_from(Refund)) == 2
    assert session.scalar(select(func.count()).select_from(Transfer)) == 2
    assert len(refunds(app)) == 2
    assert_books_agree_with_stripe(app, session, ENDED)


def test_two_schedulers_at_once_settle_once(app, client, session, auth_headers, worked_example):
    project, admin = worked_example
    evaluate(client, auth_headers, project, admin, verified=14)
    ctx = sweep_context(app)
    start = threading.Barrier(2)
    failures = []

    def scheduler() -> None:
        start.wait()
        failures.extend(r for r in run_sweeps(ctx, ENDED) if not r.ok)

    both = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in both:
        thread.start()
    for thread in both:
        thread.join()
    tick(app, ENDED + timedelta(minutes=1))

    assert failures == []
    assert project_state(session, project.id).state is ProjectState.SETTLED
    assert sorted(r.amount for r in refunds(app)) == [135_838, 190_174]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Settlement)) == 1
    assert (
        session.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.reference.like("refund:%"))
        )
        == 2
    )
    assert_books_agree_with_stripe(app, session, ENDED)


def test_a_refund_that_cannot_be_booked_does_not_hold_up_the_others(
    app, client, session, auth_headers, worked_example
):
    project, admin = worked_example
    evaluate(client, auth_headers, project, admin, verified=14)
    ctx = sweep_context(app)
    settle_projects(ctx, ENDED)
    session.rollback()
    first, second = session.scalars(select(Refund).order_by(Refund.id)).all()
    # The first refund's journal reference is taken, with other amounts.
    post(
        session,
        reference=f"refund:{first.id}",
        kind="refund",
        now=ENDED,
        legs=[
            Leg(
                debit=get_account(session, AccountKind.STRIPE_CLEARING),
                credit=get_account(session, AccountKind.PLATFORM_FEES),
                amount_cents=1,
            )
        ],
    )
    session.commit()

    summary = execute_refunds(ctx, ENDED)

    assert summary == "refunded 1 payments, 1 left for the next run"
    session.rollback()
    assert {r.id: r.state for r in session.scalars(select(Refund))} == {
        first.id: MoneyState.CREATED,
        second.id: MoneyState.SUCCEEDED,
    }


def test_an_evaluator_with_a_conflict_of_interest_cannot_be_assigned(
    app, client, session, auth_headers, worked_example
):
    project, admin = worked_example
    headers = auth_headers(admin)
    insider = UserFactory(role=Role.EVALUATOR, organisation=project.organisation)
    session.rollback()
    from marketplace.funding.models import Pledge

    a_buyer_org = session.scalars(select(Pledge.organisation_id)).first()
    from marketplace.accounts.models import Organisation

    buyer_side = UserFactory(
        role=Role.EVALUATOR, organisation=session.get(Organisation, a_buyer_org)
    )

    for evaluator in (insider, buyer_side):
        response = client.post(
            f"/api/v1/projects/{project.id}/evaluator",
            headers=headers,
            json={"evaluator_id": evaluator.id},
        )
        assert response.status_code == 409
        assert response.json["code"] == "conflict_of_interest"
    not_an_evaluator = UserFactory(role=Role.BUYER)
    response = client.post(
        f"/api/v1/projects/{project.id}/evaluator",
        headers=headers,
        json={"evaluator_id": not_an_evaluator.id},
    )
    assert response.status_code == 422
    assert "evaluator_id" in response.json["errors"]


def test_the_evaluator_cannot_approve_and_an_admin_who_evaluated_cannot_either(
    app, client, session, auth_headers, worked_example
):
    project, admin = worked_example
    evaluation, evaluator = assign_evaluator(client, auth_headers, project, admin)
    mine = auth_headers(evaluator)
    client.put(
        f"/api/v1/evaluations/{evaluation['id']}/results",
        headers=mine,
        json={
            "results": [
                {
                    "outcome_id": project.outcomes[0].id,
                    "verified_quantity": 20,
                    "evidence_note": "All twenty in work after a year.",
                }
            ]
        },
    )
    client.post(f"/api/v1/evaluations/{evaluation['id']}/submit", headers=mine)

    assert (
        client.post(f"/api/v1/evaluations/{evaluation['id']}/approve", headers=mine).status_code
        == 403
    )
    returned = client.post(
        f"/api/v1/evaluations/{evaluation['id']}/return",
        headers=auth_headers(admin),
        json={"reason": "Attach the payroll."},
    )
    assert returned.json["state"] == "returned"
    assert returned.json["return_reason"] == "Attach the payroll."


def test_results_name_the_projects_own_outcomes(app, client, session, auth_headers, worked_example):
    project, admin = worked_example
    evaluation, evaluator = assign_evaluator(client, auth_headers, project, admin)
    mine = auth_headers(evaluator)

    for result, field in (
        (
            {"outcome_id": 999_999, "verified_quantity": 1, "evidence_note": "x"},
            "results.0.outcome_id",
        ),
        (
            {"outcome_id": project.outcomes[0].id, "verified_quantity": -1, "evidence_note": "x"},
            "results.0.verified_quantity",
        ),
        (
            {"outcome_id": project.outcomes[0].id, "verified_quantity": 3, "evidence_note": "  "},
            "results.0.evidence_note",
        ),
    ):
        response = client.put(
            f"/api/v1/evaluations/{evaluation['id']}/results",
            headers=mine,
            json={"results": [result]},
        )
        assert response.status_code == 422, result
        assert field in response.json["errors"]
    empty = client.post(f"/api/v1/evaluations/{evaluation['id']}/submit", headers=mine)
    assert empty.status_code == 422
    other = auth_headers(UserFactory(role=Role.EVALUATOR, organisation=OrganisationFactory()))
    assert client.get(f"/api/v1/evaluations/{evaluation['id']}", headers=other).status_code == 404


def test_results_may_be_saved_again_before_submission(
    app, client, session, auth_headers, worked_example
):
    project, admin = worked_example
    evaluation, evaluator = assign_evaluator(client, auth_headers, project, admin)
    mine = auth_headers(evaluator)
    path = f"/api/v1/evaluations/{evaluation['id']}/results"
    outcome = project.outcomes[0].id

    for quantity, note in ((12, "First count."), (14, "Recounted against UWV data.")):
        saved = client.put(
            path,
            headers=mine,
            json={
                "results": [
                    {"outcome_id": outcome, "verified_quantity": quantity, "evidence_note": note}
                ]
            },
        )
        assert saved.status_code == 200, saved.json

    assert saved.json["results"] == [
        {
            "outcome_id": outcome,
            "verified_quantity": 14,
            "met_grade": "C",
            "evidence_note": "Recounted against UWV data.",
        }
    ]


def test_the_settlement_is_private_to_the_owner_admins_and_buyers(
    app, client, session, auth_headers, worked_example
):
    project, admin = worked_example
    evaluate(client, auth_headers, project, admin, verified=20)
    tick(app, ENDED + timedelta(days=1))
    path = f"/api/v1/projects/{project.id}/settlement"

    assert client.get(path, headers=auth_headers(admin)).status_code == 200
    assert client.get(path, headers=auth_headers(buyer())).status_code == 404
    assert client.get(path).status_code == 401


class ProcessDied(BaseException):
    """Stands for the settlement process being killed: nothing after it runs."""


class DiesAfterCall(StripeGateway):
    """The real gateway in a process killed right after its n-th refund or transfer."""

    def __init__(self, *args, die_after: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.die_after = 0, die_after

    def _counted(self, result):
        self.calls += 1
        if self.calls == self.die_after:
            raise ProcessDied
        return result

    def refund(self, **kwargs):
        return self._counted(super().refund(**kwargs))

    def transfer(self, **kwargs):
        return self._counted(super().transfer(**kwargs))


@pytest.mark.parametrize("die_after", [1, 2, 3])
def test_a_settlement_killed_after_any_stripe_call_finishes_exactly_once(
    app, client, session, auth_headers, worked_example, die_after
):
    project, admin = worked_example
    evaluate(client, auth_headers, project, admin, verified=14)
    settings = app.extensions["settings"]
    dying = DiesAfterCall(
        settings.stripe_api_key, settings.stripe_api_base, settings.currency, die_after=die_after
    )
    with pytest.raises(ProcessDied):
        run_sweeps(SweepContext(app.extensions["db"], dying, settings), ENDED)

    tick(app, ENDED + timedelta(minutes=1))  # the scheduler runs again
    tick(app, ENDED + timedelta(minutes=2))

    # Exactly what the uninterrupted run of the worked example leaves behind.
    assert project_state(session, project.id).state is ProjectState.SETTLED
    assert sorted(r.amount for r in refunds(app)) == [135_838, 190_174]
    gateway = app.extensions["stripe"].client
    assert sorted(t.amount for t in gateway.v1.transfers.list(params={"limit": 100}).data) == [
        722_657,
        5_700_471,
    ]
    session.rollback()
    assert [s.state.value for s in session.scalars(select(Refund))] == ["succeeded"] * 2
    assert session.scalar(select(func.count()).select_from(Settlement)) == 1
    assert_books_agree_with_stripe(app, session, ENDED)
