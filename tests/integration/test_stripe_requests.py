"""Every request the app sends to Stripe is one Stripe's API takes, for the pinned version.

The development Stripe records each request it receives (method, path, parameters
as sent). After the worked example (pledges, charges, payout onboarding, cost
tranche, settlement refunds and premium) and the failed-card journey (a declined
saved card, a 3-D Secure attempt, a good card), each request is checked against
the SDK's own types for that call (``stripe.params``, generated from Stripe's
OpenAPI document for 2026-10-28.endive): no parameter the call does not have,
every parameter it requires; and each POST carries an idempotency key derived from
the database row it acts for.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request

import stripe.params as types
from stripe.params._customer_cash_balance_retrieve_params import (
    CustomerCashBalanceRetrieveParams as CashBalanceRetrieveParams,
)

from tests.integration.test_payment_attempts import (  # noqa: F401 - fixtures
    THREE_D_SECURE,
    failed_pledge,
    pay_at_once,
)
from tests.integration.test_settlement import (  # noqa: F401 - fixtures
    settled_example,
    worked_example,
)

ID = r"[A-Za-z0-9_]+"
CALLS = [
    ("POST", r"/v1/customers", types.CustomerCreateParams),
    ("GET", rf"/v1/customers/{ID}", types.CustomerRetrieveParams),
    ("POST", r"/v1/setup_intents", types.SetupIntentCreateParams),
    ("POST", r"/v1/payment_intents", types.PaymentIntentCreateParams),
    ("GET", r"/v1/payment_intents", types.PaymentIntentListParams),
    ("GET", rf"/v1/payment_intents/{ID}", types.PaymentIntentRetrieveParams),
    ("POST", rf"/v1/payment_intents/{ID}/cancel", types.PaymentIntentCancelParams),
    ("GET", rf"/v1/payment_methods/{ID}", types.PaymentMethodRetrieveParams),
    ("POST", r"/v1/payment_methods", types.PaymentMethodCreateParams),
    ("GET", rf"/v1/customers/{ID}/cash_balance", CashBalanceRetrieveParams),
    ("POST", r"/v1/refunds", types.RefundCreateParams),
    ("GET", r"/v1/refunds", types.RefundListParams),
    ("GET", rf"/v1/refunds/{ID}", types.RefundRetrieveParams),
    ("POST", r"/v1/accounts", types.AccountCreateParams),
    ("GET", rf"/v1/accounts/{ID}", types.AccountRetrieveParams),
    ("POST", r"/v1/account_links", types.AccountLinkCreateParams),
    ("POST", r"/v1/transfers", types.TransferCreateParams),
    ("GET", r"/v1/transfers", types.TransferListParams),
    ("GET", rf"/v1/transfers/{ID}", types.TransferRetrieveParams),
]
# Every POST carries an idempotency key named after the row it acts for ("payment-12",
# "refund-3", "customer-organisation-4", "payment-12-cancel", "connect-organisation-4-link-2"),
# never the SDK's random one.
ROW_KEY = re.compile(r"[a-z]+(-[a-z]+)*-\d+(-[a-z]+(-\d+)?)?")
# What the tests themselves do in the browser's place (3-D Secure at the bank).
NOT_THE_APP = re.compile(
    rf"/v1/payment_intents/{ID}/_authenticate|/v1/test_helpers/customers/{ID}/fund_cash_balance"
)


def recorded(app) -> list[dict]:
    base = app.extensions["settings"].stripe_api_base
    with urllib.request.urlopen(base + "/_config/requests", timeout=10) as response:
        return json.loads(response.read())["requests"]


def params_type(method: str, path: str) -> type | None:
    for call_method, pattern, kind in CALLS:
        if call_method == method and re.fullmatch(pattern, path):
            return kind
    return None


def _nested(kind: type, annotation: object) -> type | None:
    """The TypedDict of a nested parameter: its annotation names one of the module's
    classes (the SDK writes them as strings, ``NotRequired["...AutomaticPaymentMethods"]``)."""
    module = sys.modules[kind.__module__]
    for name in re.findall(r"[A-Z][A-Za-z0-9]+", str(annotation)):
        found = getattr(module, name, None)
        if isinstance(found, type) and hasattr(found, "__required_keys__"):
            return found
    return None


def problems(params: object, kind: type, where: str = "") -> list[str]:
    """Unknown and missing parameters of ``params`` for the TypedDict ``kind``."""
    if not isinstance(params, dict):
        return []
    annotations = kind.__annotations__
    found = []
    for name in sorted(set(params) - set(annotations)):
        found.append(f"{where}{name}: not a parameter of {kind.__name__}")
    for name in sorted(kind.__required_keys__ - set(params)):
        found.append(f"{where}{name}: required by {kind.__name__}, missing")
    for name, value in params.items():
        nested = _nested(kind, annotations.get(name, ""))
        if nested is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            found += problems(item, nested, f"{where}{name}.")
    return found


def check_every_request(app) -> list[str]:
    requests = recorded(app)
    assert requests, "the development Stripe recorded nothing"
    found = []
    for request in requests:
        method, path = request["method"], request["path"]
        if NOT_THE_APP.fullmatch(path):
            continue
        kind = params_type(method, path)
        if kind is None:
            found.append(f"{method} {path}: a call this test does not know; add it to CALLS")
            continue
        params = {k: v for k, v in request["params"].items() if k != "expand"}
        found += [f"{method} {path} {p}" for p in problems(params, kind)]
        key = request["idempotency_key"]
        if method == "POST" and not (key and ROW_KEY.fullmatch(key)):
            found.append(f"{method} {path}: idempotency key {key!r} is not derived from a row")
    return found


def test_the_worked_example_sends_only_what_stripe_takes(app, settled_example):
    paths = {(r["method"], r["path"]) for r in recorded(app)}
    # The whole money lifecycle went through the development Stripe.
    assert {
        ("POST", "/v1/setup_intents"),
        ("POST", "/v1/payment_intents"),
        ("POST", "/v1/accounts"),
        ("POST", "/v1/account_links"),
        ("POST", "/v1/transfers"),
        ("POST", "/v1/refunds"),
    } <= paths
    assert check_every_request(app) == []


def test_the_failed_card_journey_sends_only_what_stripe_takes(app, client, failed_pledge):
    _project, _admin, pledge_id, token = failed_pledge
    waiting = client.post(
        f"/api/v1/pledges/{pledge_id}/pay",
        headers={"Authorization": f"Bearer {token}"},
        json={"payment_method": THREE_D_SECURE},
    )
    assert waiting.json["next_action"]["type"] == "authenticate"
    assert pay_at_once(app, pledge_id, token, 3)[(200, "paid")] == 1
    cancelled = [r for r in recorded(app) if r["path"].endswith("/cancel")]
    assert cancelled, "the 3-D Secure attempt was cancelled at Stripe"
    on_session = [
        r["params"]
        for r in recorded(app)
        if r["method"] == "POST"
        and r["path"] == "/v1/payment_intents"
        and "off_session" not in r["params"]
    ]
    assert on_session
    assert all(p["return_url"].endswith("/pledges") for p in on_session)
    assert check_every_request(app) == []


def test_the_check_finds_an_unknown_and_a_missing_parameter():
    assert problems(
        {"amount": "100", "payment_method_types": {"0": "card"}, "metadata": {"a": "b"}},
        types.PaymentIntentCreateParams,
    ) == [
        "payment_method_types: not a parameter of PaymentIntentCreateParams",
        "currency: required by PaymentIntentCreateParams, missing",
    ]
    assert problems(
        {
            "automatic_payment_methods": {"allow_redirects": "never"},
            "amount": "1",
            "currency": "eur",
        },
        types.PaymentIntentCreateParams,
    ) == [
        "automatic_payment_methods.enabled: required by "
        "PaymentIntentCreateParamsAutomaticPaymentMethods, missing"
    ]
