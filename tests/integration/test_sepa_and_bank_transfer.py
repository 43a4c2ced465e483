"""SEPA Direct Debit and EU bank transfer, end to end: the API, the sweeps, Stripe's events
delivered by the development Stripe to the app over HTTP, on both databases."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from marketplace.funding.models import Pledge, PledgeStateChange
from marketplace.ledger.models import JournalEntry
from marketplace.payments.models import (
    BalanceReturn,
    Payment,
    PaymentSetup,
    StripeCustomer,
    StripeEvent,
)
from marketplace.projects.models import ProjectState
from tests.integration.funding_support import (
    AFTER_DEADLINE,
    AT_START,
    assert_books_agree_with_stripe,
    buyer,
    listed_project,
    pledge_states,
    project_state,
    tick,
)
from tests.integration.test_stripe_requests import check_every_request
from tests.integration.test_webhooks import SECRET, deliver, event

PAID_IBAN = "DE89 3704 0044 0532 0130 00"
FAILING_IBAN = "DE62370400440532013001"
GRACE = timedelta(hours=72)


def _post(app, path: str, body: dict | None = None, form: str | None = None) -> dict:
    base = app.extensions["settings"].stripe_api_base
    data = form.encode() if form is not None else json.dumps(body or {}).encode()
    request = urllib.request.Request(f"{base}{path}", method="POST", data=data)
    if form is None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:
        raw = answer.read()
    return json.loads(raw) if raw else {}


@pytest.fixture
def webhooks(app, live_app):
    """Stripe's events delivered to the app, signed, as Stripe sends them."""
    _post(
        app, "/_config/webhooks/marketplace", form=f"url={live_app}/webhooks/stripe&secret={SECRET}"
    )


def until(check, seconds: float = 20.0):
    """Wait for Stripe's events to arrive and be handled: ``check()`` true, or fail."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            assert found, "not reached in time"
            return found
        time.sleep(0.2)


def quiet(session, seconds: float = 1.5, most: float = 20.0) -> None:
    """Wait until Stripe has delivered what it had to say (no new event for ``seconds``):
    the test's own writes then do not meet a webhook's on SQLite's single writer."""
    deadline = time.monotonic() + most
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        session.rollback()
        count = session.scalar(select(func.count()).select_from(StripeEvent))
        if count != seen:
            seen, since = count, time.monotonic()
        elif time.monotonic() - since >= seconds:
            session.rollback()
            return
        time.sleep(0.2)
    raise AssertionError("Stripe kept sending events")


def pledge(client, headers, project_id, tokens, **body):
    return client.post(
        f"/api/v1/projects/{project_id}/pledges",
        json={"tokens": tokens, **body},
        headers=headers,
    )


def sepa(iban: str = PAID_IBAN, **more) -> dict:
    return {
        "payment_method": "sepa_debit",
        "iban": iban,
        "account_holder": "Havenstad Bank N.V.",
        "mandate_accepted": True,
        **more,
    }


def stripe_requests(app) -> list[dict]:
    base = app.extensions["settings"].stripe_api_base
    with urllib.request.urlopen(f"{base}/_config/requests", timeout=10) as answer:
        return json.loads(answer.read())["requests"]


def payment_of(session, pledge_id: int) -> Payment:
    session.rollback()
    return session.scalars(
        select(Payment).where(Payment.pledge_id == pledge_id).order_by(Payment.id.desc())
    ).first()


def returns_opened(session) -> int:
    """Balance returns made so far (a fresh read: a transaction left open would keep
    showing what was there when it began)."""
    session.rollback()
    return session.scalar(select(func.count()).select_from(BalanceReturn))


def charges_booked(session) -> int:
    session.rollback()
    return session.scalar(
        select(func.count()).select_from(JournalEntry).where(JournalEntry.kind == "charge")
    )


# ---------------------------------------------------------------- SEPA: saving the mandate


def test_a_sepa_pledge_saves_the_account_with_the_accepted_mandate(
    app, client, session, auth_headers, clock
):
    project = listed_project()
    response = pledge(client, auth_headers(buyer()), project.id, 30, **sepa())

    assert response.status_code == 201, response.json
    assert response.json["payment_type"] == "sepa_debit"
    assert response.json["card"] == "SEPA •••• 3000"
    assert response.json["state"] == "committed"
    setup = session.scalars(select(PaymentSetup)).one()
    assert setup.method_type.value == "sepa_debit"
    assert setup.mandate_id.startswith("mandate_")
    made = [r for r in stripe_requests(app) if r["path"] == "/v1/setup_intents"]
    acceptance = made[0]["params"]["mandate_data"]["customer_acceptance"]
    assert acceptance["type"] == "online"
    assert acceptance["online"]["ip_address"] and acceptance["online"]["user_agent"]
    assert made[0]["params"]["allowed_payment_method_types"] == ["sepa_debit"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (sepa(mandate_accepted=False), "mandate_accepted"),
        (sepa(iban="DE89 3704 0044 0532 0130 01"), "iban"),  # a wrong check digit
        (sepa(iban=""), "iban"),
        (sepa(iban="NL00\u202eABNA0417164300"), "iban"),
        (sepa(account_holder=""), "account_holder"),
    ],
)
def test_a_debit_without_its_mandate_or_with_a_wrong_iban_is_422_and_nothing_reaches_stripe(
    app, client, session, auth_headers, clock, body, field
):
    project = listed_project()
    response = pledge(client, auth_headers(buyer()), project.id, 30, **body)

    assert response.status_code == 422, response.json
    assert field in response.json["errors"]
    assert stripe_requests(app) == []
    assert session.scalar(select(func.count()).select_from(Pledge)) == 0


def test_a_debit_above_stripes_limit_is_refused_before_stripe_and_transfer_is_offered(
    app, client, session, auth_headers, clock
):
    project = listed_project(tokens_total=2000, token_price_cents=1000, threshold_tokens=10)
    response = pledge(client, auth_headers(buyer()), project.id, 1001, **sepa())

    assert response.status_code == 422
    assert "bank transfer" in response.json["errors"]["payment_method"][0]
    assert stripe_requests(app) == []
    assert pledge(client, auth_headers(buyer()), project.id, 1000, **sepa()).status_code == 201


# ---------------------------------------------------------------- SEPA: the debit at close


def test_a_debit_is_processing_until_the_bank_pays_and_the_project_waits_for_it(
    app, client, session, auth_headers, clock, webhooks
):
    project = listed_project()
    headers = auth_headers(buyer())
    made = pledge(client, headers, project.id, 80, **sepa()).json

    tick(app, AFTER_DEADLINE)
    assert pledge_states(session, project.id) == ["processing"]
    assert payment_of(session, made["id"]).state.value == "processing"
    tick(app, AT_START)  # the start date: the money is not known yet, so nothing starts
    assert project_state(session, project.id).state is ProjectState.FUNDED

    assert _post(app, "/_config/debits/settle")["settled"] == 1
    until(lambda: pledge_states(session, project.id) == ["paid"])
    intent = app.extensions["stripe"].client.v1.payment_intents.retrieve(
        payment_of(session, made["id"]).payment_intent_id
    )
    for _ in range(3):  # Stripe delivers again: nothing is booked twice
        deliver(client, event("payment_intent.succeeded", intent.to_dict(), "evt_again"))
    assert charges_booked(session) == 1

    tick(app, AT_START + timedelta(minutes=5))
    assert project_state(session, project.id).state is ProjectState.RUNNING
    assert project_state(session, project.id).tokens_paid == 80
    history = [
        (h.from_state.value if h.from_state else None, h.to_state.value)
        for h in session.scalars(select(PledgeStateChange).order_by(PledgeStateChange.id))
    ]
    assert history == [(None, "committed"), ("committed", "processing"), ("processing", "paid")]
    assert_books_agree_with_stripe(app, session, AT_START)
    assert check_every_request(app) == []


def test_a_debit_the_bank_refuses_after_close_starts_the_grace_period(
    app, client, session, auth_headers, clock, webhooks
):
    project = listed_project()
    pledge(client, auth_headers(buyer()), project.id, 60, payment_method="pm_card_visa")
    headers = auth_headers(buyer())
    made = pledge(client, headers, project.id, 20, **sepa(FAILING_IBAN)).json

    tick(app, AFTER_DEADLINE)
    assert pledge_states(session, project.id) == ["paid", "processing"]
    _post(app, "/_config/debits/settle")
    until(lambda: pledge_states(session, project.id) == ["paid", "payment_failed"])

    session.rollback()
    failed = session.get(Pledge, made["id"])
    assert failed.grace_until is not None
    assert payment_of(session, made["id"]).failure_code == "insufficient_funds"
    shown = client.get(f"/api/v1/pledges/{made['id']}", headers=headers).json
    assert shown["state"] == "payment_failed" and shown["grace_until"]
    # Within the grace period the buyer pays by card (a debit would answer too late).
    refused = client.post(
        f"/api/v1/pledges/{made['id']}/pay",
        headers=headers,
        json={"payment_method": failed.payment_setup.payment_method_id},
    )
    assert refused.status_code == 422 and "payment_method" in refused.json["errors"]
    paid = client.post(
        f"/api/v1/pledges/{made['id']}/pay",
        headers=headers,
        json={"payment_method": "pm_card_visa"},
    )
    assert paid.status_code == 200 and paid.json["state"] == "paid"
    assert charges_booked(session) == 2
    assert_books_agree_with_stripe(app, session, AFTER_DEADLINE)


# ---------------------------------------------------------------- bank transfer


def _fund(app, session, organisation_id: int, amount: int, reference: str | None):
    session.rollback()
    customer = session.get(StripeCustomer, organisation_id).customer_id
    params = {"amount": amount, "currency": "eur"}
    if reference:
        params["reference"] = reference
    app.extensions["stripe"].client.v1.test_helpers.customers.fund_cash_balance(customer, params)
    return customer


def test_a_bank_transfer_paid_in_two_parts_with_too_much_funds_the_project_and_returns_the_rest(
    app, client, session, auth_headers, clock, webhooks
):
    project = listed_project()
    person = buyer()
    headers, outsider = auth_headers(person), auth_headers(buyer())
    made = pledge(client, headers, project.id, 80, payment_method="bank_transfer")
    assert made.status_code == 201, made.json
    assert made.json["payment_type"] == "bank_transfer" and made.json["bank_transfer"] is None
    pledge_id = made.json["id"]

    tick(app, AFTER_DEADLINE)
    shown = client.get(f"/api/v1/pledges/{pledge_id}", headers=headers).json
    transfer = shown["bank_transfer"]
    assert shown["state"] == "processing"
    assert transfer["amount_cents"] == 80_000 and transfer["remaining_cents"] == 80_000
    assert transfer["iban"].startswith("NL") and transfer["reference"]
    assert transfer["pay_before"]
    invoice = client.get(transfer["invoice_url"], headers=headers)
    assert invoice.status_code == 200 and invoice.data.startswith(b"%PDF")
    assert client.get(transfer["invoice_url"], headers=outsider).status_code == 404

    _fund(app, session, person.organisation_id, 30_000, transfer["reference"])
    until(lambda: payment_of(session, pledge_id).received_cents == 30_000)
    partly = client.get(f"/api/v1/pledges/{pledge_id}", headers=headers).json["bank_transfer"]
    assert (partly["received_cents"], partly["remaining_cents"]) == (30_000, 50_000)
    assert pledge_states(session, project.id) == ["processing"]

    customer = _fund(app, session, person.organisation_id, 51_000, transfer["reference"])
    until(lambda: pledge_states(session, project.id) == ["paid"])
    until(lambda: returns_opened(session) == 1)
    tick(app, AFTER_DEADLINE + timedelta(minutes=5))
    session.rollback()
    returned = session.scalars(select(BalanceReturn)).one()
    assert (returned.amount_cents, returned.state.value) == (1_000, "succeeded")
    assert app.extensions["stripe"].cash_balance(customer) == 0
    assert charges_booked(session) == 1

    tick(app, AT_START)
    assert project_state(session, project.id).state is ProjectState.RUNNING
    assert_books_agree_with_stripe(app, session, AT_START)
    assert check_every_request(app) == []


def test_a_bank_transfer_short_at_its_deadline_cancels_the_pledge_and_returns_what_came(
    app, client, session, auth_headers, clock, webhooks
):
    project = listed_project()
    person = buyer()
    headers = auth_headers(person)
    pledge_id = pledge(client, headers, project.id, 80, payment_method="bank_transfer").json["id"]
    tick(app, AFTER_DEADLINE)
    reference = client.get(f"/api/v1/pledges/{pledge_id}", headers=headers).json["bank_transfer"][
        "reference"
    ]
    customer = _fund(app, session, person.organisation_id, 20_000, reference)
    until(lambda: payment_of(session, pledge_id).received_cents == 20_000)

    tick(app, AFTER_DEADLINE + GRACE - timedelta(minutes=1))
    assert pledge_states(session, project.id) == ["processing"]
    tick(app, AFTER_DEADLINE + GRACE + timedelta(minutes=1))
    assert pledge_states(session, project.id) == ["cancelled"]
    assert payment_of(session, pledge_id).failure_code == "not_paid_in_time"
    tick(app, AFTER_DEADLINE + GRACE + timedelta(minutes=2))
    assert project_state(session, project.id).state is ProjectState.UNFUNDED
    session.rollback()
    returned = session.scalars(select(BalanceReturn)).one()
    assert (returned.amount_cents, returned.state.value) == (20_000, "succeeded")
    assert app.extensions["stripe"].cash_balance(customer) == 0
    assert_books_agree_with_stripe(app, session, AFTER_DEADLINE + GRACE)
    assert check_every_request(app) == []
