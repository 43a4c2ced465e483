"""`make stripe-check`: the app's own Stripe calls, once each, against Stripe's test mode.

It needs the internet (api.stripe.com) and an operator's test key:

    STRIPE_API_KEY=sk_test_... make stripe-check
    # optional: STRIPE_CHECK_ACCOUNT=acct_... (an onboarded Express test account) to try a
    # transfer; STRIPE_WEBHOOK_SECRET=whsec_... to check the webhook signature with it

The journey uses the gateway the app uses (marketplace/payments/gateway.py), so
each request is exactly what the app sends: a customer; a card saved for
off-session use; an off-session charge; a card that needs 3-D Secure paid
on-session (it waits for the bank) and then cancelled as a superseded attempt;
a partial refund; an Express account for the Netherlands and its onboarding
link; a transfer (with STRIPE_CHECK_ACCOUNT); a webhook signature. Every object
carries metadata ``stripe_check`` so it can be told apart in the dashboard.
The test suite cannot run this (there is no internet there); it runs the same
script against the development Stripe instead (tests/integration/test_stripe_check.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from marketplace.payments.gateway import (
    AuthenticationRequired,
    GatewayError,
    StripeGateway,
)


def main() -> int:
    key = os.environ.get("STRIPE_API_KEY", "")
    base = os.environ.get("STRIPE_API_BASE") or None
    if not key.startswith("sk_test_"):
        print("stripe-check needs a test-mode secret key: STRIPE_API_KEY=sk_test_... ")
        print("(live keys are refused: this makes real objects at Stripe).")
        return 2
    where = base or "Stripe's test mode (api.stripe.com: this needs the internet)"
    print(f"Checking the app's Stripe calls against {where}.")
    secret = os.environ.get("STRIPE_WEBHOOK_SECRET") or "whsec_stripe_check"
    gateway = StripeGateway(
        key, base, "eur", secret, return_url="https://marketplace.example/pledges"
    )
    run = uuid.uuid4().hex[:12]
    tag = {"stripe_check": run}
    failures = 0

    def step(name: str, action) -> object:
        nonlocal failures
        try:
            found = action()
        except (GatewayError, ValueError) as error:
            failures += 1
            print(f"  FAIL  {name}: {error}")
            return None
        print(f"  ok    {name}: {found}")
        return found

    customer = step(
        "customer",
        lambda: gateway.create_customer(
            name=f"stripe-check {run}", organisation_id=0, key=f"check-{run}-customer"
        ),
    )
    saved = customer and step(
        "card saved for off-session use (SetupIntent)",
        lambda: gateway.save_payment_method(
            customer_id=str(customer),
            payment_method="pm_card_visa",
            key=f"check-{run}-setup",
            metadata=tag,
        ),
    )
    charged = saved and step(
        "off-session charge (PaymentIntent)",
        lambda: gateway.charge(
            customer_id=str(customer),
            payment_method=saved.payment_method_id,
            amount_cents=1500,
            key=f"check-{run}-charge",
            off_session=True,
            transfer_group=f"check-{run}",
            metadata={**tag, "payment_id": "0"},
        ),
    )

    def three_d_secure() -> str:
        try:
            waiting = gateway.charge(
                customer_id=None,
                payment_method="pm_card_authenticationRequired",
                amount_cents=1200,
                key=f"check-{run}-3ds",
                off_session=False,
                transfer_group=f"check-{run}",
                metadata=tag,
            )
        except AuthenticationRequired as error:
            raise ValueError(f"refused on-session: {error}") from None
        if waiting.status != "requires_action" or not waiting.client_secret:
            raise ValueError(f"expected requires_action with a client secret, got {waiting}")
        cancelled = gateway.cancel_payment(waiting.payment_intent_id, key=f"check-{run}-cancel")
        if cancelled.status != "canceled":
            raise ValueError(f"expected canceled, got {cancelled.status}")
        return f"{waiting.payment_intent_id} waited for the bank, then was cancelled"

    step("3-D Secure card paid on-session, then superseded", three_d_secure)
    if charged:
        step(
            "partial refund",
            lambda: gateway.refund(
                payment_intent_id=charged.payment_intent_id,
                amount_cents=500,
                key=f"check-{run}-refund",
                metadata=tag,
            ),
        )
    account = step(
        "Express account (NL, transfers, recipient agreement)",
        lambda: gateway.create_account(
            organisation_id=0,
            name=f"stripe-check {run}",
            email="check@example.org",
            key=f"check-{run}-account",
        ),
    )
    if account:
        step(
            "onboarding link",
            lambda: gateway.onboarding_link(
                account_id=str(account),
                return_url="https://marketplace.example/payouts",
                refresh_url="https://marketplace.example/payouts",
                key=f"check-{run}-link",
            ),
        )
    destination = os.environ.get("STRIPE_CHECK_ACCOUNT")
    if destination:
        step(
            "transfer to STRIPE_CHECK_ACCOUNT",
            lambda: gateway.transfer(
                account_id=destination,
                amount_cents=100,
                transfer_group=f"check-{run}",
                key=f"check-{run}-transfer",
                metadata=tag,
            ),
        )
    else:
        print("  --    transfer: set STRIPE_CHECK_ACCOUNT to an onboarded Express test account")

    def signature() -> str:
        body = json.dumps(
            {"id": f"evt_{run}", "object": "event", "type": "ping", "data": {"object": {}}}
        ).encode()
        stamp = int(time.time())
        signed = f"{stamp}.".encode() + body
        digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        event = gateway.parse_event(body, f"t={stamp},v1={digest}")
        try:
            gateway.parse_event(body, f"t={stamp},v1={'0' * 64}")
        except ValueError:
            return f"{event['id']} verified; a forged one refused"
        raise ValueError("a forged signature was accepted")

    step("webhook signature", signature)
    print("All checks passed." if not failures else f"{failures} checks failed.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
