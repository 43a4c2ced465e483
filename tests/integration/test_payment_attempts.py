"""A pledge's payment attempts: one success at Stripe per pledge, whatever the buyer clicks.

The scenario of issue 14: a buyer whose off-session charge failed presses "pay"
many times at once (and with a 3-D Secure card first). Exactly one PaymentIntent
succeeds at Stripe for the pledge, the project settles with its escrow at 0, and
reconciliation finds nothing. A success Stripe reports beyond the first is a
surplus: booked as owed to the buyer and refunded at once.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from marketplace.funding.models import Pledge, PledgeState
from marketplace.ledger.models import AccountKind, JournalEntry, LedgerAccount
from marketplace.ledger.services import account_code
from marketplace.notifications.models import Notification
from marketplace.payments.models import Payment, PaymentKind, PaymentState, Refund
from marketplace.projects.models import ProjectState
from tests.conftest import build_app
from tests.factories import ApiTokenFactory, PaymentFactory
from tests.integration.funding_support import (
    assert_books_agree_with_stripe,
    buyer,
    pledge_via_api,
    project_state,
    refunds,
    tick,
)
from tests.integration.test_settlement import (
    CLOSED,
    ENDED,
    STARTED,
    evaluate,
    listed_worked_example,
    onboard_owner,
)
from tests.integration.test_webhooks import authenticate, deliver, event

DECLINED_LATER = "pm_card_chargeCustomerFail"
THREE_D_SECURE = "pm_card_authenticationRequired"


@pytest.fixture
def failed_pledge(app, client, session, auth_headers):
    """The worked example's project closed with one buyer paid (1,400 tokens) and one
    whose saved card was declined (1,000 tokens)."""
    project, admin = listed_worked_example(session)
    assert pledge_via_api(client, auth_headers(buyer()), project.id, 1400).status_code == 201
    payer = buyer()
    token = ApiTokenFactory(user=payer).secret
    pledge = pledge_via_api(
        client, {"Authorization": f"Bearer {token}"}, project.id, 1000, DECLINED_LATER
    ).json
    onboard_owner(client, auth_headers, project)
    tick(app, CLOSED)
    session.rollback()
    assert session.get(Pledge, pledge["id"]).state is PledgeState.PAYMENT_FAILED
    return project, admin, pledge["id"], token


def pay_at_once(app, pledge_id: int, token: str, times: int, method: str = "pm_card_visa"):
    """``times`` requests to pay the pledge, released together; their (status, code)."""
    settings = app.extensions["settings"]
    # An app with a connection for each thread, as a deployment sizes its pool.
    wide = build_app(
        settings.database_url,
        settings.instance_path / "wide",
        stripe_api_base=settings.stripe_api_base,
        db_pool_size=times,
    )
    start = threading.Barrier(times)

    def one(_n: int) -> tuple[int, str]:
        client = wide.test_client()
        start.wait()
        response = client.post(
            f"/api/v1/pledges/{pledge_id}/pay",
            headers={"Authorization": f"Bearer {token}"},
            json={"payment_method": method},
        )
        return response.status_code, response.json.get("code", response.json.get("state"))

    try:
        with ThreadPoolExecutor(max_workers=times) as pool:
            return Counter(pool.map(one, range(times)))
    finally:
        wide.extensions["db"].engine.dispose()


def intents_of(app, pledge_id: int) -> list:
    """Every PaymentIntent at Stripe made for the pledge (by its metadata)."""
    client = app.extensions["stripe"].client
    return [
        intent
        for intent in client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
        if (intent.to_dict().get("metadata") or {}).get("pledge_id") == str(pledge_id)
    ]


def escrow_of(session, project_id: int) -> int:
    session.rollback()
    return session.scalar(
        select(LedgerAccount.balance_cents).where(
            LedgerAccount.code == account_code(AccountKind.ESCROW, project_id=project_id)
        )
    )


def settle(app, client, session, auth_headers, project, admin) -> None:
    tick(app, STARTED)
    tick(app, ENDED)
    session.rollback()  # the test's session writes next (SQLite: no stale snapshot)
    evaluate(client, auth_headers, project, admin, verified=14)
    tick(app, ENDED + timedelta(days=1))
    assert project_state(session, project.id).state is ProjectState.SETTLED


@pytest.mark.parametrize("times", [10, 50])
def test_simultaneous_pays_charge_the_pledge_once(
    app, client, session, auth_headers, failed_pledge, times
):
    project, admin, pledge_id, token = failed_pledge

    answers = pay_at_once(app, pledge_id, token, times)

    assert answers[(200, "paid")] == 1, answers
    refused = {(409, "payment_in_progress"), (409, "invalid_transition")}
    assert set(answers) - {(200, "paid")} <= refused
    succeeded = [i for i in intents_of(app, pledge_id) if i.status == "succeeded"]
    assert len(succeeded) == 1
    assert succeeded[0].amount == 1000 * 2953
    session.rollback()
    assert session.scalar(select(func.count()).where(Payment.pledge_id == pledge_id)) == 2
    settle(app, client, session, auth_headers, project, admin)
    assert escrow_of(session, project.id) == 0
    assert_books_agree_with_stripe(app, session, ENDED + timedelta(days=2))


def test_a_3d_secure_attempt_is_cancelled_when_the_buyer_pays_with_another_card(
    app, client, session, auth_headers, failed_pledge
):
    project, admin, pledge_id, token = failed_pledge
    headers = {"Authorization": f"Bearer {token}"}
    waiting = client.post(
        f"/api/v1/pledges/{pledge_id}/pay", headers=headers, json={"payment_method": THREE_D_SECURE}
    )
    assert waiting.status_code == 200
    assert waiting.json["next_action"]["type"] == "authenticate"

    answers = pay_at_once(app, pledge_id, token, 10)

    assert answers[(200, "paid")] == 1, answers
    statuses = Counter(i.status for i in intents_of(app, pledge_id))
    assert statuses["succeeded"] == 1
    assert statuses["canceled"] == 1
    session.rollback()
    states = Counter(
        p.state for p in session.scalars(select(Payment).where(Payment.pledge_id == pledge_id))
    )
    assert states[PaymentState.SUCCEEDED] == 1
    assert states[PaymentState.CANCELLED] == 1
    paid = session.get(Pledge, pledge_id)
    assert paid.card == "Visa •••• 4242"  # the card charged, not the declined one saved
    settle(app, client, session, auth_headers, project, admin)
    assert escrow_of(session, project.id) == 0
    assert_books_agree_with_stripe(app, session, ENDED + timedelta(days=2))


def test_a_3d_secure_payment_completed_meanwhile_is_recorded_not_charged_again(
    app, client, session, auth_headers, failed_pledge
):
    _project, _admin, pledge_id, token = failed_pledge
    headers = {"Authorization": f"Bearer {token}"}
    client.post(
        f"/api/v1/pledges/{pledge_id}/pay", headers=headers, json={"payment_method": THREE_D_SECURE}
    )
    session.rollback()
    waiting = session.scalars(
        select(Payment).where(Payment.state == PaymentState.REQUIRES_ACTION)
    ).one()
    intent = app.extensions["stripe"].client.v1.payment_intents.retrieve(waiting.payment_intent_id)
    authenticate(app, intent)  # done in the browser; Stripe's webhook has not come yet

    again = client.post(
        f"/api/v1/pledges/{pledge_id}/pay", headers=headers, json={"payment_method": "pm_card_visa"}
    )

    assert again.status_code == 409  # the pledge is paid: nothing more to pay
    assert [i.status for i in intents_of(app, pledge_id)].count("succeeded") == 1
    session.rollback()
    assert session.get(Pledge, pledge_id).state is PledgeState.PAID
    assert session.get(Payment, waiting.id).state is PaymentState.SUCCEEDED


def test_a_surplus_success_from_a_webhook_is_refunded_and_booked(
    app, client, session, auth_headers, failed_pledge
):
    _project, _admin, pledge_id, token = failed_pledge
    headers = {"Authorization": f"Bearer {token}"}
    paid = client.post(
        f"/api/v1/pledges/{pledge_id}/pay", headers=headers, json={"payment_method": "pm_card_visa"}
    )
    assert paid.json["state"] == "paid"
    session.rollback()
    pledge = session.get(Pledge, pledge_id)
    # An attempt we had given up on, which Stripe charged after all (a late success).
    lost = PaymentFactory(
        pledge=pledge,
        attempt=9,
        kind=PaymentKind.ON_SESSION,
        payment_method_id="pm_card_visa",
        state=PaymentState.FAILED,
    )
    session.commit()
    gateway = app.extensions["stripe"]
    late = gateway.charge(
        customer_id=None,
        payment_method="pm_card_visa",
        amount_cents=pledge.amount_cents,
        key=f"test-late-{lost.id}",
        off_session=False,
        transfer_group=f"project-{pledge.project_id}",
        metadata={"payment_id": str(lost.id), "pledge_id": str(pledge_id)},
    )
    assert late.status == "succeeded"

    body = {
        "id": late.payment_intent_id,
        "object": "payment_intent",
        "amount": pledge.amount_cents,
        "status": "succeeded",
        "metadata": {"payment_id": str(lost.id)},
    }
    answer = deliver(client, event("payment_intent.succeeded", body, "evt_surplus"))
    assert answer.status_code == 200
    assert "surplus" in answer.json["outcome"]
    assert (
        deliver(client, event("payment_intent.succeeded", body, "evt_surplus_2"))
        .json["outcome"]
        .startswith(f"payment {lost.id} already surplus")
    )

    session.rollback()
    assert session.get(Payment, lost.id).state is PaymentState.SURPLUS
    refund = session.scalars(select(Refund).where(Refund.payment_id == lost.id)).one()
    assert refund.reason == "surplus"
    assert refund.refund_id is not None
    assert [r.amount for r in refunds(app) if r.id == refund.refund_id] == [pledge.amount_cents]
    kinds = set(session.scalars(select(JournalEntry.kind)))
    assert {"surplus_charge", "surplus_refund"} <= kinds
    buyer_account = session.scalar(
        select(LedgerAccount.balance_cents).where(
            LedgerAccount.code
            == account_code(AccountKind.BUYER, organisation_id=pledge.organisation_id)
        )
    )
    assert buyer_account == 0  # owed nothing: the surplus went back
    assert session.get(Pledge, pledge_id).state is PledgeState.PAID
    assert session.scalar(select(func.count()).where(Notification.kind == "surplus_refunded")) == 1
    assert_books_agree_with_stripe(app, session, CLOSED + timedelta(hours=1))


def test_the_database_refuses_a_second_live_or_succeeded_attempt(session, failed_pledge):
    from sqlalchemy.exc import IntegrityError

    _project, _admin, pledge_id, _token = failed_pledge
    pledge = session.get(Pledge, pledge_id)
    PaymentFactory(pledge=pledge, attempt=5, state=PaymentState.CREATED)
    session.commit()
    with pytest.raises(IntegrityError):
        PaymentFactory(pledge=pledge, attempt=6, state=PaymentState.REQUIRES_ACTION)
    session.rollback()
    PaymentFactory(pledge=pledge, attempt=7, state=PaymentState.SUCCEEDED)
    session.commit()
    with pytest.raises(IntegrityError):
        PaymentFactory(pledge=pledge, attempt=8, state=PaymentState.SUCCEEDED)
    session.rollback()


def test_an_off_session_charge_waiting_for_the_buyer_opens_the_grace_period(
    app, client, session, auth_headers
):
    """Stripe answers requires_action for an off-session charge the bank wants confirmed:
    nobody is there, so it counts as authentication_required (the buyer pays on-session)."""
    from marketplace.funding import charges
    from marketplace.payments.gateway import PaymentResult
    from tests.integration.funding_support import AFTER_DEADLINE, listed_project

    project = listed_project()
    made = pledge_via_api(client, auth_headers(buyer()), project.id, 85).json
    session.rollback()
    pledge = session.get(Pledge, made["id"])
    attempt = charges.claim_off_session(session, pledge.id, AFTER_DEADLINE)
    waiting = PaymentResult("pi_waiting_for_the_bank", "requires_action", attempt.amount_cents)

    state = charges.record_result(session, attempt, waiting, AFTER_DEADLINE, grace_hours=72)
    session.commit()

    assert state == "failed"
    assert attempt.failure_code == "authentication_required"
    assert session.get(Pledge, pledge.id).state is PledgeState.PAYMENT_FAILED
    assert session.get(Pledge, pledge.id).grace_until == AFTER_DEADLINE + timedelta(hours=72)
