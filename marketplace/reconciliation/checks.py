"""Reconciliation: the books and our rows against Stripe's own objects, and the
invariants of the money lifecycle.

Each run reports every difference it finds (and is stored with them):
- the ledger agrees with itself (``ledger.verify``);
- every money row that claims an outcome has its Stripe object, with the same
  amount and a matching status; every PaymentIntent at Stripe that carries our
  metadata maps to exactly one payment row (no charge we do not know of);
- the Stripe clearing account holds what Stripe says moved (charges less
  refunds less transfers);
- at most one succeeded charge per pledge, for exactly the pledge's amount;
  every surplus charge has its refund;
- the escrow of a settled project is 0; the escrow of an unfunded project is
  what is still being refunded, and every paid pledge of it has its refund.
It lives above funding, projects and payments: it reads all of them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace.funding.models import Pledge, PledgeState
from marketplace.ledger.models import AccountKind, LedgerAccount
from marketplace.ledger.services import account_code, verify
from marketplace.payments.gateway import GatewayError, StripeGateway
from marketplace.payments.models import (
    MoneyState,
    Payment,
    PaymentState,
    ReconciliationRun,
    Refund,
    Transfer,
)
from marketplace.projects.models import Project, ProjectState

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
            intent = gateway.retrieve_payment(payment.payment_intent_id or "")
        except GatewayError as error:
            differences.append(f"payment {payment.id}: {payment.payment_intent_id} {error}")
            continue
        stripe_paid = intent.status == "succeeded"
        ours_paid = payment.state in (PaymentState.SUCCEEDED, PaymentState.SURPLUS)
        if stripe_paid != ours_paid:
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
            found = gateway.retrieve_refund(refund.refund_id or "")
        except GatewayError as error:
            differences.append(f"refund {refund.id}: {refund.refund_id} {error}")
            continue
        # A refund is booked when Stripe takes it: "pending" (the bank has not confirmed
        # yet) and "succeeded" both left the balance; "failed" and "canceled" came back.
        stripe_gone = found.status in ("succeeded", "pending")
        ours_gone = refund.state == MoneyState.SUCCEEDED
        if found.amount_cents != refund.amount_cents or stripe_gone != ours_gone:
            differences.append(
                f"refund {refund.id}: ours {refund.amount_cents} cents "
                f"({refund.state.value}), Stripe {found.amount_cents} ({found.status})"
            )
        if stripe_gone:
            moved -= found.amount_cents
    for transfer in session.scalars(select(Transfer).where(Transfer.transfer_id.is_not(None))):
        checked += 1
        try:
            found = gateway.retrieve_transfer(transfer.transfer_id or "")
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
    for row_kind, column, state, stripe_id in (
        ("payment", Payment.id, Payment.state, Payment.payment_intent_id),
        ("refund", Refund.id, Refund.state, Refund.refund_id),
        ("transfer", Transfer.id, Transfer.state, Transfer.transfer_id),
    ):
        for row_id in session.scalars(
            select(column).where(state == MoneyState.SUCCEEDED, stripe_id.is_(None))
        ):
            differences.append(f"{row_kind} {row_id}: succeeded without a Stripe id")
    differences += unknown_at_stripe(session, gateway)
    differences += invariants(session)
    return checked, differences


def unknown_at_stripe(session: Session, gateway: StripeGateway) -> list[str]:
    """Every PaymentIntent at Stripe with our metadata maps to exactly one payment row."""
    try:
        theirs = gateway.our_payments()
    except GatewayError as error:
        return [f"PaymentIntents at Stripe could not be listed: {error}"]
    ours = dict(
        session.execute(
            select(Payment.payment_intent_id, Payment.id).where(
                Payment.payment_intent_id.is_not(None)
            )
        ).all()
    )
    differences = []
    for intent_id, amount, status, metadata in theirs:
        row = ours.get(intent_id)
        if row is None:
            differences.append(
                f"Stripe's {intent_id} ({status}, {amount} cents, payment "
                f"{metadata.get('payment_id')}) has no payment row"
            )
        elif str(row) != metadata.get("payment_id"):
            differences.append(
                f"Stripe's {intent_id} names payment {metadata.get('payment_id')}, our row is {row}"
            )
    return differences


def invariants(session: Session) -> list[str]:
    """The money lifecycle's rules, read from our rows and the ledger alone."""
    differences = []
    for pledge_id, count, amounts, pledged in session.execute(
        select(
            Pledge.id, func.count(Payment.id), func.sum(Payment.amount_cents), Pledge.amount_cents
        )
        .join(Payment, Payment.pledge_id == Pledge.id)
        .where(Payment.state == PaymentState.SUCCEEDED)
        .group_by(Pledge.id, Pledge.amount_cents)
    ):
        if count > 1:
            differences.append(f"pledge {pledge_id}: {count} succeeded charges")
        elif amounts != pledged:
            differences.append(f"pledge {pledge_id}: charged {amounts} cents of {pledged}")
    for (payment_id,) in session.execute(
        select(Payment.id).where(
            Payment.state == PaymentState.SURPLUS,
            ~select(Refund.id).where(Refund.payment_id == Payment.id).exists(),
        )
    ):
        differences.append(f"payment {payment_id}: a surplus charge without its refund")
    for refund_id, amount, code in session.execute(
        select(Refund.id, Refund.amount_cents, Refund.failure_code).where(
            Refund.state == MoneyState.FAILED
        )
    ):
        differences.append(
            f"refund {refund_id} failed at Stripe ({code}): the buyer is still owed {amount} cents"
        )
    escrows = session.execute(
        select(Project.id, Project.state, LedgerAccount.balance_cents)
        .join(LedgerAccount, LedgerAccount.project_id == Project.id)
        .where(
            LedgerAccount.kind == AccountKind.ESCROW,
            Project.state.in_((ProjectState.SETTLED, ProjectState.UNFUNDED)),
        )
    ).all()
    pending = dict(
        session.execute(
            select(Pledge.project_id, func.sum(Refund.amount_cents))
            .join(Refund, Refund.pledge_id == Pledge.id)
            .where(Refund.state == MoneyState.CREATED, Refund.reason != "surplus")
            .group_by(Pledge.project_id)
        ).all()
    )
    for project_id, state, balance in escrows:
        owed = pending.get(project_id, 0) if state is ProjectState.UNFUNDED else 0
        if balance != owed:
            differences.append(
                f"project {project_id} ({state.value}): escrow holds {balance} cents, "
                f"expected {owed}"
            )
    for (pledge_id,) in session.execute(
        select(Pledge.id)
        .join(Project, Project.id == Pledge.project_id)
        .where(
            Project.state == ProjectState.UNFUNDED,
            Pledge.state == PledgeState.PAID,
            ~select(Refund.id)
            .where(Refund.pledge_id == Pledge.id, Refund.reason == "unfunded")
            .exists(),
        )
    ):
        differences.append(f"pledge {pledge_id}: paid on an unfunded project and not refunded")
    return differences


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
