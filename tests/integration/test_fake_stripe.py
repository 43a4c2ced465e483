"""The development Stripe refuses what Stripe refuses (tests/support/stripe_server.py).

Each rule is shown both ways: the request Stripe refuses is refused with Stripe's
error shape, and the same request made as Stripe wants it goes through. The rules
follow Stripe's API reference for the version the SDK pins (2026-10-28.endive):
PaymentIntents and SetupIntents, create (``return_url``,
``automatic_payment_methods``, ``off_session``); Transfers, create (the
``transfers`` capability); Refunds, create (``amount``); Errors
(``parameter_unknown``); Connect service agreement types.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
import stripe
from sqlalchemy import select

from tests.integration.funding_support import visit

NO_REDIRECTS = {"enabled": True, "allow_redirects": "never"}


@pytest.fixture
def sdk(app) -> stripe.StripeClient:
    return app.extensions["stripe"].client


@pytest.fixture
def saved(sdk) -> tuple[str, str]:
    """(customer, card saved on it for off-session use)."""
    customer = sdk.v1.customers.create({"name": "Havenstad Bank"}).id
    intent = sdk.v1.setup_intents.create(
        {
            "customer": customer,
            "payment_method": "pm_card_visa",
            "confirm": True,
            "usage": "off_session",
            "automatic_payment_methods": NO_REDIRECTS,
        }
    )
    return customer, intent.payment_method


def charge_into_balance(sdk, cents: int) -> None:
    """A card payment: the platform's balance grows by ``cents``."""
    sdk.v1.payment_intents.create(
        {
            "amount": cents,
            "currency": "eur",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "automatic_payment_methods": NO_REDIRECTS,
        }
    )


def refused(call) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as error:
        call()
    assert error.value.http_status == 400
    return error.value


def test_an_unknown_parameter_is_400_parameter_unknown(sdk):
    error = refused(
        lambda: sdk.v1.customers.create({"name": "x", "nickname": "y"})  # type: ignore[typeddict-unknown-key]
    )
    assert error.code == "parameter_unknown"
    assert error.param == "nickname"
    assert sdk.v1.customers.create({"name": "x"}).id.startswith("cus_")


@pytest.mark.parametrize("kind", ["payment_intents", "setup_intents"])
def test_payment_method_types_is_unknown_in_the_pinned_version(sdk, kind):
    """2026-10-28.endive names it ``allowed_payment_method_types``."""
    params = {"payment_method_types": ["card"]}
    if kind == "payment_intents":
        params |= {"amount": 1000, "currency": "eur"}
    create = getattr(sdk.v1, kind).create

    error = refused(lambda: create(params))

    assert (error.code, error.param) == ("parameter_unknown", "payment_method_types")
    renamed = {k: v for k, v in params.items() if k != "payment_method_types"}
    assert create({**renamed, "allowed_payment_method_types": ["card"]}).id


@pytest.mark.parametrize("kind", ["payment_intents", "setup_intents"])
def test_confirming_where_a_redirect_may_be_needed_needs_a_return_url(sdk, kind):
    params = {"payment_method": "pm_card_visa", "confirm": True}
    if kind == "payment_intents":
        params |= {"amount": 1000, "currency": "eur"}
    create = getattr(sdk.v1, kind).create

    error = refused(lambda: create(params))

    assert error.param == "return_url"
    assert "A `return_url` must be specified" in str(error.user_message)
    redirects_allowed = {**params, "automatic_payment_methods": {"enabled": True}}
    assert refused(lambda: create(redirects_allowed)).param == "return_url"
    assert create({**params, "return_url": "https://example.org/back"}).status
    assert create({**params, "automatic_payment_methods": NO_REDIRECTS}).status


def test_an_off_session_charge_needs_a_card_saved_on_the_customer(sdk, saved):
    customer, card = saved
    charge = {
        "amount": 1000,
        "currency": "eur",
        "confirm": True,
        "off_session": True,
        "automatic_payment_methods": NO_REDIRECTS,
    }

    assert refused(lambda: sdk.v1.payment_intents.create(charge)).param == "customer"
    loose = sdk.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    unsaved = {**charge, "customer": customer, "payment_method": loose.id}
    assert refused(lambda: sdk.v1.payment_intents.create(unsaved)).param == "payment_method"
    not_confirmed = {**charge, "confirm": False, "customer": customer, "payment_method": card}
    assert refused(lambda: sdk.v1.payment_intents.create(not_confirmed)).param == "off_session"
    made = sdk.v1.payment_intents.create({**charge, "customer": customer, "payment_method": card})
    assert made.status == "succeeded"


def test_a_transfer_needs_an_account_with_active_transfers(sdk):
    account = express_account(sdk)
    transfer = {"amount": 500, "currency": "eur", "destination": account}

    error = refused(lambda: sdk.v1.transfers.create(transfer))

    assert error.code == "insufficient_capabilities_for_transfer"
    onboard(sdk, account)
    charge_into_balance(sdk, 500)
    assert sdk.v1.transfers.create(transfer).amount == 500


def test_a_recipient_account_cannot_ask_for_card_payments(sdk):
    error = refused(
        lambda: sdk.v1.accounts.create(
            {
                "type": "express",
                "country": "NL",
                "capabilities": {
                    "transfers": {"requested": True},
                    "card_payments": {"requested": True},
                },
                "tos_acceptance": {"service_agreement": "recipient"},
            }
        )
    )
    assert error.param == "capabilities"


def test_a_refund_cannot_be_larger_than_what_remains_of_the_charge(sdk):
    intent = sdk.v1.payment_intents.create(
        {
            "amount": 1000,
            "currency": "eur",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "automatic_payment_methods": NO_REDIRECTS,
        }
    )

    assert (
        refused(lambda: sdk.v1.refunds.create({"payment_intent": intent.id, "amount": 7000})).param
        == "amount"
    )
    assert sdk.v1.refunds.create({"payment_intent": intent.id, "amount": 600}).amount == 600
    error = refused(lambda: sdk.v1.refunds.create({"payment_intent": intent.id, "amount": 401}))
    assert "remaining amount of the charge (400)" in str(error.user_message)
    assert sdk.v1.refunds.create({"payment_intent": intent.id, "amount": 400}).amount == 400


def express_account(sdk) -> str:
    """An Express account in the Netherlands, not yet onboarded."""
    return sdk.v1.accounts.create(
        {
            "type": "express",
            "country": "NL",
            "capabilities": {"transfers": {"requested": True}},
            "tos_acceptance": {"service_agreement": "recipient"},
        }
    ).id


def onboard(sdk, account: str) -> str:
    """The account onboarded (its link's page visited): transfers become active."""
    link = sdk.v1.account_links.create(
        {
            "account": account,
            "type": "account_onboarding",
            "return_url": "https://example.org/back",
            "refresh_url": "https://example.org/again",
        }
    )
    visit(link.url)
    return account


def test_a_transfer_cannot_be_larger_than_the_available_balance(sdk):
    account = onboard(sdk, express_account(sdk))
    charge_into_balance(sdk, 1000)
    intent = sdk.v1.payment_intents.list({"limit": 1}).data[0]
    sdk.v1.refunds.create({"payment_intent": intent.id, "amount": 300})
    transfer = {"currency": "eur", "destination": account}

    error = refused(lambda: sdk.v1.transfers.create({**transfer, "amount": 701}))

    assert error.code == "balance_insufficient"
    assert sdk.v1.transfers.create({**transfer, "amount": 700}).amount == 700
    assert refused(lambda: sdk.v1.transfers.create({**transfer, "amount": 1})).code == (
        "balance_insufficient"
    )


def test_a_charge_below_the_eur_minimum_is_refused(sdk):
    payment = {
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "confirm": True,
        "automatic_payment_methods": NO_REDIRECTS,
    }

    error = refused(lambda: sdk.v1.payment_intents.create({**payment, "amount": 49}))

    assert (error.code, error.param) == ("amount_too_small", "amount")
    assert sdk.v1.payment_intents.create({**payment, "amount": 50}).status == "succeeded"


def test_a_key_in_use_by_a_running_request_is_409(app):
    """A request whose Idempotency-Key is in use by one still running is told so (Stripe:
    409 idempotency_key_in_use); once the first is done, the key replays its answer."""
    base = app.extensions["settings"].stripe_api_base

    def create(hold_ms: int) -> tuple[int, dict]:
        request = urllib.request.Request(
            base + "/v1/customers",
            data=b"name=twin",
            headers={
                "Authorization": "Bearer sk_test_twin",
                "Idempotency-Key": "twin-1",
                "X-Test-Hold-Ms": str(hold_ms),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def recorded() -> int:
        with urllib.request.urlopen(base + "/_config/requests", timeout=10) as response:
            return len(json.loads(response.read())["requests"])

    first: list = []
    running = threading.Thread(target=lambda: first.append(create(1500)))
    running.start()
    while recorded() == 0:  # the first request has arrived and is being held
        pass
    twin = create(0)
    running.join()
    again = create(0)

    assert twin[0] == 409
    assert twin[1]["error"]["code"] == "idempotency_key_in_use"
    assert first[0][0] == 200
    assert again == (200, first[0][1])


def test_past_stripes_rate_limit_a_first_pledge_is_503_with_retry_after_and_saves_nothing(
    client, session, auth_headers, stripe_server
):
    from marketplace.funding.models import Pledge
    from marketplace.payments.models import PaymentSetup, StripeCustomer
    from tests.integration.funding_support import buyer, listed_project, pledge_via_api

    project = listed_project()
    newcomer = buyer()
    session.commit()
    # a first pledge makes three calls (a customer, a SetupIntent, the card's label): the
    # second pledge's first call is over the customers endpoint's limit in that second
    stripe_server.limit(per_second=3, per_endpoint=1)
    try:
        first = pledge_via_api(client, auth_headers(buyer()), project.id, 5)
        refused = pledge_via_api(client, auth_headers(newcomer), project.id, 5)
        refused_at_stripe = stripe_server.refused()
    finally:
        stripe_server.limit(per_second=0, per_endpoint=0)

    assert first.status_code == 201, first.json
    assert refused.status_code == 503, refused.json
    assert refused.json["code"] == "payment_provider_unavailable"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused_at_stripe == 1
    session.rollback()
    mine = newcomer.organisation_id
    assert session.scalars(select(Pledge).where(Pledge.organisation_id == mine)).all() == []
    for model in (StripeCustomer, PaymentSetup):
        assert session.scalars(select(model).where(model.organisation_id == mine)).all() == []


def test_past_stripes_rate_limit_the_pledge_page_says_to_try_again_in_a_moment(
    client, session, web, stripe_server
):
    import contextlib

    from marketplace.funding.models import Pledge
    from marketplace.payments.gateway import GatewayError
    from tests.integration.funding_support import buyer, listed_project

    project = listed_project()
    newcomer = buyer()
    session.commit()
    web.login(newcomer.email)
    form = {"tokens": "5", "payment_method": "pm_card_visa"}
    stripe_server.limit(per_second=1, per_endpoint=1)
    # this second's one request (a customer that does not exist is an answer too)
    with contextlib.suppress(GatewayError):
        client.application.extensions["stripe"].find_customer("cus_takes_the_second")
    try:
        answer = web.confirm(
            f"/projects/{project.id}", form, action=f"/projects/{project.id}/pledge"
        )
    finally:
        stripe_server.limit(per_second=0, per_endpoint=0)

    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) >= 1
    assert "Stripe asks us to slow down just now. Nothing was saved" in answer.get_data(
        as_text=True
    )
    session.rollback()
    assert session.scalars(select(Pledge)).all() == []


def test_a_paced_stripe_call_inside_a_request_never_waits_on_the_requests_own_lock(
    app, client, auth_headers
):
    """SQLite's one writer is held by the request calling Stripe: the pacer keeps its
    moments in the process there (on PostgreSQL in rows of their own)."""
    from marketplace.accounts.models import Role
    from marketplace.payments.gateway import StripeGateway
    from marketplace.payments.pacing import Limits, Pacer
    from tests import factories
    from tests.factories import UserFactory

    settings = app.extensions["settings"]
    engine = app.extensions["db"].engine
    unpaced = app.extensions["stripe"]
    app.extensions["stripe"] = StripeGateway(
        settings.stripe_api_key,
        settings.stripe_api_base,
        settings.currency,
        pacer=Pacer(engine, Limits(per_second=25, per_endpoint=25)),
    )
    try:
        owner = UserFactory(role=Role.ENTREPRENEUR)
        factories.Session.commit()
        began = time.monotonic()
        answer = client.post(
            "/api/v1/payouts/account",
            headers=auth_headers(owner),
            json={"return_url": "http://localhost/payouts"},
        )
    finally:
        app.extensions["stripe"] = unpaced

    assert answer.status_code in (200, 201), answer.json
    assert answer.json["onboarding_url"].startswith(settings.stripe_api_base)
    assert time.monotonic() - began < 5
    with engine.connect() as connection:
        names = set(connection.exec_driver_sql("SELECT name FROM stripe_pace").scalars())
    if engine.dialect.name == "postgresql":
        assert {"*", "POST /v1/accounts", "POST /v1/account_links"} <= names
    else:
        assert names == set()


# --- SEPA Direct Debit and EU bank transfers -------------------------------------------

ONLINE = {
    "customer_acceptance": {
        "type": "online",
        "online": {"ip_address": "127.0.0.1", "user_agent": "test"},
    }
}
HOLDER = {"name": "Havenstad Bank N.V.", "email": "finance@havenstad.example"}


def sepa_method(sdk, iban: str = "DE89370400440532013000", details=HOLDER) -> str:
    return sdk.v1.payment_methods.create(
        {"type": "sepa_debit", "sepa_debit": {"iban": iban}, "billing_details": details}
    ).id


def debit_setup(method: str, customer: str, **more) -> dict:
    return {
        "customer": customer,
        "payment_method": method,
        "allowed_payment_method_types": ["sepa_debit"],
        "automatic_payment_methods": NO_REDIRECTS,
        "confirm": True,
        "usage": "off_session",
        **more,
    }


@pytest.mark.parametrize(
    ("iban", "details", "param"),
    [
        ("DE89370400440532013001", HOLDER, "sepa_debit[iban]"),  # a wrong check digit
        ("DE89370400440532013000", {"name": "Havenstad Bank N.V."}, "billing_details[email]"),
    ],
)
def test_a_sepa_account_needs_a_valid_iban_and_the_holders_name_and_email(
    sdk, iban, details, param
):
    assert refused(lambda: sepa_method(sdk, iban, details)).param == param
    assert sepa_method(sdk).startswith("pm_")


def test_a_sepa_setup_needs_the_customers_acceptance_of_the_mandate(sdk):
    customer = sdk.v1.customers.create({"name": "Havenstad Bank"}).id
    method = sepa_method(sdk)
    error = refused(lambda: sdk.v1.setup_intents.create(debit_setup(method, customer)))
    assert error.param == "mandate_data[customer_acceptance]"
    made = sdk.v1.setup_intents.create(debit_setup(method, customer, mandate_data=ONLINE))
    assert made.status == "succeeded" and made.mandate.startswith("mandate_")


def test_an_off_session_debit_needs_the_accounts_mandate_and_waits_for_the_bank(sdk):
    customer = sdk.v1.customers.create({"name": "Havenstad Bank"}).id
    method = sepa_method(sdk)
    sdk.v1.payment_methods.attach(method, {"customer": customer})
    debit = {
        "amount": 5_000,
        "currency": "eur",
        "customer": customer,
        "payment_method": method,
        "allowed_payment_method_types": ["sepa_debit"],
        "automatic_payment_methods": NO_REDIRECTS,
        "confirm": True,
        "off_session": True,
    }
    assert refused(lambda: sdk.v1.payment_intents.create(debit)).param == "mandate"
    as_card = {**debit, "allowed_payment_method_types": ["card"]}
    assert refused(lambda: sdk.v1.payment_intents.create(as_card)).param == "payment_method"
    sdk.v1.setup_intents.create(debit_setup(method, customer, mandate_data=ONLINE))
    assert sdk.v1.payment_intents.create(debit).status == "processing"


TRANSFER_OPTIONS = {
    "customer_balance": {
        "funding_type": "bank_transfer",
        "bank_transfer": {"type": "eu_bank_transfer", "eu_bank_transfer": {"country": "NL"}},
    }
}


def bank_transfer(customer: str | None, **more) -> dict:
    params = {
        "amount": 10_000,
        "currency": "eur",
        "allowed_payment_method_types": ["customer_balance"],
        "automatic_payment_methods": NO_REDIRECTS,
        "payment_method_data": {"type": "customer_balance"},
        "payment_method_options": TRANSFER_OPTIONS,
        "confirm": True,
        **more,
    }
    if customer:
        params["customer"] = customer
    return params


def test_a_bank_transfer_needs_a_customer_is_never_off_session_and_names_its_country(sdk):
    customer = sdk.v1.customers.create({"name": "Havenstad Bank"}).id
    assert refused(lambda: sdk.v1.payment_intents.create(bank_transfer(None))).param == "customer"
    off = bank_transfer(customer, off_session=True)
    assert refused(lambda: sdk.v1.payment_intents.create(off)).param == "off_session"
    nowhere = bank_transfer(
        customer,
        payment_method_options={
            "customer_balance": {
                "funding_type": "bank_transfer",
                "bank_transfer": {"type": "eu_bank_transfer"},
            }
        },
    )
    error = refused(lambda: sdk.v1.payment_intents.create(nowhere))
    assert error.param == "payment_method_options[customer_balance]"
    intent = sdk.v1.payment_intents.create(bank_transfer(customer))
    shown = intent.next_action.display_bank_transfer_instructions
    assert intent.status == "requires_action" and shown.amount_remaining == 10_000


def test_money_no_payment_took_is_returned_never_more_than_the_balance(sdk):
    customer = sdk.v1.customers.create({"name": "Havenstad Bank"}).id
    intent = sdk.v1.payment_intents.create(bank_transfer(customer))
    reference = intent.next_action.display_bank_transfer_instructions.reference
    sdk.v1.test_helpers.customers.fund_cash_balance(
        customer, {"amount": 4_000, "currency": "eur", "reference": reference}
    )
    partly = sdk.v1.payment_intents.retrieve(intent.id)
    assert partly.next_action.display_bank_transfer_instructions.amount_remaining == 6_000
    sdk.v1.test_helpers.customers.fund_cash_balance(
        customer, {"amount": 7_000, "currency": "eur", "reference": reference}
    )
    assert sdk.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    back = {"customer": customer, "origin": "customer_balance", "currency": "eur"}
    assert refused(lambda: sdk.v1.refunds.create({**back, "amount": 1_001})).param == "amount"
    assert sdk.v1.refunds.create({**back, "amount": 1_000}).amount == 1_000
    assert sdk.v1.customers.cash_balance.retrieve(customer).available.to_dict() == {}
