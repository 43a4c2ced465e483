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
import json
import time
from collections import defaultdict
from urllib.parse import parse_qsl, urlencode

from aiohttp import web
from localstripe import resources, server
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


async def flush_everything(request):
    _requests.clear()
    _in_flight.clear()
    _money.reset()
    store.clear()
    _idempotent.clear()
    _refunds_of_charge.clear()
    _webhooks.clear()
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


def _refund_init_indexed(self, charge=None, payment_intent=None, amount=None, **kwargs):
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
    **kwargs,
):
    _check_payment_method_types(allowed_payment_method_types)
    _pi_init(self, **kwargs)
    self.transfer_group = transfer_group
    self.description = description
    self.return_url = return_url
    self.automatic_payment_methods = automatic_payment_methods
    _made.append(self)


def _check_payment_method_types(allowed) -> None:
    if allowed is None:
        return
    if not isinstance(allowed, list) or not allowed:
        raise UserError(400, "Invalid array", {"param": "allowed_payment_method_types"})
    for name in allowed:
        if name != "card":  # the one type this fake knows
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


def _pi_create_extended(cls, confirm=None, off_session=None, **data):
    _refuse_renamed(data)
    _check_minimum(data)
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
    **kwargs,
):
    _check_payment_method_types(allowed_payment_method_types)
    _si_init(self, **kwargs)


SetupIntent.__init__ = _si_init_extended


def _si_create_extended(cls, payment_method=None, confirm=None, **data):
    _refuse_renamed(data)
    _check_redirects("Setup Intent", data, confirm)
    if payment_method is not None:
        PaymentMethod._api_retrieve(payment_method)  # 404 before anything is created
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
    app.router.add_delete("/_config/everything", flush_everything)
    app.router.add_post("/_config/bulk_payment_intents", bulk_payment_intents)


PUBLIC_BASE = "http://127.0.0.1"
_ = (Customer, List)  # the classes the extension builds on, imported for readers


def main() -> None:
    global PUBLIC_BASE
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    PUBLIC_BASE = f"http://127.0.0.1:{args.port}"
    _extend_app(server.app)
    web.run_app(
        server.app, host="127.0.0.1", port=args.port, access_log=None, print=lambda *_: None
    )


if __name__ == "__main__":
    main()
