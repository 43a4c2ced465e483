"""Stripe webhooks: verified on the raw body, handled once, harmless in any order."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from marketplace.funding.models import Pledge
from marketplace.payments.models import (
    ConnectedAccount,
    Payment,
    PaymentKind,
    PaymentState,
    StripeEvent,
)
from tests.factories import ConnectedAccountFactory, PaymentFactory
from tests.integration.funding_support import (
    AFTER_DEADLINE,
    assert_books_agree_with_stripe,
    buyer,
    listed_project,
    pledge_states,
    pledge_via_api,
    tick,
)

SECRET = "whsec_test_marketplace"


def signed(payload: dict, secret: str = SECRET, at: int | None = None) -> tuple[bytes, str]:
    """The body and ``Stripe-Signature`` header Stripe would send."""
    body = json.dumps(payload).encode()
    stamp = at or int(time.time())
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={stamp},v1={digest}"


def deliver(client, payload: dict, **kwargs):
    body, signature = signed(payload, **kwargs)
    return client.post(
        "/webhooks/stripe",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": signature},
    )


def event(kind: str, obj: dict, event_id: str = "evt_1") -> dict:
    return {"id": event_id, "object": "event", "type": kind, "data": {"object": obj}}


def stored_events(session) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(StripeEvent))


@pytest.mark.parametrize("signature", ["", "t=1,v1=deadbeef", "garbage"])
def test_a_bad_signature_is_400_and_writes_nothing(client, session, signature):
    body = json.dumps(event("payment_intent.succeeded", {"id": "pi_1"})).encode()
    response = client.post(
        "/webhooks/stripe",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": signature},
    )

    assert response.status_code == 400
    assert stored_events(session) == 0


def test_another_secret_is_refused(client, session):
    response = deliver(
        client, event("payment_intent.succeeded", {"id": "pi_1"}), secret="whsec_someone_else"
    )
    assert response.status_code == 400
    assert stored_events(session) == 0


def test_an_old_signature_is_refused(client, session):
    response = deliver(
        client, event("payment_intent.succeeded", {"id": "pi_1"}), at=int(time.time()) - 3600
    )
    assert response.status_code == 400


@pytest.fixture
def failed_pledge(app, client, session, auth_headers):
    """A funded project whose one pledge's off-session charge was declined."""
    project = listed_project()
    pledge_via_api(client, auth_headers(buyer()), project.id, 80)
    headers = auth_headers(buyer())
    pledge = pledge_via_api(client, headers, project.id, 5, "pm_card_chargeCustomerFail").json
    tick(app, AFTER_DEADLINE)
    return project, pledge, headers


def on_session_payment(app, client, session, failed_pledge) -> Payment:
    """The buyer pays with a card that needs 3-D Secure: the payment waits for it."""
    _project, pledge, headers = failed_pledge
    response = client.post(
        f"/api/v1/pledges/{pledge['id']}/pay",
        headers=headers,
        json={"payment_method": "pm_card_authenticationRequired"},
    )
    assert response.status_code == 200
    assert response.json["state"] == "payment_failed"
    assert response.json["next_action"]["type"] == "authenticate"
    assert response.json["next_action"]["client_secret"].startswith("pi_")
    session.rollback()
    return session.scalars(select(Payment).where(Payment.attempt == 2)).one()


def test_succeeded_marks_the_pledge_paid_once(app, client, session, failed_pledge):
    payment = on_session_payment(app, client, session, failed_pledge)
    project, _pledge, _headers = failed_pledge
    # The buyer authenticates at the bank (what Stripe.js does on the page).
    intent = app.extensions["stripe"].client.v1.payment_intents.retrieve(payment.payment_intent_id)
    authenticate(app, intent)
    body = event(
        "payment_intent.succeeded",
        {
            "id": payment.payment_intent_id,
            "object": "payment_intent",
            "amount": 5000,
            "status": "succeeded",
            "metadata": {"payment_id": str(payment.id)},
        },
    )

    first = deliver(client, body)
    again = deliver(client, body)

    assert first.status_code == again.status_code == 200
    assert first.json["outcome"] == f"payment {payment.id} succeeded"
    assert again.json["outcome"] == "duplicate delivery: ignored"
    assert pledge_states(session, project.id) == ["paid", "paid"]
    assert stored_events(session) == 1
    # A late "failed" for the same PaymentIntent changes nothing.
    late = deliver(
        client,
        event(
            "payment_intent.payment_failed",
            {"id": payment.payment_intent_id, "last_payment_error": {"code": "card_declined"}},
            event_id="evt_2",
        ),
    )
    assert "ignored" in late.json["outcome"]
    assert pledge_states(session, project.id) == ["paid", "paid"]
    assert_books_agree_with_stripe(app, session, AFTER_DEADLINE)


def test_failed_then_succeeded_out_of_order_ends_paid(app, client, session, failed_pledge):
    payment = on_session_payment(app, client, session, failed_pledge)
    project, _pledge, _headers = failed_pledge
    intent = app.extensions["stripe"].client.v1.payment_intents.retrieve(payment.payment_intent_id)
    authenticate(app, intent)

    deliver(
        client,
        event(
            "payment_intent.payment_failed",
            {"id": payment.payment_intent_id, "last_payment_error": {"code": "authentication"}},
            event_id="evt_a",
        ),
    )
    deliver(
        client,
        event(
            "payment_intent.succeeded",
            {"id": payment.payment_intent_id, "amount": 5000},
            event_id="evt_b",
        ),
    )

    session.rollback()
    assert session.get(Payment, payment.id).state is PaymentState.SUCCEEDED
    assert pledge_states(session, project.id) == ["paid", "paid"]
    assert_books_agree_with_stripe(app, session, AFTER_DEADLINE)


def test_an_event_about_an_unknown_object_is_recorded_and_ignored(client, session):
    response = deliver(client, event("payment_intent.succeeded", {"id": "pi_unknown", "amount": 1}))
    assert response.status_code == 200
    assert response.json["outcome"] == "unknown payment: ignored"
    assert stored_events(session) == 1


def test_account_updated_enables_payouts(client, session):
    account = ConnectedAccountFactory(details_submitted=False, payouts_enabled=False)

    deliver(
        client,
        event(
            "account.updated",
            {
                "id": account.account_id,
                "details_submitted": True,
                "payouts_enabled": True,
                "capabilities": {"transfers": "active"},
            },
        ),
    )

    session.rollback()
    assert session.get(ConnectedAccount, account.organisation_id).payouts_enabled is True


def authenticate(app, intent) -> None:
    """Complete 3-D Secure for a PaymentIntent, as the buyer's browser would."""
    base = app.extensions["settings"].stripe_api_base
    data = f"client_secret={intent.client_secret}&success=true".encode()
    request = urllib.request.Request(
        f"{base}/v1/payment_intents/{intent.id}/_authenticate",
        data=data,
        method="POST",
        headers={"Authorization": "Bearer sk_test_marketplace"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def test_a_real_delivery_from_stripe_finishes_a_3ds_payment(
    app, client, session, live_app, failed_pledge
):
    base = app.extensions["settings"].stripe_api_base
    register = urllib.request.Request(
        f"{base}/_config/webhooks/marketplace",
        method="POST",
        data=f"url={live_app}/webhooks/stripe&secret={SECRET}".encode(),
    )
    urllib.request.urlopen(register, timeout=10).close()
    payment = on_session_payment(app, client, session, failed_pledge)
    project, _pledge, _headers = failed_pledge
    intent = app.extensions["stripe"].client.v1.payment_intents.retrieve(payment.payment_intent_id)

    authenticate(app, intent)

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        session.rollback()
        if session.get(Payment, payment.id).state is PaymentState.SUCCEEDED:
            break
        time.sleep(0.2)
    assert session.get(Payment, payment.id).state is PaymentState.SUCCEEDED
    assert pledge_states(session, project.id) == ["paid", "paid"]
    tick(app, AFTER_DEADLINE + timedelta(minutes=5))
    assert_books_agree_with_stripe(app, session, AFTER_DEADLINE)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_delivery_three_times_in_any_order_changes_nothing_after_the_first(
    app, client, session, failed_pledge, seed
):
    import random

    payment = on_session_payment(app, client, session, failed_pledge)
    project, _pledge, _headers = failed_pledge
    intent = app.extensions["stripe"].client.v1.payment_intents.retrieve(payment.payment_intent_id)
    authenticate(app, intent)
    account = ConnectedAccountFactory(details_submitted=False, payouts_enabled=False)
    events = [
        event(
            "payment_intent.payment_failed",
            {"id": payment.payment_intent_id, "last_payment_error": {"code": "authentication"}},
            event_id="evt_failed",
        ),
        event(
            "payment_intent.succeeded",
            {"id": payment.payment_intent_id, "amount": 5000},
            event_id="evt_succeeded",
        ),
        event(
            "account.updated",
            {"id": account.account_id, "details_submitted": True, "payouts_enabled": True},
            event_id="evt_account",
        ),
        event("payment_intent.succeeded", {"id": "pi_unknown", "amount": 1}, event_id="evt_other"),
    ]
    deliveries = events * 3
    random.Random(seed).shuffle(deliveries)

    answers = [deliver(client, body) for body in deliveries]

    assert {a.status_code for a in answers} == {200}
    assert sum(a.json["outcome"] != "duplicate delivery: ignored" for a in answers) == len(events)
    assert stored_events(session) == len(events)
    assert session.get(Payment, payment.id).state is PaymentState.SUCCEEDED
    assert pledge_states(session, project.id) == ["paid", "paid"]
    session.rollback()
    assert session.get(ConnectedAccount, account.organisation_id).payouts_enabled
    assert_books_agree_with_stripe(app, session, AFTER_DEADLINE)


def test_requires_action_and_processing_move_a_live_attempt_forward_only(
    app, client, session, failed_pledge
):
    _project, pledge, _headers = failed_pledge
    attempt = PaymentFactory(
        pledge=session.get(Pledge, pledge["id"]),
        attempt=7,
        kind=PaymentKind.ON_SESSION,
        state=PaymentState.CREATED,
    )
    session.commit()
    body = {"id": "pi_waiting_1", "object": "payment_intent", "metadata": {}}
    body["metadata"]["payment_id"] = str(attempt.id)

    processing = deliver(client, event("payment_intent.processing", body, "evt_p"))
    assert processing.json["outcome"] == f"payment {attempt.id} processing: created"
    action = deliver(client, event("payment_intent.requires_action", body, "evt_a"))
    assert action.json["outcome"] == f"payment {attempt.id} requires_action: requires_action"
    again = deliver(client, event("payment_intent.processing", body, "evt_p2"))
    assert again.json["outcome"] == f"payment {attempt.id} processing: requires_action"

    session.rollback()
    stored = session.get(Payment, attempt.id)
    assert stored.state is PaymentState.REQUIRES_ACTION
    assert stored.payment_intent_id == "pi_waiting_1"


def test_a_refund_that_fails_at_the_bank_is_reversed_and_reported(
    app, client, session, auth_headers
):
    """An unfunded project's refund, booked when Stripe took it, later fails: the row is
    failed, its entry reversed (the escrow holds the money again) and reconciliation
    names the buyer who is still owed it."""
    from marketplace.ledger.models import JournalEntry
    from marketplace.payments.models import MoneyState, Refund
    from marketplace.reconciliation.checks import reconcile
    from tests.integration.funding_support import AT_START

    project = listed_project()
    pledge_via_api(client, auth_headers(buyer()), project.id, 75)
    pledge_via_api(client, auth_headers(buyer()), project.id, 10, "pm_card_chargeCustomerFail")
    tick(app, AFTER_DEADLINE)
    tick(app, AT_START)  # the failed pledge's grace is over: unfunded, every charge refunded
    session.rollback()
    refund = session.scalars(select(Refund)).one()
    assert refund.state is MoneyState.SUCCEEDED

    body = {
        "id": refund.refund_id,
        "object": "refund",
        "status": "failed",
        "failure_reason": "expired_or_canceled_card",
    }
    first = deliver(client, event("charge.refund.updated", body, "evt_r1"))
    again = deliver(client, event("charge.refund.updated", body, "evt_r2"))

    assert "reversed in the books" in first.json["outcome"]
    assert again.json["outcome"] == f"refund {refund.id} already failed"
    session.rollback()
    assert session.get(Refund, refund.id).state is MoneyState.FAILED
    assert (
        session.scalar(
            select(func.count()).where(JournalEntry.reference == f"refund:{refund.id}:reversal")
        )
        == 1
    )
    run = reconcile(session, app.extensions["stripe"], AT_START)
    session.rollback()
    assert (
        f"refund {refund.id} failed at Stripe (expired_or_canceled_card): the buyer is still "
        f"owed {refund.amount_cents} cents"
    ) in run.differences
