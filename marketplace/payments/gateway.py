"""The one door to Stripe: a small interface the services use, the real SDK inside.

Invariants:
- Every POST carries an idempotency key the caller derives from a database row
  (``pledge-setup-17``, ``payment-42``): repeating a call after a crash or in a
  second process returns Stripe's first answer instead of moving money twice.
- Services see plain results and our own exceptions, never Stripe objects:
  ``Declined`` (card refused), ``AuthenticationRequired`` (3-D Secure needed),
  ``UnknownPaymentMethod``, and ``GatewayUnavailable`` for everything else
  (network, Stripe outage, a refused request), which callers retry later.
- The gateway holds its own ``StripeClient`` (key, API base), so two apps in one
  process never share global Stripe settings.
- Every request keeps to Stripe's rate limits (``payments.pacing``, shared by every
  process) and a 429 is never a failure: the sweeps' gateway (``for_sweeps``) waits
  the delay Stripe asks and sends the same request again, idempotency key and all;
  the requests' gateway waits at most ``REQUEST_PATIENCE`` and otherwise raises
  ``StripeRateLimited`` (503 with ``Retry-After`` at the edge; nothing saved).
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import stripe
from stripe._requestor_options import BaseAddresses
from stripe.params import (
    AccountCreateParams,
    AccountLinkCreateParams,
    CustomerCreateParams,
    PaymentIntentCancelParams,
    PaymentIntentCreateParams,
    PaymentIntentListParams,
    PaymentMethodCreateParams,
    RefundCreateParams,
    SetupIntentCreateParams,
    TransferCreateParams,
)

from marketplace.payments.pacing import Pacer, TooLong

log = logging.getLogger(__name__)


class GatewayError(Exception):
    def __init__(
        self, message: str, *, code: str = "", payment_intent_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.payment_intent_id = payment_intent_id


class Declined(GatewayError):
    """The card or bank refused the payment."""


class AuthenticationRequired(GatewayError):
    """The bank asks the card holder to authenticate (3-D Secure) on-session."""


class UnknownPaymentMethod(GatewayError):
    """Stripe does not know the PaymentMethod id."""


class GatewayUnavailable(GatewayError):
    """Stripe could not be reached or refused the request: try again later."""


class Refused(GatewayUnavailable):
    """Stripe refused the request as invalid (a 4xx other than a card error)."""


class StripeRateLimited(GatewayUnavailable):
    """Over Stripe's rate limit now: try again after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, code="rate_limited")
        self.retry_after = max(1, retry_after)


# A person waits this long at most for a moment under the rate limit; a sweep waits.
REQUEST_PATIENCE = 2.0
# How often a sweep's request is sent again after a 429, and the longest pause between.
RATE_RETRIES = 6
LONGEST_PAUSE = 8.0
# An object's id: a prefix, an underscore, letters and digits with at least one capital
# or digit ("pi_3Mtw...", "acct_1Nv..."); a resource's name is lower case ("payment_intents").
STRIPE_ID = re.compile(r"^[a-z]+_(?=[a-z]*[A-Z0-9])[A-Za-z0-9]+$")


def endpoint_of(method: str, url: str) -> str:
    """Stripe's name for a limit: the method and the route ("GET /v1/refunds/{id}")."""
    path = urlsplit(url).path
    route = "/".join("{id}" if STRIPE_ID.match(part) else part for part in path.split("/"))
    return f"{method.upper()} {route}"


class PacedHTTPClient(stripe.HTTPXClient):
    """The SDK's HTTP client, each request first taking its moment under the rate limits.

    A 429 (Stripe's, or the pacer's own when a person would wait too long, answered the
    way Stripe answers so the SDK raises the same error) is sent again by a patient
    client after Stripe's ``Retry-After`` or a doubling pause with jitter."""

    def __init__(self, pacer: Pacer | None, *, patient: bool) -> None:
        super().__init__(allow_sync_methods=True)
        self.pacer, self.patient = pacer, patient

    # HTTPXClient's own signature, which the SDK's base class types differently.
    def request(  # type: ignore[override]
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        endpoint = endpoint_of(method, url)
        for attempt in range(RATE_RETRIES + 1):
            if self.pacer is not None:
                try:
                    self.pacer.wait(endpoint, patience=None if self.patient else REQUEST_PATIENCE)
                except TooLong as busy:
                    return _too_many(math.ceil(busy.delay))
            content, status, answer_headers = super().request(method, url, headers, post_data)
            if status != 429:
                return content, status, answer_headers
            if not self.patient or attempt == RATE_RETRIES:
                return content, status, answer_headers
            asked = _seconds(answer_headers.get("Retry-After"))
            pause = min(LONGEST_PAUSE, asked if asked is not None else 0.5 * 2**attempt)
            log.info("Stripe said 429 to %s: again in %.2f s", endpoint, pause)
            time.sleep(pause + random.uniform(0, 0.25))  # noqa: S311 - jitter, not a secret
        raise AssertionError("unreachable")  # pragma: no cover


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _too_many(retry_after: int) -> tuple[bytes, int, dict[str, str]]:
    body = {
        "error": {
            "type": "invalid_request_error",
            "message": "Request rate limit exceeded (the app's own pacing of Stripe's limit).",
        }
    }
    return json.dumps(body).encode(), 429, {"Retry-After": str(retry_after)}


@dataclass(frozen=True)
class SetupResult:
    setup_intent_id: str
    payment_method_id: str
    brand: str
    last4: str
    method_type: str = "card"  # card | sepa_debit
    mandate_id: str | None = None


@dataclass(frozen=True)
class MandateAcceptance:
    """The buyer's acceptance of a SEPA Direct Debit mandate, as Stripe records it."""

    ip_address: str
    user_agent: str


class MandateMissing(GatewayError):
    """A SEPA Direct Debit account is saved only with the buyer's acceptance of the mandate."""


@dataclass(frozen=True)
class PaymentResult:
    payment_intent_id: str
    status: str  # succeeded | requires_action | processing | requires_payment_method | ...
    amount_cents: int
    client_secret: str | None = None
    # A bank transfer's instructions (iban, bic, account_holder_name, country, reference)
    # and what of the amount is still to arrive.
    instructions: dict[str, str] | None = None
    amount_remaining: int | None = None


@dataclass(frozen=True)
class AccountStatus:
    account_id: str
    details_submitted: bool
    payouts_enabled: bool
    transfers_active: bool


@dataclass(frozen=True)
class MoneyObject:
    """A refund or transfer as Stripe reports it."""

    id: str
    amount_cents: int
    status: str


# What the product offers: cards (saved for off-session charges at funding close, and
# paid on-session within a grace period). Automatic payment methods are on by default
# (since API version 2023-08-16) and some redirect, so Stripe refuses to confirm an
# intent without a return_url unless redirects are ruled out. Every intent confirmed
# here names the types it allows (``allowed_payment_method_types``, the pinned
# version's name) and either rules redirects out (server-side, nobody to redirect)
# or gives the return_url (the buyer paying in the browser, for 3-D Secure).
CARD_ONLY: list[str] = ["card"]
NO_REDIRECTS: Any = {"enabled": True, "allow_redirects": "never"}
# Where the virtual IBANs of bank transfers are (Stripe's EU bank transfer countries).
TRANSFER_COUNTRY = "NL"


class StripeGateway:
    """The typed door to Stripe: each method makes one documented call with parameters
    the SDK's TypedDicts (``stripe.params``) check, and maps Stripe's errors."""

    def __init__(
        self,
        api_key: str,
        api_base: str | None,
        currency: str,
        webhook_secret: str = "",
        return_url: str = "",
        *,
        pacer: Pacer | None = None,
        patient: bool = False,
    ) -> None:
        self.currency = currency.lower()
        self.webhook_secret = webhook_secret
        # Where the buyer's browser comes back after authenticating a payment (3-D Secure).
        self.return_url = return_url
        self._made_with = (api_key, api_base, currency, webhook_secret, return_url)
        self.pacer = pacer
        self._sweeps: StripeGateway | None = None
        base_addresses: BaseAddresses = {}
        if api_base:
            base_addresses = {"api": api_base, "connect": api_base}
        # httpx: one connection pool for every thread of a sweep (pyproject.toml says why).
        self.http = PacedHTTPClient(pacer, patient=patient)
        self.client = stripe.StripeClient(
            api_key or "sk_test_unconfigured",
            max_network_retries=0,
            base_addresses=base_addresses,
            http_client=self.http,
        )

    def for_sweeps(self) -> StripeGateway:
        """The same Stripe, for the scheduler: it waits its turn and sends a request again
        after a 429 instead of giving up (made once, kept)."""
        if self.http.patient:
            return self
        if self._sweeps is None:
            self._sweeps = StripeGateway(*self._made_with, pacer=self.pacer, patient=True)
        return self._sweeps

    # --- calls ---------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Stripe's exceptions as ours (see the module's docstring)."""
        try:
            yield
        except stripe.CardError as error:
            raise _card_failure(error) from None
        except stripe.RateLimitError as error:
            after = _seconds((error.headers or {}).get("Retry-After")) or 1.0
            raise StripeRateLimited(
                "Stripe's rate limit: try again shortly", retry_after=math.ceil(after)
            ) from None
        except stripe.InvalidRequestError as error:
            text = str(error.user_message or error)
            if error.http_status == 404 and "payment_method" in str(error.param or "") + text:
                raise UnknownPaymentMethod(text, code="resource_missing") from None
            raise Refused(
                f"Stripe refused the request: {text}", code=error.code or "invalid_request"
            ) from None
        except stripe.StripeError as error:
            raise GatewayUnavailable(
                f"Stripe is unavailable: {error}", code=error.code or "unavailable"
            ) from None

    def find_customer(self, customer_id: str) -> bool:
        with self._errors():
            return bool(self.client.v1.customers.retrieve(customer_id).id)

    def create_customer(self, *, name: str, organisation_id: int, key: str) -> str:
        params: CustomerCreateParams = {
            "name": name,
            "metadata": {"organisation_id": str(organisation_id)},
        }
        with self._errors():
            return self.client.v1.customers.create(params, {"idempotency_key": key}).id

    def create_sepa_method(self, *, iban: str, holder: str, email: str, key: str) -> str:
        """A ``sepa_debit`` PaymentMethod for an IBAN the buyer typed (holder's name and
        e-mail are required by SEPA). Raises Refused for an IBAN Stripe does not accept."""
        params: PaymentMethodCreateParams = {
            "type": "sepa_debit",
            "sepa_debit": {"iban": iban},
            "billing_details": {"name": holder, "email": email},
        }
        with self._errors():
            return self.client.v1.payment_methods.create(params, {"idempotency_key": key}).id

    def save_payment_method(
        self,
        *,
        customer_id: str,
        payment_method: str,
        key: str,
        metadata: dict[str, str],
        mandate: MandateAcceptance | None = None,
    ) -> SetupResult:
        """Confirm a SetupIntent for off-session use; the method is attached to the customer.

        A card that needs authentication before it can be saved is refused with
        AuthenticationRequired (the pledge page confirms such a card with Stripe.js). A
        SEPA account is saved with the buyer's acceptance of the mandate (MandateMissing
        without one); Stripe answers with the mandate's id.
        """
        method_type, brand, last4 = self.describe_method(payment_method)
        params: SetupIntentCreateParams = {
            "customer": customer_id,
            "payment_method": payment_method,
            "allowed_payment_method_types": [method_type],
            "automatic_payment_methods": NO_REDIRECTS,
            "confirm": True,
            "usage": "off_session",
            "metadata": metadata,
        }
        if method_type == "sepa_debit":
            if mandate is None:
                raise MandateMissing("The mandate was not accepted.", code="mandate_missing")
            params["mandate_data"] = {
                "customer_acceptance": {
                    "type": "online",
                    "online": {"ip_address": mandate.ip_address, "user_agent": mandate.user_agent},
                }
            }
        elif method_type != "card":
            raise Refused(f"A {method_type} payment method is not offered.", code="method_type")
        try:
            with self._errors():
                intent = self.client.v1.setup_intents.create(params, {"idempotency_key": key})
        except Refused as error:
            if "No such" in str(error) or "Not Found" in str(error):
                raise UnknownPaymentMethod(str(error), code="resource_missing") from None
            raise
        if intent.status != "succeeded":
            raise AuthenticationRequired(
                "The card needs authentication before it can be saved.", code=intent.status
            )
        mandate_id = _id_of(intent.mandate) if getattr(intent, "mandate", None) else None
        return SetupResult(
            intent.id, _id_of(intent.payment_method), brand, last4, method_type, mandate_id
        )

    def describe_method(self, payment_method: str) -> tuple[str, str, str]:
        """(type, brand, last4) of a PaymentMethod: a card's brand, a SEPA account's bank
        code; UnknownPaymentMethod when Stripe does not know it."""
        try:
            with self._errors():
                method = self.client.v1.payment_methods.retrieve(payment_method)
        except Refused as error:
            raise UnknownPaymentMethod(str(error), code="resource_missing") from None
        if method.type == "sepa_debit" and method.sepa_debit:
            return "sepa_debit", method.sepa_debit.bank_code or "", method.sepa_debit.last4 or ""
        card = method.card
        return method.type, (card.brand or "") if card else "", (card.last4 or "") if card else ""

    def charge(
        self,
        *,
        customer_id: str | None,
        payment_method: str,
        amount_cents: int,
        key: str,
        off_session: bool,
        transfer_group: str,
        metadata: dict[str, str],
        mandate: str | None = None,
    ) -> PaymentResult:
        """A card or SEPA Direct Debit PaymentIntent, confirmed at once.

        Off-session (funding close): the method saved on the customer, ``off_session``;
        a card that needs the buyer is refused with ``authentication_required``; a SEPA
        debit (``mandate`` given) answers ``processing`` and the bank's answer comes by
        webhook days later. On-session (the buyer pays a card in the grace period): with
        a ``return_url`` for the bank's authentication page; the intent may answer
        ``requires_action``.
        """
        params: PaymentIntentCreateParams = {
            "amount": amount_cents,
            "currency": self.currency,
            "payment_method": payment_method,
            "allowed_payment_method_types": ["sepa_debit"] if mandate else CARD_ONLY,
            "confirm": True,
            "transfer_group": transfer_group,
            "metadata": metadata,
        }
        if customer_id:
            params["customer"] = customer_id
        if mandate:
            params["mandate"] = mandate
        if off_session:
            params["off_session"] = True
            params["automatic_payment_methods"] = NO_REDIRECTS
        else:
            params["return_url"] = self.return_url
        with self._errors():
            intent = self.client.v1.payment_intents.create(params, {"idempotency_key": key})
        return _payment(intent)

    def bank_transfer(
        self,
        *,
        customer_id: str,
        amount_cents: int,
        key: str,
        transfer_group: str,
        metadata: dict[str, str],
    ) -> PaymentResult:
        """A PaymentIntent paid by the buyer's EU bank transfer to its virtual IBAN: it
        answers ``requires_action`` with the IBAN and the reference to quote, and is paid
        (``payment_intent.succeeded``) when transfers carrying the reference add up."""
        params: PaymentIntentCreateParams = {
            "amount": amount_cents,
            "currency": self.currency,
            "customer": customer_id,
            "allowed_payment_method_types": ["customer_balance"],
            "automatic_payment_methods": NO_REDIRECTS,
            "payment_method_data": {"type": "customer_balance"},
            "payment_method_options": {
                "customer_balance": {
                    "funding_type": "bank_transfer",
                    "bank_transfer": {
                        "type": "eu_bank_transfer",
                        "eu_bank_transfer": {"country": TRANSFER_COUNTRY},
                    },
                }
            },
            "confirm": True,
            "transfer_group": transfer_group,
            "metadata": metadata,
        }
        with self._errors():
            intent = self.client.v1.payment_intents.create(params, {"idempotency_key": key})
        return _payment(intent)

    def cash_balance(self, customer_id: str) -> int:
        """What of the customer's transfers no payment has taken (cents, our currency)."""
        with self._errors():
            balance = self.client.v1.customers.cash_balance.retrieve(customer_id)
        available = balance.available.to_dict() if balance.available else {}
        return int(available.get(self.currency, 0))

    def return_balance(
        self, *, customer_id: str, amount_cents: int, key: str, metadata: dict[str, str]
    ) -> MoneyObject:
        """Return money from the customer's cash balance to the customer (a refund with
        ``origin: customer_balance``)."""
        params: RefundCreateParams = {
            "customer": customer_id,
            "origin": "customer_balance",
            "amount": amount_cents,
            "currency": self.currency,
            "metadata": metadata,
        }
        with self._errors():
            refund = self.client.v1.refunds.create(params, {"idempotency_key": key})
        return MoneyObject(refund.id, refund.amount, refund.status or "pending")

    def retrieve_payment(self, payment_intent_id: str) -> PaymentResult:
        with self._errors():
            return _payment(self.client.v1.payment_intents.retrieve(payment_intent_id))

    def cancel_payment(self, payment_intent_id: str, *, key: str) -> PaymentResult:
        """Cancel a PaymentIntent that has not succeeded; its status as Stripe has it after.

        Stripe refuses to cancel an intent that succeeded (or is processing): then
        the intent is read back, so the caller sees that it succeeded.
        """
        params: PaymentIntentCancelParams = {"cancellation_reason": "duplicate"}
        try:
            with self._errors():
                intent = self.client.v1.payment_intents.cancel(
                    payment_intent_id, params, {"idempotency_key": key}
                )
        except Refused:
            return self.retrieve_payment(payment_intent_id)
        return _payment(intent)

    def card_of(self, payment_method: str) -> tuple[str, str]:
        """(brand, last4) of a card PaymentMethod; empty strings when Stripe gives none."""
        with self._errors():
            method = self.client.v1.payment_methods.retrieve(payment_method)
        card = method.card
        return (card.brand or "", card.last4 or "") if card else ("", "")

    def our_payments(self) -> list[tuple[str, int, str, dict[str, str]]]:
        """Every PaymentIntent at Stripe that carries our ``payment_id`` metadata:
        (id, amount, status, metadata), read page by page."""
        found = []
        params: PaymentIntentListParams = {"limit": 100}
        with self._errors():
            for intent in self.client.v1.payment_intents.list(params).auto_paging_iter():
                metadata: dict[str, str] = intent.metadata.to_dict() if intent.metadata else {}
                if "payment_id" in metadata:
                    found.append((intent.id, intent.amount, intent.status, metadata))
        return found

    def refund(
        self, *, payment_intent_id: str, amount_cents: int, key: str, metadata: dict[str, str]
    ) -> MoneyObject:
        """Return ``amount_cents`` of a PaymentIntent's charge. Stripe may answer ``pending``
        (the bank has not confirmed yet); ``charge.refund.updated`` tells the outcome."""
        params: RefundCreateParams = {
            "payment_intent": payment_intent_id,
            "amount": amount_cents,
            "metadata": metadata,
        }
        with self._errors():
            refund = self.client.v1.refunds.create(params, {"idempotency_key": key})
        return MoneyObject(refund.id, refund.amount, refund.status or "pending")

    def retrieve_refund(self, refund_id: str) -> MoneyObject:
        with self._errors():
            refund = self.client.v1.refunds.retrieve(refund_id)
        return MoneyObject(refund.id, refund.amount, refund.status or "pending")

    def create_account(self, *, organisation_id: int, name: str, email: str, key: str) -> str:
        """An Express account in the Netherlands that receives transfers only: the platform
        charges buyers and transfers to entrepreneurs (separate charges and transfers),
        so the recipient service agreement applies and no card payments are requested."""
        params: AccountCreateParams = {
            "type": "express",
            "country": "NL",
            "email": email,
            "capabilities": {"transfers": {"requested": True}},
            "tos_acceptance": {"service_agreement": "recipient"},
            "metadata": {"organisation_id": str(organisation_id), "name": name[:500]},
        }
        with self._errors():
            return self.client.v1.accounts.create(params, {"idempotency_key": key}).id

    def onboarding_link(
        self, *, account_id: str, return_url: str, refresh_url: str, key: str
    ) -> str:
        params: AccountLinkCreateParams = {
            "account": account_id,
            "type": "account_onboarding",
            "return_url": return_url,
            "refresh_url": refresh_url,
        }
        with self._errors():
            return self.client.v1.account_links.create(params, {"idempotency_key": key}).url

    def account_status(self, account_id: str) -> AccountStatus:
        with self._errors():
            account = self.client.v1.accounts.retrieve(account_id)
        capabilities = account.capabilities
        return AccountStatus(
            account.id,
            bool(account.details_submitted),
            bool(account.payouts_enabled),
            bool(capabilities and capabilities.transfers == "active"),
        )

    def transfer(
        self,
        *,
        account_id: str,
        amount_cents: int,
        transfer_group: str,
        key: str,
        metadata: dict[str, str],
    ) -> MoneyObject:
        params: TransferCreateParams = {
            "amount": amount_cents,
            "currency": self.currency,
            "destination": account_id,
            "transfer_group": transfer_group,
            "metadata": metadata,
        }
        with self._errors():
            transfer = self.client.v1.transfers.create(params, {"idempotency_key": key})
        return MoneyObject(transfer.id, transfer.amount, "succeeded")

    def retrieve_transfer(self, transfer_id: str) -> MoneyObject:
        with self._errors():
            transfer = self.client.v1.transfers.retrieve(transfer_id)
        return MoneyObject(
            transfer.id,
            transfer.amount - (transfer.amount_reversed or 0),
            "reversed" if transfer.reversed else "succeeded",
        )

    # --- webhooks ------------------------------------------------------------

    def parse_event(self, payload: bytes, signature: str) -> Any:
        """The verified body, parsed as JSON (of any shape: the webhook edge checks that it
        is an event); ValueError when the signature or the JSON is bad."""
        if not self.webhook_secret:
            raise ValueError("no webhook secret is configured")
        try:
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8"),
                signature,
                self.webhook_secret,
                # Older signatures are replays: Stripe's own default (5 minutes).
                tolerance=stripe.Webhook.DEFAULT_TOLERANCE,
            )
            return json.loads(payload)
        except (stripe.SignatureVerificationError, ValueError, RecursionError) as error:
            raise ValueError(str(error) or "the body is not JSON") from None


def _id_of(found: str | Any) -> str:
    """An object's id whether Stripe sent the id or the expanded object."""
    return found if isinstance(found, str) else str(found.id)


def _payment(intent: stripe.PaymentIntent) -> PaymentResult:
    shown = (
        getattr(intent.next_action, "display_bank_transfer_instructions", None)
        if intent.next_action
        else None
    )
    if shown is None:
        return PaymentResult(intent.id, intent.status, intent.amount, intent.client_secret)
    return PaymentResult(
        intent.id,
        intent.status,
        intent.amount,
        intent.client_secret,
        instructions=transfer_instructions(shown.to_dict()),
        amount_remaining=shown.amount_remaining,
    )


def transfer_instructions(shown: dict[str, Any]) -> dict[str, str]:
    """What the buyer needs to make the transfer, from Stripe's
    ``display_bank_transfer_instructions`` (its first IBAN address)."""
    for address in shown.get("financial_addresses") or ():
        iban = address.get("iban") if isinstance(address, dict) else None
        if isinstance(iban, dict):
            return {
                "iban": str(iban.get("iban") or "")[:34],
                "bic": str(iban.get("bic") or "")[:11],
                "account_holder_name": str(iban.get("account_holder_name") or "")[:200],
                "country": str(iban.get("country") or "")[:2],
                "reference": str(shown.get("reference") or "")[:64],
            }
    return {"reference": str(shown.get("reference") or "")[:64]}


def _card_failure(error: stripe.CardError) -> GatewayError:
    body = (error.json_body or {}).get("error", {}) if isinstance(error.json_body, dict) else {}
    intent = body.get("payment_intent") or {}
    code = error.code or body.get("code") or "card_declined"
    kind = AuthenticationRequired if code == "authentication_required" else Declined
    return kind(
        str(error.user_message or "The card was declined."),
        code=code,
        payment_intent_id=intent.get("id"),
    )
