"""Stripe's webhook events, each handled once and in any order.

Invariants:
- An event id is stored in the transaction that handles it: a repeated
  delivery finds it and does nothing.
- Handlers move rows only forward: a payment that succeeded stays succeeded
  whatever arrives later; ``payment_failed`` after ``succeeded`` is ignored,
  ``succeeded`` after ``payment_failed`` wins (Stripe's final word).
- Events about objects we do not know are recorded and ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.funding.models import Pledge, PledgeState
from marketplace.payments import services as payments
from marketplace.payments.models import ConnectedAccount, MoneyState, Payment, StripeEvent


def handle_event(
    session: Session, event: dict[str, Any], *, now: datetime, grace_hours: int
) -> str:
    """Handle one verified event; return what was done (flushes)."""
    obj = (event.get("data") or {}).get("object") or {}
    try:
        with session.begin_nested():
            session.add(
                StripeEvent(
                    id=str(event["id"]),
                    type=str(event.get("type", "")),
                    object_id=str(obj.get("id", ""))[:64],
                    received_at=now,
                )
            )
            session.flush()
    except IntegrityError:
        return "duplicate delivery: ignored"
    kind = event.get("type", "")
    if kind == "payment_intent.succeeded":
        outcome = _payment_succeeded(session, obj, now)
    elif kind == "payment_intent.payment_failed":
        outcome = _payment_failed(session, obj, now, grace_hours)
    elif kind == "account.updated":
        outcome = _account_updated(session, obj, now)
    else:
        outcome = "not used"
    stored = session.get(StripeEvent, str(event["id"]))
    stored.outcome = outcome
    session.flush()
    return outcome


def _find_payment(session: Session, obj: dict[str, Any]) -> Payment | None:
    found = session.scalar(select(Payment).where(Payment.payment_intent_id == obj.get("id")))
    if found is None:
        payment_id = str((obj.get("metadata") or {}).get("payment_id", ""))
        if payment_id.isdigit():
            found = session.get(Payment, int(payment_id))
            if found is not None and found.payment_intent_id not in (None, obj.get("id")):
                return None
    return found


def _payment_succeeded(session: Session, obj: dict[str, Any], now: datetime) -> str:
    payment = _find_payment(session, obj)
    if payment is None:
        return "unknown payment: ignored"
    if payment.state == MoneyState.SUCCEEDED:
        return f"payment {payment.id} already succeeded"
    if obj.get("amount") != payment.amount_cents:
        return f"payment {payment.id}: amount {obj.get('amount')} differs: left for review"
    pledge = session.get(Pledge, payment.pledge_id)
    if pledge.state not in (PledgeState.COMMITTED, PledgeState.PAYMENT_FAILED, PledgeState.PAID):
        # Paid after the pledge was cancelled: the money is booked, the pledge stays
        # cancelled, and reconciliation reports it for a refund by the team.
        payments.record_success(session, payment, now, payment_intent_id=obj.get("id"))
        return f"payment {payment.id} succeeded on a {pledge.state.value} pledge: review"
    payments.record_success(session, payment, now, payment_intent_id=obj.get("id"))
    return f"payment {payment.id} succeeded"


def _payment_failed(session: Session, obj: dict[str, Any], now: datetime, grace_hours: int) -> str:
    payment = _find_payment(session, obj)
    if payment is None:
        return "unknown payment: ignored"
    if payment.state in (MoneyState.SUCCEEDED, MoneyState.FAILED):
        return f"payment {payment.id} already {payment.state.value}: ignored"
    error = obj.get("last_payment_error") or {}
    payments.record_failure(
        session,
        payment,
        str(error.get("code") or "payment_failed"),
        now,
        grace_hours,
        payment_intent_id=obj.get("id"),
    )
    return f"payment {payment.id} failed"


def _account_updated(session: Session, obj: dict[str, Any], now: datetime) -> str:
    account = session.scalar(
        select(ConnectedAccount).where(ConnectedAccount.account_id == obj.get("id"))
    )
    if account is None:
        return "unknown account: ignored"
    capabilities = obj.get("capabilities") or {}
    account.details_submitted = bool(obj.get("details_submitted"))
    account.payouts_enabled = bool(obj.get("payouts_enabled")) and (
        capabilities.get("transfers") in (None, "active")
    )
    account.updated_at = now
    return f"account of organisation {account.organisation_id} updated"
