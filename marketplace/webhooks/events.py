"""Stripe's webhook events, each handled once and in any order.

This is an edge, like the API: it checks an event's shape, stores its id, and
hands what Stripe says to the owner of the object (a pledge's payment to
``funding.charges``, a payout account to ``payments``).

Invariants:
- An event id is stored in the transaction that handles it: a repeated
  delivery finds it and does nothing.
- Handlers move rows only forward: a payment that succeeded stays succeeded
  whatever arrives later; ``payment_failed`` after ``succeeded`` is ignored,
  ``succeeded`` after ``payment_failed`` wins (Stripe's final word). A success
  the pledge does not need (a second one, or after it was cancelled) is a
  surplus, refunded at once by the owner.
- Events about objects we do not know are recorded and ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.funding import charges
from marketplace.payments import services as payments
from marketplace.payments.gateway import transfer_instructions
from marketplace.payments.models import (
    LIVE_PAYMENT_STATES,
    ConnectedAccount,
    MethodType,
    Payment,
    PaymentState,
    Refund,
    StripeEvent,
)


class NotAnEvent(ValueError):
    """A signed payload that does not have the shape of a Stripe event."""


def event_object(event: Any) -> dict[str, Any]:
    """The event's ``data.object``, after checking the event's shape; NotAnEvent otherwise.

    Stripe signs what it sends, but its shape is still checked before any of it
    reaches a query: an id and a type that fit their columns, an object that is
    a JSON object.
    """
    if not isinstance(event, dict):
        raise NotAnEvent("the payload is not a JSON object")
    event_id, kind = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 64:
        raise NotAnEvent("id: a string of 1 to 64 characters")
    if not isinstance(kind, str) or not 0 < len(kind) <= 80:
        raise NotAnEvent("type: a string of 1 to 80 characters")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise NotAnEvent("data.object: a JSON object")
    return obj


def _text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) and len(value) <= 255 else None


def _mapping(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def handle_event(
    session: Session, event: dict[str, Any], *, now: datetime, grace_hours: int
) -> str:
    """Handle one verified event; return what was done (flushes). NotAnEvent for a bad shape."""
    obj = event_object(event)
    try:
        with session.begin_nested():
            session.add(
                StripeEvent(
                    id=str(event["id"]),
                    type=str(event.get("type", "")),
                    object_id=(_text(obj, "id") or "")[:64],
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
    elif kind in ("payment_intent.requires_action", "payment_intent.processing"):
        outcome = _payment_waits(session, obj, now, kind.split(".")[1], grace_hours)
    elif kind == "payment_intent.partially_funded":
        outcome = _payment_waits(session, obj, now, "requires_action", grace_hours)
    elif kind == "cash_balance.funds_available":
        outcome = _funds_available(session, obj, now)
    elif kind == "charge.refund.updated":
        outcome = _refund_updated(session, obj, now)
    elif kind == "account.updated":
        outcome = _account_updated(session, obj, now)
    else:
        outcome = "not used"
    stored = session.get_one(StripeEvent, str(event["id"]))
    stored.outcome = outcome
    session.flush()
    return outcome


def _find_payment(session: Session, obj: dict[str, Any]) -> Payment | None:
    intent_id = _text(obj, "id")
    found = None
    if intent_id:
        found = session.scalar(select(Payment).where(Payment.payment_intent_id == intent_id))
    if found is None:
        payment_id = _text(_mapping(obj, "metadata"), "payment_id") or ""
        if payment_id.isascii() and payment_id.isdigit() and len(payment_id) <= 9:
            found = session.get(Payment, int(payment_id))
            if found is not None and found.payment_intent_id not in (None, intent_id):
                return None
    return found


def _payment_succeeded(session: Session, obj: dict[str, Any], now: datetime) -> str:
    payment = _find_payment(session, obj)
    if payment is None:
        return "unknown payment: ignored"
    if payment.state in (PaymentState.SUCCEEDED, PaymentState.SURPLUS):
        return f"payment {payment.id} already {payment.state.value}"
    if obj.get("amount") != payment.amount_cents:
        return f"payment {payment.id}: amount {obj.get('amount')} differs: left for review"
    meant = charges.record_success(session, payment, now, payment_intent_id=_text(obj, "id"))
    if meant == "surplus":
        return f"payment {payment.id} succeeded on a paid or closed pledge: surplus, refunding"
    return f"payment {payment.id} succeeded"


def _payment_failed(session: Session, obj: dict[str, Any], now: datetime, grace_hours: int) -> str:
    payment = _find_payment(session, obj)
    if payment is None:
        return "unknown payment: ignored"
    if payment.state not in LIVE_PAYMENT_STATES:
        return f"payment {payment.id} already {payment.state.value}: ignored"
    error = _mapping(obj, "last_payment_error")
    charges.record_failure(
        session,
        payment,
        (_text(error, "code") or "payment_failed")[:60],
        now,
        grace_hours,
        payment_intent_id=_text(obj, "id"),
    )
    return f"payment {payment.id} failed"


def _payment_waits(
    session: Session, obj: dict[str, Any], now: datetime, status: str, grace_hours: int
) -> str:
    payment = _find_payment(session, obj)
    if payment is None:
        return "unknown payment: ignored"
    intent_id = _text(obj, "id")
    shown = _mapping(_mapping(obj, "next_action"), "display_bank_transfer_instructions")
    if payment.method_type is MethodType.BANK_TRANSFER and status == "requires_action" and shown:
        remaining = shown.get("amount_remaining")
        state = charges.record_transfer_awaited(
            session,
            payment,
            now,
            grace_hours,
            transfer_instructions(shown),
            remaining if isinstance(remaining, int) and not isinstance(remaining, bool) else None,
            intent_id,
        )
    elif payment.method_type is MethodType.SEPA_DEBIT and status == "processing":
        state = charges.record_processing(session, payment, now, intent_id)
    else:
        state = charges.record_waiting(session, payment, status, now, intent_id)
    return f"payment {payment.id} {status}: {state}"


def _funds_available(session: Session, obj: dict[str, Any], now: datetime) -> str:
    """A buyer's cash balance holds money no payment took: return it (a sweep sends it)."""
    customer = _text(obj, "customer")
    available = _mapping(obj, "available").get("eur")
    if not customer or not isinstance(available, int) or isinstance(available, bool):
        return "no customer or amount: ignored"
    made = payments.note_cash_balance(
        session, customer_id=customer, amount_cents=available, now=now
    )
    if made is None:
        return "unknown customer, nothing there, or a return already open: ignored"
    return f"balance return {made.id} of {available} opened"


def _refund_updated(session: Session, obj: dict[str, Any], now: datetime) -> str:
    refund_id = _text(obj, "id")
    refund = refund_id and session.scalar(select(Refund).where(Refund.refund_id == refund_id))
    if not refund:
        return "unknown refund: ignored"
    status = _text(obj, "status") or ""
    if status in ("failed", "canceled"):
        code = (_text(obj, "failure_reason") or status)[:60]
        if payments.refund_failed(session, refund, code, now):
            return f"refund {refund.id} {status} ({code}): reversed in the books, for the team"
        return f"refund {refund.id} already failed"
    return f"refund {refund.id} {status or 'updated'}"


def _account_updated(session: Session, obj: dict[str, Any], now: datetime) -> str:
    account_id = _text(obj, "id")
    account = account_id and session.scalar(
        select(ConnectedAccount).where(ConnectedAccount.account_id == account_id)
    )
    if not account:
        return "unknown account: ignored"
    capabilities = _mapping(obj, "capabilities")
    account.details_submitted = obj.get("details_submitted") is True
    account.payouts_enabled = obj.get("payouts_enabled") is True and (
        capabilities.get("transfers") in (None, "active")
    )
    account.updated_at = now
    return f"account of organisation {account.organisation_id} updated"


def pledge_of_event(session: Session, event: dict[str, Any]) -> int | None:
    """The pledge whose payment a (checked) event is about, if we know it."""
    payment = _find_payment(session, event_object(event))
    return payment.pledge_id if payment is not None else None
