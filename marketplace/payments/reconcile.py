"""Reconciliation: the books and our rows against Stripe's own objects.

For every money row that claims an outcome, Stripe's object must exist with
the same amount and a matching status; the Stripe clearing account must hold
what Stripe says moved (charges less refunds less transfers); and the ledger
must agree with itself. Each run is stored with the differences it found.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.ledger.models import AccountKind, LedgerAccount
from marketplace.ledger.services import account_code, verify
from marketplace.payments.gateway import GatewayError, StripeGateway
from marketplace.payments.models import MoneyState, Payment, ReconciliationRun, Refund, Transfer

log = logging.getLogger(__name__)


def reconcile(session: Session, gateway: StripeGateway, now: datetime) -> ReconciliationRun:
    """Compare, store and return one run (flushes)."""
    checked, differences = compare(session, gateway)
    run = ReconciliationRun(at=now, checked=checked, differences=differences)
    session.add(run)
    session.flush()
    return run


def compare(session: Session, gateway: StripeGateway) -> tuple[int, list[str]]:
    """How many Stripe objects were checked, and every difference found (reads only)."""
    differences: list[str] = list(verify(session))
    checked = 0
    moved = 0
    for payment in session.scalars(
        select(Payment).where(Payment.payment_intent_id.is_not(None)).order_by(Payment.id)
    ):
        checked += 1
        try:
            intent = gateway.retrieve_payment(payment.payment_intent_id)
        except GatewayError as error:
            differences.append(f"payment {payment.id}: {payment.payment_intent_id} {error}")
            continue
        stripe_paid = intent.status == "succeeded"
        if stripe_paid != (payment.state == MoneyState.SUCCEEDED):
            differences.append(
                f"payment {payment.id}: ours {payment.state.value}, Stripe {intent.status}"
            )
        if intent.amount_cents != payment.amount_cents:
            differences.append(
                f"payment {payment.id}: ours {payment.amount_cents} cents, "
                f"Stripe {intent.amount_cents}"
            )
        if stripe_paid:
            moved += intent.amount_cents
    for refund in session.scalars(select(Refund).where(Refund.refund_id.is_not(None))):
        checked += 1
        try:
            found = gateway.retrieve_refund(refund.refund_id)
        except GatewayError as error:
            differences.append(f"refund {refund.id}: {refund.refund_id} {error}")
            continue
        if found.amount_cents != refund.amount_cents or found.status != "succeeded":
            differences.append(
                f"refund {refund.id}: ours {refund.amount_cents} cents, Stripe "
                f"{found.amount_cents} ({found.status})"
            )
        moved -= found.amount_cents
    for transfer in session.scalars(select(Transfer).where(Transfer.transfer_id.is_not(None))):
        checked += 1
        try:
            found = gateway.retrieve_transfer(transfer.transfer_id)
        except GatewayError as error:
            differences.append(f"transfer {transfer.id}: {transfer.transfer_id} {error}")
            continue
        if found.amount_cents != transfer.amount_cents:
            differences.append(
                f"transfer {transfer.id}: ours {transfer.amount_cents} cents, "
                f"Stripe {found.amount_cents}"
            )
        moved -= found.amount_cents
    clearing = (
        session.scalar(
            select(LedgerAccount.balance_cents).where(
                LedgerAccount.code == account_code(AccountKind.STRIPE_CLEARING)
            )
        )
        or 0
    )
    if clearing != moved:
        differences.append(
            f"Stripe clearing: the ledger holds {clearing} cents, Stripe moved {moved}"
        )
    for row_kind, rows in (("payment", Payment), ("refund", Refund), ("transfer", Transfer)):
        for row in session.scalars(
            select(rows).where(rows.state == MoneyState.SUCCEEDED, _stripe_id(rows).is_(None))
        ):
            differences.append(f"{row_kind} {row.id}: succeeded without a Stripe id")
    return checked, differences


def _stripe_id(rows):
    return {
        Payment: Payment.payment_intent_id,
        Refund: Refund.refund_id,
        Transfer: Transfer.transfer_id,
    }[rows]


def latest_runs(session: Session, limit: int = 10) -> list[ReconciliationRun]:
    return list(
        session.scalars(
            select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(limit)
        )
    )


def reconcile_sweep(ctx, now: datetime) -> str:
    """The scheduler's reconciliation: at most once per configured interval.

    It reads in a plain (deferred) transaction, so on SQLite it holds no write
    lock while it asks Stripe, then stores the run in a short one.
    """
    with Session(ctx.db.engine) as reader:
        last = reader.scalar(
            select(ReconciliationRun.at).order_by(ReconciliationRun.id.desc()).limit(1)
        )
        if last is not None and now - last < timedelta(
            minutes=ctx.settings.reconcile_every_minutes
        ):
            return "not due"
        checked, differences = compare(reader, ctx.gateway)
    with ctx.db.transaction() as session:
        session.add(ReconciliationRun(at=now, checked=checked, differences=differences))
    if differences:
        log.error("reconciliation found %d differences: %s", len(differences), differences[:5])
        return f"checked {checked} Stripe objects: {len(differences)} differences"
    return f"checked {checked} Stripe objects: the books agree"
