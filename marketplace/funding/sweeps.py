"""The funding sweeps: close rounds, charge pledges, end grace periods, refund, start, pay out.

Each sweep works as of ``now`` and is safe to repeat and to run in two
processes at once:
- a project is claimed by an atomic state change (funding -> funded | unfunded,
  funded -> running | unfunded), so only one process acts on it;
- a pledge is charged by first claiming its attempt row (``funding.charges``:
  the pledge row locked, one live attempt per pledge in the database): the
  process that claims it makes the Stripe call, with the row's id as
  idempotency key; a row left ``created`` by a crash is retried with the same
  key once it is stale, and Stripe answers as the first time;
- refunds and transfers are rows made in the claiming transaction and sent
  the same way.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from sqlalchemy import Exists, exists, select
from sqlalchemy.orm import Session

from marketplace.core.money import fee_on
from marketplace.core.sweeps import Progress, SweepContext
from marketplace.funding import charges
from marketplace.funding.models import Pledge, PledgeState
from marketplace.funding.services import buyers_of, notify_funding_closed, release_pledges
from marketplace.ledger import postings
from marketplace.ledger.services import book
from marketplace.notifications import notices
from marketplace.payments import services as payments
from marketplace.payments.gateway import GatewayError
from marketplace.payments.models import (
    ConnectedAccount,
    MethodType,
    MoneyState,
    Payment,
    PaymentKind,
    PaymentState,
    Refund,
    Transfer,
)
from marketplace.projects.models import Project, ProjectState
from marketplace.projects.states import InvalidTransition, transition
from outcomes.errors import Message

log = logging.getLogger(__name__)

# A money row still ``created`` this long after it was written lost its process.
STALE_AFTER = timedelta(minutes=2)
BATCH = 200
# Refunds recorded in one transaction (each is still its own Stripe call).
REFUND_BATCH = 100


# Pledges whose money is not yet known: a project neither starts nor fails while it has any.
UNSETTLED = (PledgeState.COMMITTED, PledgeState.PAYMENT_FAILED, PledgeState.PROCESSING)


def _has_pledges_in(states: tuple[PledgeState, ...]) -> Exists:
    return exists().where(Pledge.project_id == Project.id, Pledge.state.in_(states))


# --- close -------------------------------------------------------------------------------


def close_funding(ctx: SweepContext, now: datetime) -> str:
    """Close rounds past their deadline or sold out: funded at the threshold, else unfunded."""
    today = ctx.local_date(now)
    funded = unfunded = 0
    with ctx.db.session_factory() as session:
        due = session.scalars(
            select(Project.id)
            .where(
                Project.state == ProjectState.FUNDING,
                (Project.funding_deadline < today)
                | (Project.tokens_pledged >= Project.tokens_total),
            )
            .order_by(Project.id)
        ).all()
        session.commit()
        for project_id in due:
            project = session.get_one(Project, project_id, populate_existing=True)
            try:
                if project.tokens_pledged >= (project.threshold_tokens or 0):
                    transition(
                        session,
                        project,
                        ProjectState.FUNDED,
                        actor=None,
                        now=now,
                        reason=_close_reason(project, today, met=True),
                    )
                    notify_funding_closed(session, project, funded=True, now=now)
                    funded += 1
                else:
                    transition(
                        session,
                        project,
                        ProjectState.UNFUNDED,
                        actor=None,
                        now=now,
                        reason=_close_reason(project, today, met=False),
                    )
                    notify_funding_closed(session, project, funded=False, now=now)
                    release_pledges(
                        session,
                        project,
                        now=now,
                        reason=Message("funding closed below the threshold: nothing charged"),
                    )
                    unfunded += 1
                session.commit()
            except InvalidTransition:  # another scheduler closed it first
                session.rollback()
    return f"closed {funded} funded and {unfunded} unfunded rounds"


def notify_thresholds(ctx: SweepContext, now: datetime) -> str:
    """Tell an entrepreneur once that the pledges reached the threshold (it may close early).

    Done here, not in the pledge's own transaction, to keep that one as short as it is.
    """
    told = 0
    with ctx.db.transaction() as session:
        reached = session.scalars(
            select(Project)
            .where(
                Project.state == ProjectState.FUNDING,
                Project.tokens_pledged >= Project.threshold_tokens,
            )
            .order_by(Project.id)
        ).all()
        for project in reached:
            told += notices.threshold_reached(
                session,
                project,
                pledged=project.tokens_pledged,
                total=project.tokens_total or 0,
                threshold=project.threshold_tokens or 0,
                deadline=project.funding_deadline,
                now=now,
            )
    return f"told {told} entrepreneurs"


def _close_reason(project: Project, today: date, met: bool) -> Message:
    sold_out = project.tokens_pledged >= (project.tokens_total or 0)
    figures = {
        "pledged": project.tokens_pledged,
        "total": project.tokens_total or 0,
        "threshold": project.threshold_tokens or 0,
    }
    if sold_out:
        return Message(
            "funding closed (sold out): %(pledged)s of %(total)s tokens pledged, "
            "threshold %(threshold)s: threshold met",
            **figures,
        )
    if met:
        return Message(
            "funding closed (deadline passed): %(pledged)s of %(total)s tokens pledged, "
            "threshold %(threshold)s: threshold met",
            **figures,
        )
    return Message(
        "funding closed (deadline passed): %(pledged)s of %(total)s tokens pledged, "
        "threshold %(threshold)s: below the threshold",
        **figures,
    )


# --- charge ------------------------------------------------------------------------------


def charge_pledges(ctx: SweepContext, now: datetime) -> str:
    """Charge every committed pledge of a funded project off-session, exactly once."""
    charged = failed = waiting = later = 0
    grace = ctx.settings.payment_grace_hours
    sessions = ctx.db.session_factory
    while True:
        with sessions() as session:
            pledges = session.scalars(
                select(Pledge.id)
                .join(Project, Project.id == Pledge.project_id)
                .where(
                    Project.state == ProjectState.FUNDED,
                    Pledge.state == PledgeState.COMMITTED,
                    ~exists().where(Payment.pledge_id == Pledge.id),
                )
                .order_by(Pledge.id)
                .limit(BATCH)
            ).all()
            stale = session.scalars(
                select(Payment.id)
                .where(
                    Payment.state == PaymentState.CREATED,
                    Payment.kind == PaymentKind.OFF_SESSION,
                    Payment.updated_at <= now - STALE_AFTER,
                )
                .order_by(Payment.id)
                .limit(BATCH)
            ).all()
        if not pledges and not stale:
            break
        claimed = []
        for pledge_id in pledges:
            with sessions.begin() as session:
                payment = charges.claim_off_session(session, pledge_id, now)
                if payment is not None:
                    claimed.append(payment.id)
        for payment_id in [*claimed, *stale]:
            outcome = charges.charge_off_session(sessions, ctx.gateway, payment_id, now, grace)
            charged += outcome == "succeeded"
            failed += outcome == "failed"
            later += outcome == "waiting"
            waiting += outcome == "unavailable"
        if waiting or (len(pledges) < BATCH and len(stale) < BATCH):
            break
    return (
        f"charged {charged} pledges, {failed} failed, {later} answered later (a debit or a "
        f"bank transfer), {waiting} left for the next run"
    )


# --- grace periods and the final verdict ------------------------------------------------------


GRACE_REMINDER = timedelta(hours=24)


def remind_grace_ending(ctx: SweepContext, now: datetime) -> str:
    """A day before a failed payment's grace ends, remind the buyer once, with the pay link."""
    reminded = 0
    with ctx.db.transaction() as session:
        ending = session.scalars(
            select(Pledge)
            .where(
                Pledge.state == PledgeState.PAYMENT_FAILED,
                Pledge.grace_until > now,
                Pledge.grace_until <= now + GRACE_REMINDER,
            )
            .order_by(Pledge.id)
        ).all()
        for pledge in ending:
            if pledge.grace_until is None:  # the query asks for one; for the type checker
                continue
            reminded += notices.grace_ending(
                session,
                pledge_id=pledge.id,
                organisation_id=pledge.organisation_id,
                project_title=pledge.project.title,
                tokens=pledge.tokens,
                until=pledge.grace_until,
                now=now,
            )
    return f"reminded {reminded} buyers"


def end_bank_transfers(ctx: SweepContext, now: datetime) -> str:
    """A bank transfer not paid in full by its deadline is treated as a failed charge whose
    grace period has ended: its intent is cancelled at Stripe (what arrived goes back to
    the buyer's cash balance, and from there back to the buyer) and the pledge cancelled.
    An intent Stripe says was paid meanwhile is recorded as paid instead."""
    sessions = ctx.db.session_factory
    grace = ctx.settings.payment_grace_hours
    with sessions() as session:
        overdue = session.execute(
            select(Payment.id, Payment.payment_intent_id, Pledge.organisation_id)
            .join(Pledge, Pledge.id == Payment.pledge_id)
            .where(
                Payment.method_type == MethodType.BANK_TRANSFER,
                Payment.state == PaymentState.PROCESSING,
                Payment.payment_intent_id.is_not(None),
                Pledge.state == PledgeState.PROCESSING,
                Pledge.grace_until <= now,
            )
            .order_by(Payment.id)
            .limit(BATCH)
        ).all()
    lapsed = paid = waiting = 0
    for payment_id, intent_id, organisation_id in overdue:
        try:
            result = ctx.gateway.cancel_payment(str(intent_id), key=f"payment-{payment_id}-cancel")
        except GatewayError as error:
            log.warning("bank transfer %s not cancelled yet: %s", payment_id, error)
            waiting += 1
            continue
        with sessions.begin() as session:
            payment = session.get_one(Payment, payment_id)
            if result.status == "canceled":
                lapsed += charges.record_transfer_lapsed(session, payment, now)
            else:
                paid += charges.record_result(session, payment, result, now, grace) == "succeeded"
        if result.status == "canceled":
            _note_returned_balance(ctx, organisation_id, now)
    return f"{lapsed} bank transfers lapsed, {paid} paid at the deadline, {waiting} waiting"


def _note_returned_balance(ctx: SweepContext, organisation_id: int, now: datetime) -> None:
    """What a cancelled transfer had received is back in the buyer's cash balance: open its
    return now rather than wait for Stripe's event."""
    with ctx.db.session_factory() as session:
        customer = payments.customer_id_of(session, organisation_id)
    if customer is None:
        return
    try:
        available = ctx.gateway.cash_balance(customer)
    except GatewayError as error:
        log.warning("cash balance of %s unknown for now: %s", customer, error)
        return
    with ctx.db.transaction() as session:
        payments.note_cash_balance(session, customer_id=customer, amount_cents=available, now=now)


def return_balances(ctx: SweepContext, now: datetime) -> str:
    """Return to buyers the money of theirs that no payment needs (bank transfers)."""
    done = payments.send_balance_returns(ctx.db.session_factory, ctx.gateway, now)
    return f"returned {done} balances"


def end_grace_periods(ctx: SweepContext, now: datetime) -> str:
    """Cancel pledges unpaid after their grace; a project left below its threshold is unfunded."""
    cancelled = unfunded = 0
    with ctx.db.session_factory() as session:
        overdue = session.scalars(
            select(Pledge)
            .where(Pledge.state == PledgeState.PAYMENT_FAILED, Pledge.grace_until <= now)
            .order_by(Pledge.id)
        ).all()
        for pledge in overdue:
            try:
                charges.cancel_unpaid(
                    session, pledge, now, Message("not paid within the grace period")
                )
                session.commit()
                cancelled += 1
            except InvalidTransition:  # paid at the last moment, or another scheduler
                session.rollback()
        short = session.scalars(
            select(Project)
            .where(
                Project.state == ProjectState.FUNDED,
                ~_has_pledges_in(UNSETTLED),
                Project.tokens_paid < Project.threshold_tokens,
            )
            .order_by(Project.id)
        ).all()
        for project in short:
            try:
                transition(
                    session,
                    project,
                    ProjectState.UNFUNDED,
                    actor=None,
                    now=now,
                    reason=Message(
                        "paid tokens %(paid)s stayed below the threshold %(threshold)s: "
                        "every charge refunded",
                        paid=project.tokens_paid,
                        threshold=project.threshold_tokens or 0,
                    ),
                )
                _refund_everything(session, project, now)
                session.commit()
                unfunded += 1
            except InvalidTransition:
                session.rollback()
    return f"cancelled {cancelled} unpaid pledges; {unfunded} projects unfunded"


def _refund_everything(session: Session, project: Project, now: datetime) -> None:
    paid = session.execute(
        select(Pledge, Payment)
        .join(Payment, Payment.pledge_id == Pledge.id)
        .where(
            Pledge.project_id == project.id,
            Pledge.state == PledgeState.PAID,
            Payment.state == PaymentState.SUCCEEDED,
        )
    ).all()
    for pledge, payment in paid:
        session.add(
            Refund(
                payment_id=payment.id,
                pledge_id=pledge.id,
                reason="unfunded",
                amount_cents=payment.amount_cents,
                state=MoneyState.CREATED,
                created_at=now,
                updated_at=now,
            )
        )
    session.flush()


def execute_refunds(ctx: SweepContext, now: datetime) -> str:
    """Send every refund not yet made to Stripe (new ones, and stale ones again).

    Refunds are sent in batches: each is its own Stripe call with its row's key,
    and a batch is recorded (rows and journal entries) in one transaction. On
    PostgreSQL several workers send at once, each the refunds of its own
    projects, so no two wait on one escrow account.
    """
    with ctx.db.session_factory() as session:
        due = [payments.DueRefund(*row) for row in session.execute(charges.due_refunds())]
    # Against Stripe's rate limit a large settlement takes minutes: the log says how far.
    progress = Progress("refunds", len(due), log)
    done, waiting = ctx.in_parallel(
        due, lambda row: row.project_id, lambda rows: _refund_share(ctx, rows, now, progress)
    ) or (0, 0)
    return f"refunded {done} payments, {waiting} left for the next run"


def _refund_share(
    ctx: SweepContext, rows: list[payments.DueRefund], now: datetime, progress: Progress
) -> tuple[int, int]:
    done = waiting = 0
    for start in range(0, len(rows), REFUND_BATCH):
        sent, left = charges.send_refunds(
            ctx.db.session_factory, ctx.gateway, rows[start : start + REFUND_BATCH], now
        )
        done, waiting = done + sent, waiting + left
        progress.add(sent + left)
    return done, waiting


# --- start and payouts ---------------------------------------------------------------------------


def start_projects(ctx: SweepContext, now: datetime) -> str:
    """At the start date release the cost tranche (less the fee) to the entrepreneur."""
    today = ctx.local_date(now)
    started = 0
    with ctx.db.session_factory() as session:
        due = session.scalars(
            select(Project)
            .where(
                Project.state == ProjectState.FUNDED,
                Project.start_date <= today,
                ~_has_pledges_in(UNSETTLED),
                Project.tokens_paid >= Project.threshold_tokens,
            )
            .order_by(Project.id)
        ).all()
        for project in due:
            cost = (project.threshold_tokens or 0) * (project.token_price_cents or 0)
            fee = fee_on(cost, ctx.settings.platform_fee_rate)
            try:
                transition(
                    session,
                    project,
                    ProjectState.RUNNING,
                    actor=None,
                    now=now,
                    reason=Message(
                        "started: cost tranche %(cost_cents)s released, fee %(fee_cents)s",
                        cost_cents=cost,
                        fee_cents=fee,
                    ),
                )
            except InvalidTransition:
                session.rollback()
                continue
            book(
                session,
                postings.cost_tranche(
                    session,
                    project_id=project.id,
                    project_reference=project.reference,
                    organisation_id=project.organisation_id,
                    paid_out_cents=cost - fee,
                    fee_cents=fee,
                ),
                now=now,
            )
            session.add(
                Transfer(
                    project_id=project.id,
                    organisation_id=project.organisation_id,
                    kind="cost_tranche",
                    amount_cents=cost - fee,
                    fee_cents=fee,
                    state=MoneyState.CREATED,
                    created_at=now,
                    updated_at=now,
                )
            )
            notices.project_started(
                session,
                project,
                buyers_of(session, project.id),
                amount_cents=cost - fee,
                fee_cents=fee,
                end=project.end_date,
                now=now,
            )
            session.commit()
            started += 1
    return f"started {started} projects"


def execute_transfers(ctx: SweepContext, now: datetime) -> str:
    """Pay out transfers to entrepreneurs whose payout account is ready."""
    with ctx.db.session_factory() as session:
        due = [
            payments.DueTransfer(*row)
            for row in session.execute(
                select(
                    Transfer.id,
                    Transfer.project_id,
                    Transfer.organisation_id,
                    Transfer.kind,
                    Transfer.amount_cents,
                    ConnectedAccount.account_id,
                )
                .join(
                    ConnectedAccount, ConnectedAccount.organisation_id == Transfer.organisation_id
                )
                .where(Transfer.state == MoneyState.CREATED, ConnectedAccount.payouts_enabled)
                .order_by(Transfer.id)
            )
        ]
        without = session.scalar(
            select(Transfer.id)
            .where(
                Transfer.state == MoneyState.CREATED,
                ~exists().where(
                    ConnectedAccount.organisation_id == Transfer.organisation_id,
                    ConnectedAccount.payouts_enabled,
                ),
            )
            .limit(1)
        )
    done = waiting = 0
    progress = Progress("transfers", len(due), log)
    for row in due:
        try:
            payments.send_transfer(ctx.db.session_factory, ctx.gateway, row, now)
            done += 1
        except GatewayError as error:
            waiting += 1
            log.warning("transfer %s waits for the next run: %s", row.id, error)
        progress.add(1)
    note = "; some wait for their payout account" if without else ""
    return f"transferred {done}, {waiting} left for the next run{note}"
