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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import stripe

log = logging.getLogger(__name__)


class GatewayError(Exception):
    def __init__(self, message: str, *, code: str = "", payment_intent_id: str | None = None):
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


@dataclass(frozen=True)
class SetupResult:
    setup_intent_id: str
    payment_method_id: str
    brand: str
    last4: str


@dataclass(frozen=True)
class PaymentResult:
    payment_intent_id: str
    status: str  # succeeded | requires_action | processing | requires_payment_method | ...
    amount_cents: int
    client_secret: str | None = None


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


class StripeGateway:
    def __init__(
        self, api_key: str, api_base: str | None, currency: str, webhook_secret: str = ""
    ) -> None:
        self.currency = currency.lower()
        self.webhook_secret = webhook_secret
        options: dict[str, Any] = {"max_network_retries": 0}
        if api_base:
            options["base_addresses"] = {"api": api_base, "connect": api_base}
        # httpx: one connection pool for every thread of a sweep (pyproject.toml says why).
        options["http_client"] = stripe.HTTPXClient(allow_sync_methods=True)
        self.client = stripe.StripeClient(api_key or "sk_test_unconfigured", **options)

    # --- calls ---------------------------------------------------------------

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except stripe.CardError as error:
            raise _card_failure(error) from None
        except stripe.InvalidRequestError as error:
            if error.http_status == 404 and "payment_method" in str(error.param or "") + str(
                error.user_message or error
            ):
                raise UnknownPaymentMethod(
                    str(error.user_message or error), code="resource_missing"
                ) from None
            raise Refused(
                f"Stripe refused the request: {error.user_message or error}",
                code=error.code or "invalid_request",
            ) from None
        except stripe.StripeError as error:
            raise GatewayUnavailable(
                f"Stripe is unavailable: {error}", code=error.code or "unavailable"
            ) from None

    def find_customer(self, customer_id: str) -> bool:
        return bool(self._call(self.client.v1.customers.retrieve, customer_id).id)

    def create_customer(self, *, name: str, organisation_id: int, key: str) -> str:
        customer = self._call(
            self.client.v1.customers.create,
            params={"name": name, "metadata": {"organisation_id": str(organisation_id)}},
            options={"idempotency_key": key},
        )
        return customer.id

    def save_payment_method(
        self, *, customer_id: str, payment_method: str, key: str, metadata: dict[str, str]
    ) -> SetupResult:
        """Confirm a SetupIntent for off-session use; the card is attached to the customer."""
        try:
            intent = self._call(
                self.client.v1.setup_intents.create,
                params={
                    "customer": customer_id,
                    "payment_method": payment_method,
                    "confirm": True,
                    "usage": "off_session",
                    "metadata": metadata,
                },
                options={"idempotency_key": key},
            )
        except GatewayUnavailable as error:
            if "No such" in str(error) or "Not Found" in str(error):
                raise UnknownPaymentMethod(str(error), code="resource_missing") from None
            raise
        if intent.status != "succeeded":
            raise AuthenticationRequired(
                "The card needs authentication before it can be saved.", code=intent.status
            )
        method = self._call(self.client.v1.payment_methods.retrieve, intent.payment_method)
        card = getattr(method, "card", None)
        return SetupResult(
            intent.id, method.id, getattr(card, "brand", "") or "", getattr(card, "last4", "") or ""
        )

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
    ) -> PaymentResult:
        params: dict[str, Any] = {
            "amount": amount_cents,
            "currency": self.currency,
            "payment_method": payment_method,
            "confirm": True,
            "transfer_group": transfer_group,
            "metadata": metadata,
        }
        if customer_id:
            params["customer"] = customer_id
        if off_session:
            params["off_session"] = True
        intent = self._call(
            self.client.v1.payment_intents.create, params=params, options={"idempotency_key": key}
        )
        return PaymentResult(
            intent.id, intent.status, intent.amount, getattr(intent, "client_secret", None)
        )

    def retrieve_payment(self, payment_intent_id: str) -> PaymentResult:
        intent = self._call(self.client.v1.payment_intents.retrieve, payment_intent_id)
        return PaymentResult(
            intent.id, intent.status, intent.amount, getattr(intent, "client_secret", None)
        )

    def cancel_payment(self, payment_intent_id: str, *, key: str) -> PaymentResult:
        """Cancel a PaymentIntent that has not succeeded; its status as Stripe has it after.

        Stripe refuses to cancel an intent that succeeded (or is processing):
        then the intent is read back, so the caller sees that it succeeded.
        """
        try:
            intent = self._call(
                self.client.v1.payment_intents.cancel,
                payment_intent_id,
                options={"idempotency_key": key},
            )
        except Refused:
            return self.retrieve_payment(payment_intent_id)
        return PaymentResult(intent.id, intent.status, intent.amount)

    def card_of(self, payment_method: str) -> tuple[str, str]:
        """(brand, last4) of a card PaymentMethod; empty strings when Stripe gives none."""
        method = self._call(self.client.v1.payment_methods.retrieve, payment_method)
        card = getattr(method, "card", None)
        return getattr(card, "brand", "") or "", getattr(card, "last4", "") or ""

    def our_payments(self) -> list[tuple[str, int, str, dict[str, str]]]:
        """Every PaymentIntent at Stripe that carries our ``payment_id`` metadata:
        (id, amount, status, metadata), read page by page."""
        found = []
        page = self._call(self.client.v1.payment_intents.list, params={"limit": 100})
        try:
            for intent in page.auto_paging_iter():
                plain = intent.to_dict()
                metadata = plain.get("metadata") or {}
                if "payment_id" in metadata:
                    found.append((plain["id"], plain["amount"], plain["status"], metadata))
        except stripe.StripeError as error:
            raise GatewayUnavailable(f"Stripe is unavailable: {error}") from None
        return found

    def refund(
        self, *, payment_intent_id: str, amount_cents: int, key: str, metadata: dict[str, str]
    ) -> MoneyObject:
        refund = self._call(
            self.client.v1.refunds.create,
            params={
                "payment_intent": payment_intent_id,
                "amount": amount_cents,
                "metadata": metadata,
            },
            options={"idempotency_key": key},
        )
        return MoneyObject(refund.id, refund.amount, refund.status)

    def retrieve_refund(self, refund_id: str) -> MoneyObject:
        refund = self._call(self.client.v1.refunds.retrieve, refund_id)
        return MoneyObject(refund.id, refund.amount, refund.status)

    def create_account(self, *, organisation_id: int, name: str, email: str, key: str) -> str:
        account = self._call(
            self.client.v1.accounts.create,
            params={
                "type": "express",
                "country": "NL",
                "email": email,
                "capabilities": {"transfers": {"requested": True}},
                "metadata": {"organisation_id": str(organisation_id), "name": name},
            },
            options={"idempotency_key": key},
        )
        return account.id

    def onboarding_link(self, *, account_id: str, return_url: str, refresh_url: str) -> str:
        link = self._call(
            self.client.v1.account_links.create,
            params={
                "account": account_id,
                "type": "account_onboarding",
                "return_url": return_url,
                "refresh_url": refresh_url,
            },
        )
        return link.url

    def account_status(self, account_id: str) -> AccountStatus:
        account = self._call(self.client.v1.accounts.retrieve, account_id).to_dict()
        capabilities = account.get("capabilities") or {}
        return AccountStatus(
            account["id"],
            bool(account.get("details_submitted")),
            bool(account.get("payouts_enabled")),
            capabilities.get("transfers") == "active",
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
        transfer = self._call(
            self.client.v1.transfers.create,
            params={
                "amount": amount_cents,
                "currency": self.currency,
                "destination": account_id,
                "transfer_group": transfer_group,
                "metadata": metadata,
            },
            options={"idempotency_key": key},
        )
        return MoneyObject(transfer.id, transfer.amount, "succeeded")

    def retrieve_transfer(self, transfer_id: str) -> MoneyObject:
        transfer = self._call(self.client.v1.transfers.retrieve, transfer_id).to_dict()
        return MoneyObject(
            transfer["id"],
            transfer["amount"] - (transfer.get("amount_reversed") or 0),
            "reversed" if transfer.get("reversed") else "succeeded",
        )

    # --- webhooks ------------------------------------------------------------

    def parse_event(self, payload: bytes, signature: str) -> dict[str, Any]:
        """The verified event as a dict; ValueError when the signature or payload is bad."""
        if not self.webhook_secret:
            raise ValueError("no webhook secret is configured")
        try:
            event = stripe.Webhook.construct_event(payload, signature, self.webhook_secret)
        except (stripe.SignatureVerificationError, ValueError) as error:
            raise ValueError(str(error)) from None
        return event.to_dict()


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
