"""A private localstripe for the tests, extended where the product needs more of Stripe.

Run as ``python -m tests.support.stripe_server --port N``; ``StripeServer``
starts and stops it. Test code only (localstripe is GPL-3.0 and pinned to
1.15.10, the version these extensions were written against).

What the extension adds, as Stripe's API reference documents it:
- a charge's refunds found through an index, not a scan of every object;
- no pickling of the state to ``/tmp/localstripe.pickle`` (parallel runs stay apart);
- idempotency keys: a POST repeated with the same ``Idempotency-Key`` and the
  same parameters returns the first response; other parameters are a 400
  ``idempotency_error``. Results are kept for successes and card errors, not
  for requests refused before they ran (as Stripe does);
- PaymentIntent ``transfer_group`` and ``description``; an off-session
  confirmation of a card that always needs 3-D Secure is the 402
  ``authentication_required`` error, and every 402 carries the PaymentIntent;
- SetupIntent ``payment_method`` + ``confirm`` on create, attaching the
  PaymentMethod to the customer on success. A card that needs 3-D Secure is
  set up as if the buyer had completed the challenge in the browser (Stripe.js
  does that on the page), so it is saved and fails later, off-session;
- the test PaymentMethod ``pm_card_authenticationRequired`` (4000002760003184);
- ``POST /_config/bulk_payment_intents`` for benchmarks: many confirmed card
  PaymentIntents in one request, to seed settlements of 100,000 pledges quickly;
- Connect: ``/v1/accounts`` (Express), ``/v1/account_links`` whose URL, when
  visited, completes onboarding and redirects to ``return_url``, and
  ``/v1/transfers`` to an onboarded account (listable by ``transfer_group``).

It refuses what Stripe refuses (each rule cites the page of Stripe's API reference it
follows, for the version the SDK pins, 2026-10-28.endive):
- an unknown parameter: 400 ``parameter_unknown`` naming it (Errors: "parameter_unknown");
- confirming a PaymentIntent or SetupIntent whose automatic payment methods may
  redirect (the default since 2023-08-16) without a ``return_url`` (PaymentIntents,
  create: ``return_url``, ``automatic_payment_methods.allow_redirects``);
- an off-session confirmation without a customer and a payment method saved on it
  (PaymentIntents, create: ``off_session`` "can only be used with confirm=true";
  the payment method must be attached to the customer to be used again);
- a transfer to an account whose ``transfers`` capability is not active (Transfers,
  create: "insufficient_capabilities_for_transfer");
- a refund larger than what remains of the charge (Refunds, create: ``amount``
  "cannot be greater than the remaining amount of the charge");
- a transfer larger than the platform's available balance (Transfers, create:
  ``balance_insufficient``);
- a charge below Stripe's minimum for the currency (50 cents for EUR;
  ``amount_too_small``);
- a request whose ``Idempotency-Key`` is in use by a request still running
  (409 ``idempotency_key_in_use``);
- an Express account on the recipient service agreement asking for ``card_payments``
  (Connect, service agreement types);
- when told to (``POST /_config/rate_limit`` with ``global`` and ``endpoint``
  requests per second; 0 is off, the default), more requests in any second than the
  limit, over all of ``/v1/`` or to one endpoint (a method and a route: "POST
  /v1/refunds"): 429 in Stripe's error shape (Rate limits: "25 requests per second"
  for an endpoint and a sandbox). ``GET /_config/rate_limit`` says how many it refused.

Every request to ``/v1/`` is recorded (method, path, parameters as sent) and listed
at ``GET /_config/requests``, so a test can check each against the SDK's types.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import hmac
import json
import time
from collections import defaultdict
from urllib.parse import parse_qsl, urlencode

import aiohttp
from aiohttp import web
from localstripe import resources, server
from localstripe import webhooks as localstripe_webhooks
from localstripe.errors import UserError
from localstripe.resources import (
    Charge,
    Customer,
    Event,
    List,
    PaymentIntent,
    PaymentMethod,
    Refund,
    SetupIntent,
    Store,
    StripeObject,
    store,
)
from localstripe.webhooks import _webhooks, schedule_webhook
from multidict import MultiDict

AUTHENTICATION_REQUIRED_CARD = "4000002760003184"

# --- no state on disk --------------------------------------------------------

Store.dump_to_disk = lambda self: None


# --- idempotency keys ----------------------------------------------------------

_idempotent: dict[str, tuple[str, int, bytes]] = {}
# Keys whose first request is being served now.
_in_flight: set[str] = set()


# Every request to /v1/ since the last reset: method, path, parameters as sent and the
# Idempotency-Key header.
_requests: list[dict] = []


@web.middleware
async def recording_middleware(request, handler):
    if request.path.startswith("/v1/"):
        if request.method == "POST":
            body = (await request.read()).decode()
            params = server.unflatten_data(MultiDict(parse_qsl(body, keep_blank_values=True)))
        else:
            params = server.unflatten_data(MultiDict(request.query))
        _requests.append(
            {
                "method": request.method,
                "path": request.path,
                "params": params,
                "idempotency_key": request.headers.get("Idempotency-Key"),
            }
        )
    response = await handler(request)
    return _stripe_shaped(response)


def _stripe_shaped(response):
    """localstripe names an unknown parameter "Unexpected x"; Stripe answers 400 with the
    code ``parameter_unknown`` and the parameter (API reference, Errors)."""
    if response.status != 400 or not getattr(response, "body", None):
        return response
    try:
        error = json.loads(response.body)["error"]
    except (ValueError, KeyError, TypeError):
        return response
    message = error.get("message") or ""
    if not message.startswith("Unexpected "):
        return response
    name = message.removeprefix("Unexpected ").split(",")[0].strip()
    return server.json_response(
        {
            "error": {
                "type": "invalid_request_error",
                "code": "parameter_unknown",
                "param": name,
                "message": f"Received unknown parameter: {name}",
            }
        },
        status=400,
    )


# Stripe's rate limits, when switched on: requests per second over /v1/ and per endpoint.
_rate = {"global": 0, "endpoint": 0, "refused": 0}
_seen: dict[str, collections.deque] = defaultdict(collections.deque)


def _over(name: str, limit: int, now: float) -> bool:
    """Whether one more request now would be more than ``limit`` in the last second."""
    if not limit:
        return False
    window = _seen[name]
    while window and window[0] <= now - 1.0:
        window.popleft()
    return len(window) >= limit


@web.middleware
async def rate_limit_middleware(request, handler):
    if request.path.startswith("/v1/") and (_rate["global"] or _rate["endpoint"]):
        now = time.monotonic()
        route = request.match_info.route.resource
        endpoint = f"{request.method} {route.canonical if route else request.path}"
        if _over("*", _rate["global"], now) or _over(endpoint, _rate["endpoint"], now):
            _rate["refused"] += 1
            return server.json_response(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": "Request rate limit exceeded. Learn more about rate limits "
                        "here https://stripe.com/docs/rate-limits.",
                    }
                },
                status=429,
            )
        _seen["*"].append(now)
        _seen[endpoint].append(now)
    return await handler(request)


async def set_rate_limit(request):
    given = await request.json()
    _rate["global"], _rate["endpoint"] = int(given.get("global", 0)), int(given.get("endpoint", 0))
    _rate["refused"] = 0
    _seen.clear()
    return server.json_response(dict(_rate))


async def rate_limit(request):
    return server.json_response(dict(_rate))


async def recorded_requests(request):
    return server.json_response({"requests": _requests})


@web.middleware
async def idempotency_middleware(request, handler):
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key or request.path.startswith("/_config/"):
        return await handler(request)
    body = await request.read()
    fingerprint = hashlib.sha256(request.path.encode() + b"\n" + body).hexdigest()
    if key in _idempotent:
        seen, status, payload = _idempotent[key]
        if seen != fingerprint:
            return server.json_response(
                {
                    "error": {
                        "type": "idempotency_error",
                        "message": (
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with."
                        ),
                    }
                },
                status=400,
            )
        response = web.Response(body=payload, status=status, content_type="application/json")
        response.headers["Idempotent-Replayed"] = "true"
        return response
    if key in _in_flight:
        # Stripe: a second request with a key whose first request is still running.
        return server.json_response(
            {
                "error": {
                    "type": "idempotency_error",
                    "code": "idempotency_key_in_use",
                    "message": (
                        "There is currently another in-progress request using this "
                        "Idempotent Key (that probably means you submitted twice)."
                    ),
                }
            },
            status=409,
        )
    _in_flight.add(key)
    try:
        # Tests hold a request in flight this long (to meet its twin on the way).
        await asyncio.sleep(min(int(request.headers.get("X-Test-Hold-Ms", "0") or 0), 5000) / 1000)
        response = await handler(request)
    except UserError as error:
        response = error.to_response()
    finally:
        _in_flight.discard(key)
    if response.status < 400 or response.status == 402:
        _idempotent[key] = (fingerprint, response.status, response.body)
    return response


# --- webhooks of a reset are not delivered -------------------------------------------
# localstripe sends an event a second after it happens, to the endpoints registered then.
# A test that ends (and resets the state) within that second would otherwise have its
# last events delivered to the next test's endpoint. Each reset starts a new epoch, and
# an event is delivered only in the epoch it was made in.

_epoch = [0]


async def _deliver(event, born: int) -> None:
    payload = json.dumps(event._export(), indent=2, sort_keys=True).encode()
    await asyncio.sleep(1)
    if born != _epoch[0]:
        return  # made before a reset: its test has ended
    for hook in list(_webhooks.values()):
        if hook.events is not None and event.type not in hook.events:
            continue
        signed = b"%d.%s" % (event.created, payload)
        signature = hmac.new(hook.secret.encode(), signed, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": f"t={event.created},v1={signature}",
        }
        async with aiohttp.ClientSession() as client:
            try:
                async with client.post(hook.url, data=payload, headers=headers) as answer:
                    await answer.read()
            except aiohttp.ClientError:
                pass  # Stripe would retry; this fake does not (testing-notes.md)


localstripe_webhooks._send_webhook = lambda event: _deliver(event, _epoch[0])


async def flush_everything(request):
    _epoch[0] += 1
    _requests.clear()
    _in_flight.clear()
    _money.reset()
    store.clear()
    _idempotent.clear()
    _refunds_of_charge.clear()
    _webhooks.clear()
    _pending_debits.clear()
    _cash.clear()
    DEBIT_DELAY[0] = START_DELAY[0]
    _rate.update({"global": 0, "endpoint": 0, "refused": 0})
    _seen.clear()
    return web.Response()


# --- the platform's balance ---------------------------------------------------------
# Stripe pays a transfer from the platform's available balance: what its charges
# brought in, less refunds and transfers (Transfers, create: "balance_insufficient").
# Kept as running sums; a charge counts once it has succeeded.


class _Money:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.settled = self.refunded = self.transferred = 0
        self.waiting: list = []  # charges not yet succeeded or failed

    def available(self) -> int:
        still = []
        for charge in self.waiting:
            if charge.status == "succeeded":
                self.settled += charge.amount
            elif charge.status != "failed":
                still.append(charge)
        self.waiting = still
        return self.settled - self.refunded - self.transferred


_money = _Money()
_charge_init = Charge.__init__


def _charge_init_counted(self, *args, **kwargs):
    _charge_init(self, *args, **kwargs)
    _money.waiting.append(self)


Charge.__init__ = _charge_init_counted


# --- refunds of a charge, indexed ----------------------------------------------
# localstripe finds a charge's refunds by scanning every stored object, and it
# does so each time it shows a charge (in every PaymentIntent and event): one
# request then costs time in proportion to everything made before. An index
# keeps each request's cost its own, as at Stripe.

_refunds_of_charge: dict[str, list] = defaultdict(list)
_refund_init = Refund.__init__


def _refund_init_indexed(
    self,
    charge=None,
    payment_intent=None,
    amount=None,
    origin=None,
    customer=None,
    currency=None,
    **kwargs,
):
    if origin is not None or customer is not None or currency is not None:
        if origin != "customer_balance" or charge is not None or payment_intent is not None:
            raise UserError(
                400,
                "A refund names a charge or payment_intent, or has origin customer_balance "
                "with a customer, amount and currency.",
                {"param": "origin"},
            )
        _refund_from_balance(self, customer, amount, currency, kwargs.get("metadata"))
        return
    _check_refund_fits(charge, payment_intent, amount)
    _refund_init(self, charge=charge, payment_intent=payment_intent, amount=amount, **kwargs)
    _refunds_of_charge[self.charge].append(self)
    _money.refunded += self.amount


def _check_refund_fits(charge_id, payment_intent, amount) -> None:
    """A refund is refused, before anything is made, when it is larger than what
    remains of its charge (Refunds, create: ``amount``)."""
    amount = resources.try_convert_to_int(amount)
    if amount is None:
        return  # the whole remainder: localstripe's own checks apply
    if charge_id is None and isinstance(payment_intent, str):
        intent = PaymentIntent._api_retrieve(payment_intent)
        charge_id = intent.latest_charge.id if intent.latest_charge else None
    if not isinstance(charge_id, str):
        return
    charge = Charge._api_retrieve(charge_id)
    remaining = charge.amount - sum(r.amount for r in _refunds_of_charge.get(charge_id, ()))
    if isinstance(amount, int) and amount > remaining:
        raise UserError(
            400,
            f"Refund amount ({amount}) is greater than the remaining amount of the "
            f"charge ({remaining}).",
            {"param": "amount"},
        )


def _charge_refunds(self):
    listing = List("/v1/charges/" + self.id + "/refunds")
    listing._list = list(_refunds_of_charge.get(self.id, ()))
    return listing


Refund.__init__ = _refund_init_indexed
Charge.refunds = property(_charge_refunds)


# --- PaymentIntent -------------------------------------------------------------

_pi_init = PaymentIntent.__init__


# The PaymentIntents made by the request being served (the server handles one at a time).
_made: list[PaymentIntent] = []


def _pi_init_extended(
    self,
    transfer_group=None,
    description=None,
    allowed_payment_method_types=None,
    automatic_payment_methods=None,
    return_url=None,
    mandate=None,
    **kwargs,
):
    _check_payment_method_types(allowed_payment_method_types)
    _check_allowed(allowed_payment_method_types, kwargs.get("payment_method"))
    mandate = _check_mandate(kwargs.get("payment_method"), mandate, kwargs.get("customer"))
    _pi_init(self, **kwargs)
    self.transfer_group = transfer_group
    self.description = description
    self.return_url = return_url
    self.automatic_payment_methods = automatic_payment_methods
    self.allowed_payment_method_types = allowed_payment_method_types or ["card"]
    self.mandate = mandate
    self._funded = 0
    _made.append(self)


def _check_payment_method_types(allowed) -> None:
    if allowed is None:
        return
    if not isinstance(allowed, list) or not allowed:
        raise UserError(400, "Invalid array", {"param": "allowed_payment_method_types"})
    for name in allowed:
        if name not in KNOWN_TYPES:  # the types this fake knows
            raise UserError(
                400,
                f"The payment method type {name!r} is invalid.",
                {"param": "allowed_payment_method_types"},
            )


def _check_redirects(kind: str, data: dict, confirm) -> None:
    """Confirming with automatic payment methods that may redirect needs a return_url."""
    if resources.try_convert_to_bool(confirm) is not True or data.get("return_url"):
        return
    automatic = data.get("automatic_payment_methods")
    if isinstance(automatic, dict):
        if automatic.get("allow_redirects") not in (None, "always", "never"):
            raise UserError(400, "Invalid allow_redirects", {"param": "automatic_payment_methods"})
        if automatic.get("allow_redirects") == "never":
            return
    raise UserError(
        400,
        f"A `return_url` must be specified because this {kind} is configured to "
        "automatically accept the payment methods enabled in the Dashboard, some of which "
        "may require a full page redirect to succeed. If you do not want to accept "
        "redirect-based payment methods, set `automatic_payment_methods[enabled]` to "
        "`true` and `automatic_payment_methods[allow_redirects]` to `never` when creating "
        "Setup Intents and Payment Intents.",
        {"param": "return_url"},
    )


def _check_off_session(data: dict, confirm, off_session) -> None:
    """Off-session needs confirm=true and a payment method saved on the given customer."""
    if off_session is None:
        return
    if resources.try_convert_to_bool(confirm) is not True:
        raise UserError(
            400, "off_session can only be used with confirm=true.", {"param": "off_session"}
        )
    customer, method_id = data.get("customer"), data.get("payment_method")
    if not customer or not method_id:
        raise UserError(
            400,
            "An off-session payment needs a customer and a payment method saved on it.",
            {"param": "customer" if not customer else "payment_method"},
        )
    method = PaymentMethod._api_retrieve(method_id)
    if getattr(method, "customer", None) != customer:
        raise UserError(
            400,
            f"The provided PaymentMethod {method_id} is not attached to the Customer "
            f"{customer}; attach it (save it) before charging it off-session.",
            {"param": "payment_method"},
        )


PaymentIntent.__init__ = _pi_init_extended
_pi_create = PaymentIntent._api_create.__func__


def _refuse_renamed(data: dict) -> None:
    """The pinned version calls it ``allowed_payment_method_types``."""
    if "payment_method_types" in data:
        raise UserError(400, "Unexpected payment_method_types")


# Stripe's minimum charge amount for EUR (Currencies: "Minimum and maximum charge amounts").
MINIMUM_CENTS = {"eur": 50}


def _check_minimum(data: dict) -> None:
    amount = resources.try_convert_to_int(data.get("amount"))
    minimum = MINIMUM_CENTS.get(str(data.get("currency", "")).lower())
    if isinstance(amount, int) and minimum and 0 < amount < minimum:
        raise UserError(
            400,
            f"Amount must be at least {minimum} cents.",
            {"code": "amount_too_small", "param": "amount"},
        )


def _pi_create_extended(cls, confirm=None, off_session=None, payment_method_data=None, **data):
    _refuse_renamed(data)
    _check_minimum(data)
    if payment_method_data is not None:
        data["payment_method"] = _balance_method_for(payment_method_data, data, off_session).id
    off = resources.try_convert_to_bool(off_session)
    method = data.get("payment_method")
    _check_redirects("PaymentIntent", data, confirm)
    _check_off_session(data, confirm, off_session)
    _made.clear()
    try:
        if off is True and method and _needs_authentication(method):
            intent = _pi_create(cls, confirm=None, **data)
            intent._authentication_failed, intent.payment_method = True, None
            schedule_webhook(Event("payment_intent.payment_failed", intent))
            raise UserError(
                402,
                "This payment requires authentication.",
                {
                    "code": "authentication_required",
                    "decline_code": "authentication_required",
                    "payment_intent": intent._export(),
                },
            )
        return _pi_create(cls, confirm=confirm, off_session=off_session, **data)
    except UserError as error:
        if error.code == 402 and "payment_intent" not in error.body["error"] and _made:
            error.body["error"]["payment_intent"] = _made[-1]._export()
        raise


def _needs_authentication(method_id: str) -> bool:
    try:
        method = PaymentMethod._api_retrieve(method_id)
    except UserError:
        return False
    return getattr(method, "_card_number", None) == AUTHENTICATION_REQUIRED_CARD


PaymentIntent._api_create = classmethod(_pi_create_extended)
_pi_cancel = PaymentIntent._api_cancel.__func__
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")


def _pi_cancel_extended(cls, id, cancellation_reason=None, **kwargs):
    if cancellation_reason is not None and cancellation_reason not in CANCELLATION_REASONS:
        raise UserError(400, "Invalid cancellation_reason", {"param": "cancellation_reason"})
    intent = _pi_cancel(cls, id, **kwargs)
    intent.cancellation_reason = cancellation_reason
    _cancel_returns_funds(intent)
    return intent


PaymentIntent._api_cancel = classmethod(_pi_cancel_extended)


# --- SetupIntent ---------------------------------------------------------------

_si_init = SetupIntent.__init__


def _si_init_extended(
    self,
    payment_method=None,
    confirm=None,
    allowed_payment_method_types=None,
    automatic_payment_methods=None,
    return_url=None,
    mandate_data=None,
    **kwargs,
):
    _check_payment_method_types(allowed_payment_method_types)
    _check_allowed(allowed_payment_method_types, payment_method)
    _si_init(self, **kwargs)
    self.mandate = None
    self._mandate_data = mandate_data


SetupIntent.__init__ = _si_init_extended


def _si_create_extended(cls, payment_method=None, confirm=None, **data):
    _refuse_renamed(data)
    _check_redirects("Setup Intent", data, confirm)
    if payment_method is not None:
        method = PaymentMethod._api_retrieve(payment_method)  # 404 before anything is created
        if method.type == "sepa_debit" and resources.try_convert_to_bool(confirm):
            _check_mandate_data(data.get("mandate_data"))
    intent = cls(**data)
    if payment_method is not None and resources.try_convert_to_bool(confirm):
        method = PaymentMethod._api_retrieve(payment_method)
        intent._attach_pm(method)
        if intent.status == "requires_action" and (
            getattr(method, "_card_number", None) == AUTHENTICATION_REQUIRED_CARD
        ):
            intent.status, intent.next_action = "succeeded", None
        if intent.status == "succeeded" and intent.customer:
            method.customer = intent.customer
        if intent.status == "succeeded" and method.type == "sepa_debit":
            intent.mandate = _mandate_for(method, intent._mandate_data).id
    elif payment_method is not None:
        intent.payment_method = PaymentMethod._api_retrieve(payment_method).id
    return intent


SetupIntent._api_create = classmethod(_si_create_extended)


# --- test PaymentMethods ---------------------------------------------------------

_canonical = PaymentMethod._try_get_canonical_test_article.__func__


def _canonical_extended(cls, id):
    if id == "pm_card_authenticationRequired":
        return PaymentMethod(
            type="card",
            card={
                "number": AUTHENTICATION_REQUIRED_CARD,
                "exp_month": "12",
                "exp_year": "2030",
                "cvc": "123",
            },
        )
    return _canonical(cls, id)


PaymentMethod._try_get_canonical_test_article = classmethod(_canonical_extended)


# --- SEPA Direct Debit and EU bank transfers ---------------------------------------
# As Stripe's API reference and its SEPA and bank-transfer guides describe them:
# - a ``sepa_debit`` PaymentMethod needs the holder's name and e-mail (billing_details)
#   and a valid IBAN; a SetupIntent confirmed for it needs ``mandate_data`` with the
#   customer's acceptance and makes a Mandate (``setup_intent.mandate``); an off-session
#   PaymentIntent for it uses that mandate (or names it: ``mandate``);
# - a SEPA debit is ``processing`` until the bank answers (days at Stripe): here until
#   ``POST /_config/debits/settle`` (tests) or ``DEBIT_DELAY`` seconds (make run); the test
#   IBAN DE62370400440532013001 then fails (``insufficient_funds``), others succeed;
# - a ``customer_balance`` PaymentIntent for an EU bank transfer (payment_method_data
#   type ``customer_balance``; payment_method_options ``funding_type: bank_transfer``,
#   ``bank_transfer.type: eu_bank_transfer`` with a country) needs a customer, waits in
#   ``requires_action`` with ``next_action.display_bank_transfer_instructions`` (a virtual
#   IBAN of the customer and a reference), and is funded by incoming transfers:
#   ``POST /v1/test_helpers/customers/{id}/fund_cash_balance`` (amount, currency,
#   reference) puts money in the customer's cash balance, which is applied to the open
#   intent whose reference it carries (else to one whose remaining amount it equals).
#   Part of the amount: ``payment_intent.partially_funded``; all of it: succeeded. What
#   is left in the balance raises ``cash_balance.funds_available`` and can be returned
#   with a refund ``origin: customer_balance`` (``customer``, ``amount``, ``currency``;
#   never more than the balance). Cancelling a partly funded intent returns its funds
#   to the cash balance.

KNOWN_TYPES = ("card", "sepa_debit", "customer_balance")
EU_TRANSFER_COUNTRIES = ("BE", "DE", "ES", "FR", "IE", "NL")
# Seconds until a SEPA debit is answered by itself (None: only when settled by a test).
DEBIT_DELAY: list[float | None] = [None]
_pending_debits: list = []  # (charge, on_success, on_failure)
_cash: dict[str, int] = defaultdict(int)  # a customer's cash balance, in cents (EUR)


def _iban_valid(iban: str) -> bool:
    """ISO 13616: two letters, two check digits, up to 30 letters and digits; mod 97 == 1."""
    if not (15 <= len(iban) <= 34) or not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    if not iban.isascii() or not iban.isalnum():
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _pm_init_extended(self, type=None, billing_details=None, sepa_debit=None, **kwargs):
    if type == "sepa_debit":
        details = billing_details if isinstance(billing_details, dict) else {}
        for field in ("name", "email"):
            if not details.get(field):
                raise UserError(
                    400,
                    f"Missing required param: billing_details[{field}].",
                    {"param": f"billing_details[{field}]"},
                )
        iban = "".join(str((sepa_debit or {}).get("iban", "")).split()).upper()
        if not _iban_valid(iban):
            raise UserError(
                400,
                "The IBAN you provided is invalid.",
                {"code": "invalid_bank_account_iban", "param": "sepa_debit[iban]"},
            )
    _pm_init(self, type=type, billing_details=billing_details, sepa_debit=sepa_debit, **kwargs)


_pm_init = PaymentMethod.__init__
PaymentMethod.__init__ = _pm_init_extended


def _check_allowed(allowed, method_id) -> None:
    """A payment method of a type the intent does not allow is refused."""
    if not method_id or not isinstance(method_id, str):
        return
    method = PaymentMethod._api_retrieve(method_id)
    if method.type not in (allowed or ["card"]):
        raise UserError(
            400,
            f"The PaymentMethod provided ({method.type}) is not allowed for this intent; "
            "its allowed_payment_method_types are " + ", ".join(allowed or ["card"]) + ".",
            {"param": "payment_method"},
        )


class Mandate(StripeObject):
    object = "mandate"
    _id_prefix = "mandate_"

    def __init__(self, payment_method, customer_acceptance):
        super().__init__()
        self.payment_method = payment_method
        self.customer_acceptance = customer_acceptance
        self.status = "active"
        self.type = "multi_use"
        self.multi_use = {}
        self.payment_method_details = {"type": "sepa_debit", "sepa_debit": {"reference": self.id}}

    @classmethod
    def _api_create(cls, **data):
        raise UserError(405, "Method Not Allowed")


def _check_mandate_data(mandate_data) -> dict:
    """``mandate_data.customer_acceptance``: online (with ip_address and user_agent) or
    offline, as a SetupIntent for a SEPA debit needs it."""
    acceptance = (
        (mandate_data or {}).get("customer_acceptance") if isinstance(mandate_data, dict) else None
    )
    if not isinstance(acceptance, dict) or acceptance.get("type") not in ("online", "offline"):
        raise UserError(
            400,
            "A SEPA Direct Debit setup needs mandate_data[customer_acceptance].",
            {"param": "mandate_data[customer_acceptance]"},
        )
    if acceptance["type"] == "online":
        online = acceptance.get("online") if isinstance(acceptance.get("online"), dict) else {}
        for field in ("ip_address", "user_agent"):
            if not online.get(field):
                raise UserError(
                    400,
                    f"Missing required param: mandate_data[customer_acceptance][online][{field}].",
                    {"param": f"mandate_data[customer_acceptance][online][{field}]"},
                )
    return acceptance


def _mandate_for(method, mandate_data) -> Mandate:
    mandate = Mandate(method.id, _check_mandate_data(mandate_data))
    method._mandate = mandate.id
    return mandate


def _check_mandate(method_id, mandate, customer):
    """An off-session SEPA debit uses the PaymentMethod's mandate; another is refused."""
    if not isinstance(method_id, str):
        return mandate
    try:
        method = PaymentMethod._api_retrieve(method_id)
    except UserError:
        return mandate
    if method.type != "sepa_debit":
        if mandate is not None:
            raise UserError(400, "A mandate is only for debits.", {"param": "mandate"})
        return None
    own = getattr(method, "_mandate", None)
    if own is None or (mandate is not None and mandate != own):
        raise UserError(
            400,
            "This PaymentMethod has no active mandate: set it up with mandate_data first.",
            {"param": "mandate"},
        )
    return own


def _balance_method_for(method_data, data: dict, off_session):
    """The ``customer_balance`` PaymentMethod of an EU bank transfer (checked as Stripe does)."""
    if not isinstance(method_data, dict) or method_data.get("type") != "customer_balance":
        raise UserError(400, "Invalid payment_method_data[type].", {"param": "payment_method_data"})
    if data.get("payment_method"):
        raise UserError(
            400,
            "You cannot pass both payment_method and payment_method_data.",
            {"param": "payment_method_data"},
        )
    if off_session is not None:
        raise UserError(
            400, "customer_balance payments cannot be made off-session.", {"param": "off_session"}
        )
    customer = data.get("customer")
    if not customer:
        raise UserError(400, "A customer_balance payment needs a customer.", {"param": "customer"})
    options = (data.get("payment_method_options") or {}).get("customer_balance") or {}
    transfer = options.get("bank_transfer") if isinstance(options, dict) else None
    country = ((transfer or {}).get("eu_bank_transfer") or {}).get("country")
    if (
        options.get("funding_type") != "bank_transfer"
        or not isinstance(transfer, dict)
        or transfer.get("type") != "eu_bank_transfer"
        or country not in EU_TRANSFER_COUNTRIES
    ):
        raise UserError(
            400,
            "An EU bank transfer needs payment_method_options[customer_balance] with "
            "funding_type bank_transfer, bank_transfer[type] eu_bank_transfer and a country.",
            {"param": "payment_method_options[customer_balance]"},
        )
    if str(data.get("currency", "")).lower() != "eur":
        raise UserError(400, "EU bank transfers are in EUR.", {"param": "currency"})
    Customer._api_retrieve(customer)
    method = PaymentMethod.__new__(PaymentMethod)
    StripeObject.__init__(method)
    method.type, method.customer_balance, method.billing_details = "customer_balance", {}, {}
    method.customer, method.metadata = customer, {}
    method._country = country
    return method


def _virtual_iban(customer: str, country: str) -> str:
    """The customer's own receiving IBAN (stable per customer, valid check digits)."""
    digits = str(int(hashlib.sha256(customer.encode()).hexdigest(), 16))[:10]
    body = "STRP" + digits
    check = 98 - int("".join(str(int(ch, 36)) for ch in body + country + "00")) % 97
    return f"{country}{check:02d}{body}"


_pi_confirm_inner = PaymentIntent._confirm


def _confirm_extended(self, on_failure_now):
    method = PaymentMethod._api_retrieve(self.payment_method)
    if method.type != "customer_balance":
        _pi_confirm_inner(self, on_failure_now)
        if method.type == "sepa_debit" and self.status == "processing":
            schedule_webhook(Event("payment_intent.processing", self))
        return
    self._reference = resources.random_id(12).upper()
    self.next_action = {
        "type": "display_bank_transfer_instructions",
        "display_bank_transfer_instructions": _instructions(self, method),
    }
    schedule_webhook(Event("payment_intent.requires_action", self))


def _instructions(intent, method) -> dict:
    return {
        "type": "eu_bank_transfer",
        "amount_remaining": intent.amount - intent._funded,
        "currency": intent.currency,
        "reference": intent._reference,
        "hosted_instructions_url": f"{PUBLIC_BASE}/_config/instructions/{intent.id}",
        "financial_addresses": [
            {
                "type": "iban",
                "supported_networks": ["sepa"],
                "iban": {
                    "account_holder_name": "Stripe Technology Europe Ltd",
                    "bic": "STPEIE2D",
                    "country": method._country,
                    "iban": _virtual_iban(method.customer, method._country),
                },
            }
        ],
    }


PaymentIntent._confirm = _confirm_extended


def _initialize_extended(self, on_success=None, on_failure_now=None, on_failure_later=None):
    """A SEPA debit waits for the bank: answered by ``_settle_debits`` (or its delay)."""
    if not self._is_async_payment_method():
        return _initialize_charge(self, on_success, on_failure_now, on_failure_later)
    self.status = "pending"
    _pending_debits.append((self, on_success, on_failure_later))
    if DEBIT_DELAY[0] is not None:
        asyncio.get_event_loop().call_later(DEBIT_DELAY[0], _settle_debits)
    return None


_initialize_charge = Charge._initialize_charge
Charge._initialize_charge = _initialize_extended


def _settle_debits() -> int:
    """Answer every SEPA debit waiting for the bank: the failing IBAN fails
    (``insufficient_funds``), the others are paid."""
    answered = 0
    while _pending_debits:
        charge, on_success, on_failure = _pending_debits.pop(0)
        if not charge._authorized:
            charge.status, charge.failure_code = "failed", "insufficient_funds"
            charge.failure_message = "The account has insufficient funds."
            if on_failure:
                on_failure()
        else:
            transaction = resources.BalanceTransaction(
                amount=charge.amount,
                currency=charge.currency,
                description=charge.description,
                exchange_rate=1.0,
                reporting_category="charge",
                source=charge.id,
                type="charge",
            )
            charge.balance_transaction, charge.status = transaction.id, "succeeded"
            if on_success:
                on_success()
        answered += 1
    return answered


async def settle_debits(request):
    given = await request.json() if request.can_read_body else {}
    if "delay" in given:
        DEBIT_DELAY[0] = None if given["delay"] is None else float(given["delay"])
    return server.json_response({"settled": _settle_debits(), "delay": DEBIT_DELAY[0]})


class CashBalanceTransaction(StripeObject):
    object = "customer_cash_balance_transaction"
    _id_prefix = "ccsbtxn_"

    def __init__(self, customer, kind, amount, currency, reference=None, intent=None):
        super().__init__()
        self.customer, self.type, self.currency = customer, kind, currency
        self.net_amount = amount
        _cash[customer] += amount
        self.ending_balance = _cash[customer]
        if kind == "funded":
            self.funded = {"bank_transfer": {"type": "eu_bank_transfer", "reference": reference}}
        elif kind == "applied_to_payment":
            self.applied_to_payment = {"payment_intent": intent}
        elif kind == "unapplied_from_payment":
            self.unapplied_from_payment = {"payment_intent": intent}
        elif kind == "refunded_from_payment":
            self.refunded_from_payment = {"refund": reference}


class CashBalance(StripeObject):
    """What ``GET /v1/customers/{id}/cash_balance`` answers (not stored)."""

    object = "cash_balance"

    def __init__(self, customer):  # not in the store: no id
        self.customer = customer
        self.available = {"eur": _cash[customer]} if _cash[customer] else {}
        self.livemode = False
        self.settings = {"reconciliation_mode": "automatic", "using_merchant_default": True}


def _open_transfers(customer: str) -> list:
    return [
        intent
        for intent in PaymentIntent._api_list_all("/v1/payment_intents")._list
        if intent.customer == customer
        and intent.status == "requires_action"
        and getattr(intent, "_reference", None)
    ]


def _reconcile(customer: str, reference: str | None) -> None:
    """Apply the customer's cash balance to the open intent it is for (automatic mode)."""
    open_ = _open_transfers(customer)
    chosen = [i for i in open_ if reference and i._reference == reference.strip().upper()]
    if not chosen:
        chosen = [i for i in open_ if i.amount - i._funded == _cash[customer]]
    if chosen and _cash[customer] > 0:
        intent = chosen[0]
        applied = min(_cash[customer], intent.amount - intent._funded)
        CashBalanceTransaction(customer, "applied_to_payment", -applied, "eur", intent=intent.id)
        intent._funded += applied
        if intent._funded < intent.amount:
            method = PaymentMethod._api_retrieve(intent.payment_method)
            intent.next_action["display_bank_transfer_instructions"] = _instructions(intent, method)
            schedule_webhook(Event("payment_intent.partially_funded", intent))
        else:
            intent.next_action = None
            intent._create_charge(on_failure_now=None)
    if _cash[customer] > 0:
        schedule_webhook(Event("cash_balance.funds_available", CashBalance(customer)))


async def fund_cash_balance(request):
    """``POST /v1/test_helpers/customers/{customer}/fund_cash_balance``: an incoming transfer."""
    customer = request.match_info["id"]
    body = (await request.read()).decode()
    params = server.unflatten_data(MultiDict(parse_qsl(body, keep_blank_values=True)))
    unknown = set(params) - {"amount", "currency", "reference", "expand"}
    if unknown:
        raise UserError(400, "Unexpected " + ", ".join(sorted(unknown)))
    amount = resources.try_convert_to_int(params.get("amount"))
    if not isinstance(amount, int) or amount <= 0:
        raise UserError(400, "Invalid positive integer", {"param": "amount"})
    if str(params.get("currency", "")).lower() != "eur":
        raise UserError(400, "Invalid currency", {"param": "currency"})
    Customer._api_retrieve(customer)
    made = CashBalanceTransaction(customer, "funded", amount, "eur", params.get("reference"))
    _reconcile(customer, params.get("reference"))
    return server.json_response(made._export())


async def cash_balance(request):
    customer = request.match_info["id"]
    Customer._api_retrieve(customer)
    return server.json_response(CashBalance(customer)._export())


def _refund_from_balance(self, customer, amount, currency, metadata) -> None:
    """A refund ``origin: customer_balance``: money in the cash balance back to the customer."""
    amount = resources.try_convert_to_int(amount)
    if not isinstance(customer, str) or not customer.startswith("cus_"):
        raise UserError(400, "Missing required param: customer.", {"param": "customer"})
    if not isinstance(amount, int) or amount <= 0:
        raise UserError(400, "Invalid positive integer", {"param": "amount"})
    if str(currency or "").lower() != "eur":
        raise UserError(400, "Missing required param: currency.", {"param": "currency"})
    Customer._api_retrieve(customer)
    if amount > _cash[customer]:
        raise UserError(
            400,
            f"The refund amount ({amount}) is greater than the customer's cash balance "
            f"({_cash[customer]}).",
            {"code": "balance_insufficient", "param": "amount"},
        )
    StripeObject.__init__(self)
    self.amount, self.currency, self.customer = amount, "eur", customer
    self.origin, self.charge, self.payment_intent = "customer_balance", None, None
    self.metadata, self.status, self.date = metadata or {}, "succeeded", self.created
    CashBalanceTransaction(customer, "refunded_from_payment", -amount, "eur", reference=self.id)


def _cancel_returns_funds(intent) -> None:
    """Cancelling a partly funded bank transfer returns its funds to the cash balance."""
    funded = getattr(intent, "_funded", 0)
    if funded and intent.latest_charge is None:
        intent._funded = 0
        CashBalanceTransaction(
            intent.customer, "unapplied_from_payment", funded, "eur", intent=intent.id
        )
        schedule_webhook(Event("cash_balance.funds_available", CashBalance(intent.customer)))


# --- Connect ---------------------------------------------------------------------


class Account(StripeObject):
    object = "account"
    _id_prefix = "acct_"

    def __init__(
        self,
        type=None,
        country=None,
        email=None,
        capabilities=None,
        business_type=None,
        metadata=None,
        tos_acceptance=None,
        **kwargs,
    ):
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        if type not in ("express", "standard", "custom"):
            raise UserError(400, "Missing required param: type.", {"param": "type"})
        agreement = (tos_acceptance or {}).get("service_agreement", "full")
        if agreement not in ("full", "recipient"):
            raise UserError(400, "Invalid service_agreement", {"param": "tos_acceptance"})
        if agreement == "recipient" and "card_payments" in (capabilities or {}):
            raise UserError(
                400,
                "Accounts under the recipient service agreement cannot request card_payments.",
                {"param": "capabilities"},
            )
        super().__init__()
        self.type = type
        self.country = country or "NL"
        self.email = email
        self.business_type = business_type
        self.metadata = metadata or {}
        self.details_submitted = False
        self.charges_enabled = False
        self.payouts_enabled = False
        self.capabilities = {name: "inactive" for name in (capabilities or {"transfers": {}})}

    def _complete_onboarding(self):
        self.details_submitted = self.charges_enabled = self.payouts_enabled = True
        self.capabilities = {name: "active" for name in self.capabilities}
        schedule_webhook(Event("account.updated", self))


class AccountLink(StripeObject):
    object = "account_link"
    _id_prefix = "acctlink_"

    def __init__(self, account=None, refresh_url=None, return_url=None, type=None, **kwargs):
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        if type not in ("account_onboarding", "account_update"):
            raise UserError(400, "Invalid type.", {"param": "type"})
        if not refresh_url or not return_url:
            raise UserError(400, "refresh_url and return_url are required.")
        Account._api_retrieve(account)
        super().__init__()
        self.account = account
        self.expires_at = self.created + 300
        self.url = f"{PUBLIC_BASE}/_config/onboarding/{account}?" + urlencode(
            {"return_url": return_url}
        )


class Transfer(StripeObject):
    object = "transfer"
    _id_prefix = "tr_"

    def __init__(
        self,
        amount=None,
        currency=None,
        destination=None,
        transfer_group=None,
        description=None,
        metadata=None,
        source_transaction=None,
        **kwargs,
    ):
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        amount = resources.try_convert_to_int(amount)
        if not isinstance(amount, int) or amount <= 0:
            raise UserError(400, "Invalid positive integer", {"param": "amount"})
        if not isinstance(currency, str) or len(currency) != 3:
            raise UserError(400, "Invalid currency", {"param": "currency"})
        account = Account._api_retrieve(destination)
        if account.capabilities.get("transfers") != "active":
            raise UserError(
                400,
                (
                    "Your destination account needs to have at least one of the following "
                    "capabilities enabled: transfers"
                ),
                {"code": "insufficient_capabilities_for_transfer"},
            )
        if amount > _money.available():
            raise UserError(
                400,
                "You have insufficient available funds in your Stripe account.",
                {"code": "balance_insufficient", "param": "amount"},
            )
        super().__init__()
        self.amount = amount
        self.amount_reversed = 0
        self.currency = currency.lower()
        self.destination = destination
        self.transfer_group = transfer_group
        self.description = description
        self.source_transaction = source_transaction
        self.metadata = metadata or {}
        self.reversed = False
        _money.transferred += amount
        schedule_webhook(Event("transfer.created", self))

    @classmethod
    def _api_list_all(
        cls, url, transfer_group=None, destination=None, limit=None, starting_after=None
    ):
        listing = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        listing._list = [
            t
            for t in listing._list
            if (transfer_group is None or t.transfer_group == transfer_group)
            and (destination is None or t.destination == destination)
        ]
        return listing


async def bulk_payment_intents(request):
    """Benchmarks only: confirm many card PaymentIntents in one request.

    Body: ``{"customer", "payment_method", "currency", "amounts": [...]}``;
    answers ``{"ids": [...]}`` in the order of ``amounts``. Each is made exactly
    as ``POST /v1/payment_intents`` with ``confirm=true`` makes it.
    """
    body = await request.json()
    ids = [
        PaymentIntent._api_create(
            confirm=True,
            amount=amount,
            currency=body["currency"],
            customer=body["customer"],
            payment_method=body["payment_method"],
            allowed_payment_method_types=["card"],
            automatic_payment_methods={"enabled": True, "allow_redirects": "never"},
        ).id
        for amount in body["amounts"]
    ]
    return server.json_response({"ids": ids})


async def complete_onboarding(request):
    account = Account._api_retrieve(request.match_info["id"])
    account._complete_onboarding()
    raise web.HTTPFound(request.query.get("return_url", "/"))


def _replace_route(app: web.Application, method: str, path: str, func) -> None:
    """localstripe bound its extra routes to the functions it had at import; point one at
    the extended function."""
    for route in app.router.routes():
        if route.method == method and route.resource.canonical == path:
            route._handler = server.api_extra(func, path)
            return
    raise LookupError(f"{method} {path} is not a localstripe route")


def _extend_app(app: web.Application) -> None:
    _replace_route(app, "POST", "/v1/payment_intents/{id}/cancel", PaymentIntent._api_cancel)
    app.middlewares.insert(0, idempotency_middleware)
    app.middlewares.insert(0, recording_middleware)
    app.middlewares.insert(0, rate_limit_middleware)  # outermost: a 429 is not a request
    app.router.add_post("/_config/rate_limit", set_rate_limit)
    app.router.add_get("/_config/rate_limit", rate_limit)
    app.router.add_get("/_config/requests", recorded_requests)
    for cls in (Account, AccountLink, Transfer):
        plural = "/v1/" + cls.object + "s"
        app.router.add_route("POST", plural, server.api_create(cls, plural))
        app.router.add_route("GET", plural + "/{id}", server.api_retrieve(cls, plural))
        app.router.add_route("GET", plural, server.api_list_all(cls, plural))
    app.router.add_get("/_config/onboarding/{id}", complete_onboarding)
    app.router.add_post("/v1/test_helpers/customers/{id}/fund_cash_balance", fund_cash_balance)
    app.router.add_get("/v1/customers/{id}/cash_balance", cash_balance)
    app.router.add_get("/v1/mandates/{id}", server.api_retrieve(Mandate, "/v1/mandates"))
    app.router.add_post("/_config/debits/settle", settle_debits)
    app.router.add_get("/_config/instructions/{id}", transfer_instructions)
    app.router.add_delete("/_config/everything", flush_everything)
    app.router.add_post("/_config/bulk_payment_intents", bulk_payment_intents)


async def transfer_instructions(request):
    """The hosted instructions page of a bank transfer, in plain text."""
    intent = PaymentIntent._api_retrieve(request.match_info["id"])
    shown = (intent.next_action or {}).get("display_bank_transfer_instructions") or {}
    address = (shown.get("financial_addresses") or [{}])[0].get("iban", {})
    lines = [
        f"Amount remaining: {shown.get('amount_remaining', 0)} cents",
        f"IBAN: {address.get('iban', '')}",
        f"BIC: {address.get('bic', '')}",
        f"Reference: {shown.get('reference', '')}",
    ]
    return web.Response(text="\n".join(lines))


PUBLIC_BASE = "http://127.0.0.1"
START_DELAY: list[float | None] = [None]
_ = (Customer, List)  # the classes the extension builds on, imported for readers


def main() -> None:
    global PUBLIC_BASE
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--debit-delay",
        type=float,
        default=None,
        help="seconds until a SEPA debit is answered by itself (default: when settled)",
    )
    args = parser.parse_args()
    PUBLIC_BASE = f"http://127.0.0.1:{args.port}"
    DEBIT_DELAY[0] = START_DELAY[0] = args.debit_delay
    _extend_app(server.app)
    web.run_app(
        server.app, host="127.0.0.1", port=args.port, access_log=None, print=lambda *_: None
    )


if __name__ == "__main__":
    main()
