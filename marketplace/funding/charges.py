"""A pledge's money at Stripe: the one owner of its payment attempts.

Every attempt to charge a pledge, every answer Stripe gives about one (from
the charging sweep, an on-session payment or a webhook) and every refund of a
surplus goes through here. ``payments`` makes the calls; this module decides
what they mean for the pledge.

Invariants (held by the database, not only by this code):
- At most one *live* attempt per pledge (``created`` or ``requires_action``)
  and at most one *succeeded* attempt: two partial unique indexes
  (``uq_payments_live_pledge``, ``uq_payments_succeeded_pledge``).
- An attempt is claimed with the pledge's row locked (``FOR UPDATE``; SQLite
  serialises writers), and only while the pledge is payable: committed (the
  off-session charge) or payment_failed within its grace period (on-session),
  and without a success. A twin request finds the live attempt and is refused
  (409 ``payment_in_progress``) or finds the pledge paid.
- A live attempt waiting for 3-D Secure is cancelled at Stripe before another
  is made; if Stripe says it succeeded meanwhile, that success is recorded and
  nothing new is charged.
- A success Stripe reports beyond the first (or for a pledge no longer
  payable) is a *surplus*: booked as owed to the buyer, never in escrow, and
  refunded at once with a refund row (reason ``surplus``), keyed like any other.
- A pledge becomes paid, and its project's paid tokens grow, exactly once: in
  the transaction that records its one success.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from marketplace.funding import states as pledge_states
from marketplace.funding.models import Pledge, PledgeState
from marketplace.ledger import postings
from marketplace.ledger.services import book
from marketplace.notifications import notices
from marketplace.payments import services as payments
from marketplace.payments.gateway import (
    AuthenticationRequired,
    Declined,
    GatewayError,
    PaymentResult,
    StripeGateway,
)
from marketplace.payments.models import (
    LIVE_PAYMENT_STATES,
    MethodType,
    MoneyState,
    Payment,
    PaymentKind,
    PaymentSetup,
    PaymentState,
    Refund,
)
from marketplace.projects.models import Project
from outcomes.errors import (
    Conflict,
    Message,
    NotFound,
    PaymentRequired,
    Unavailable,
    ValidationFailed,
)
from outcomes.lifecycle import InvalidTransition

log = logging.getLogger(__name__)

SURPLUS = postings.SURPLUS
PAYABLE = (PledgeState.COMMITTED, PledgeState.PAYMENT_FAILED, PledgeState.PROCESSING)


class PaymentInProgress(Conflict):
    code = "payment_in_progress"
    title = "Another payment of this pledge is being made"


class GraceOver(Conflict):
    code = "funding_closed"
    title = "The grace period to pay this pledge has ended"


def _locked_pledge(session: Session, pledge_id: int) -> Pledge:
    """The pledge, its row locked until the transaction ends (PostgreSQL; SQLite
    serialises writers anyway)."""
    pledge = session.scalar(
        select(Pledge)
        .where(Pledge.id == pledge_id)
        .options(lazyload("*"))
        .with_for_update(of=Pledge)
        .execution_options(populate_existing=True)
    )
    if pledge is None:
        raise NotFound("No such pledge.")
    return pledge


def _success_of(session: Session, pledge_id: int) -> Payment | None:
    return session.scalar(
        select(Payment).where(
            Payment.pledge_id == pledge_id, Payment.state == PaymentState.SUCCEEDED
        )
    )


def _live_attempt(session: Session, pledge_id: int) -> Payment | None:
    return session.scalar(
        select(Payment).where(
            Payment.pledge_id == pledge_id, Payment.state.in_(LIVE_PAYMENT_STATES)
        )
    )


def _insert_attempt(
    session: Session,
    pledge: Pledge,
    kind: PaymentKind,
    payment_method_id: str,
    now: datetime,
    method_type: MethodType = MethodType.CARD,
) -> Payment | None:
    """A new ``created`` attempt, or None when the database refuses a second live one."""
    attempt = (
        session.scalar(select(func.max(Payment.attempt)).where(Payment.pledge_id == pledge.id)) or 0
    ) + 1
    payment = Payment.attempt_for(
        pledge.id,
        pledge.amount_cents,
        attempt=attempt,
        kind=kind,
        payment_method_id=payment_method_id,
        now=now,
    )
    payment.method_type = method_type
    try:
        with session.begin_nested():
            session.add(payment)
            session.flush()
    except IntegrityError:
        return None
    return payment


# --- claiming an attempt --------------------------------------------------------------------


def claim_off_session(session: Session, pledge_id: int, now: datetime) -> Payment | None:
    """The funding-close charge of a committed pledge: the attempt row, or None when the
    pledge is no longer committed or already has an attempt (another scheduler). Flushes."""
    pledge = _locked_pledge(session, pledge_id)
    if pledge.state is not PledgeState.COMMITTED or _success_of(session, pledge.id):
        return None
    if session.scalar(select(func.count()).where(Payment.pledge_id == pledge.id)):
        return None
    return _insert_attempt(
        session,
        pledge,
        PaymentKind.OFF_SESSION,
        pledge.payment_method,
        now,
        pledge.payment_setup.method_type,
    )


@dataclass(frozen=True)
class Claim:
    """What an on-session payment must do next: charge ``payment_id``, or first cancel
    the attempt waiting for 3-D Secure (``supersede``)."""

    payment_id: int | None = None
    supersede: int | None = None
    supersede_intent: str | None = None


def _claim_on_session(
    session: Session, organisation_id: int | None, pledge_id: int, method: str, now: datetime
) -> Claim:
    pledge = _locked_pledge(session, pledge_id)
    if organisation_id is not None and pledge.organisation_id != organisation_id:
        raise NotFound("No such pledge.")
    if pledge.state is not PledgeState.PAYMENT_FAILED:
        raise InvalidTransition(
            "A %(state)s pledge has nothing to pay.", params={"state": pledge.state.value}
        )
    if pledge.grace_until is None or now >= pledge.grace_until:
        raise GraceOver("The grace period to pay this pledge has ended.")
    if not method.startswith("pm_") or _is_saved_debit(session, pledge.organisation_id, method):
        # Paid at once, by the buyer at the page: a debit or a transfer would answer days
        # after the grace period has ended.
        raise ValidationFailed(
            errors={"payment_method": ["Within the grace period a pledge is paid by card."]}
        )
    live = _live_attempt(session, pledge.id)
    if live is not None:
        if live.state is PaymentState.REQUIRES_ACTION and live.payment_intent_id:
            return Claim(supersede=live.id, supersede_intent=live.payment_intent_id)
        raise PaymentInProgress("Another payment of this pledge is being made.")
    payment = _insert_attempt(session, pledge, PaymentKind.ON_SESSION, method, now)
    if payment is None:
        raise PaymentInProgress("Another payment of this pledge is being made.")
    return Claim(payment_id=payment.id)


def _is_saved_debit(session: Session, organisation_id: int, method: str) -> bool:
    return (
        session.scalar(
            select(PaymentSetup.id).where(
                PaymentSetup.organisation_id == organisation_id,
                PaymentSetup.payment_method_id == method,
                PaymentSetup.method_type != MethodType.CARD,
            )
        )
        is not None
    )


# --- recording Stripe's answers ------------------------------------------------------------------


def record_success(
    session: Session,
    payment: Payment,
    now: datetime,
    payment_intent_id: str | None = None,
    card: tuple[str, str] | None = None,
) -> str:
    """Stripe says this attempt's PaymentIntent succeeded (flushes). Returns what it meant:
    ``paid``, ``surplus`` (refund row made), or ``known`` (recorded before)."""
    pledge = _locked_pledge(session, payment.pledge_id)
    session.refresh(payment)
    if payment_intent_id and payment.payment_intent_id is None:
        payment.payment_intent_id = payment_intent_id
    if card and not payment.card_last4:
        payment.card_brand, payment.card_last4 = card[0][:20], card[1][:4]
    if payment.state in (PaymentState.SUCCEEDED, PaymentState.SURPLUS):
        return "known"
    if pledge.state not in PAYABLE or _success_of(session, pledge.id) is not None:
        _record_surplus(session, pledge, payment, now)
        return "surplus"
    payment.state, payment.updated_at, payment.failure_code = PaymentState.SUCCEEDED, now, ""
    session.flush()  # the partial unique index is the backstop: one success per pledge
    book(
        session,
        postings.charge(
            session,
            payment_id=payment.id,
            pledge_id=pledge.id,
            tokens=pledge.tokens,
            organisation_id=pledge.organisation_id,
            project_id=pledge.project_id,
            amount_cents=payment.amount_cents,
        ),
        now=now,
    )
    pledge_states.change(
        session,
        pledge,
        PledgeState.PAID,
        actor=None,
        now=now,
        reason=Message(
            "%(kind)s payment %(payment)s succeeded",
            kind=payment.kind.value.replace("_", "-"),
            payment=str(payment.id),
        ),
    )
    session.execute(
        update(Project)
        .where(Project.id == pledge.project_id)
        .values(tokens_paid=Project.tokens_paid + pledge.tokens)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return "paid"


def _record_surplus(session: Session, pledge: Pledge, payment: Payment, now: datetime) -> None:
    payment.state, payment.updated_at = PaymentState.SURPLUS, now
    book(
        session,
        postings.surplus_charge(
            session,
            payment_id=payment.id,
            pledge_id=pledge.id,
            organisation_id=pledge.organisation_id,
            amount_cents=payment.amount_cents,
        ),
        now=now,
    )
    session.add(
        Refund(
            payment_id=payment.id,
            pledge_id=pledge.id,
            reason=SURPLUS,
            amount_cents=payment.amount_cents,
            state=MoneyState.CREATED,
            created_at=now,
            updated_at=now,
        )
    )
    notices.surplus_refunded(
        session,
        payment_id=payment.id,
        pledge_id=pledge.id,
        organisation_id=pledge.organisation_id,
        project_title=pledge.project.title,
        amount_cents=payment.amount_cents,
        now=now,
    )
    log.warning("payment %s of pledge %s is a surplus: refunding", payment.id, pledge.id)
    session.flush()


def record_failure(
    session: Session,
    payment: Payment,
    code: str,
    now: datetime,
    grace_hours: int,
    payment_intent_id: str | None = None,
) -> None:
    """The attempt failed: an off-session failure opens the pledge's grace period (flushes)."""
    pledge = _locked_pledge(session, payment.pledge_id)
    session.refresh(payment)
    if payment_intent_id and payment.payment_intent_id is None:
        payment.payment_intent_id = payment_intent_id
    if payment.state not in LIVE_PAYMENT_STATES:
        return
    payment.state, payment.failure_code, payment.updated_at = PaymentState.FAILED, code[:60], now
    if pledge.state in (PledgeState.COMMITTED, PledgeState.PROCESSING):
        pledge.grace_until = now + timedelta(hours=grace_hours)
        pledge_states.change(
            session,
            pledge,
            PledgeState.PAYMENT_FAILED,
            actor=None,
            now=now,
            reason=Message("charge failed: %(code)s", code=code),
        )
        tell = (
            notices.debit_failed
            if payment.method_type is MethodType.SEPA_DEBIT
            else notices.payment_failed
        )
        tell(
            session,
            pledge_id=pledge.id,
            organisation_id=pledge.organisation_id,
            project_title=pledge.project.title,
            tokens=pledge.tokens,
            code=code,
            until=pledge.grace_until,
            now=now,
        )
    session.flush()


def record_processing(
    session: Session, payment: Payment, now: datetime, payment_intent_id: str | None = None
) -> str:
    """Stripe took a SEPA debit: the bank answers within days, by webhook (flushes). The
    pledge is ``processing`` meanwhile; its project waits for the answer."""
    pledge = _locked_pledge(session, payment.pledge_id)
    session.refresh(payment)
    if payment_intent_id and payment.payment_intent_id is None:
        payment.payment_intent_id = payment_intent_id
    if payment.state is PaymentState.CREATED:
        payment.state, payment.updated_at = PaymentState.PROCESSING, now
        if pledge.state is PledgeState.COMMITTED:
            pledge_states.change(
                session,
                pledge,
                PledgeState.PROCESSING,
                actor=None,
                now=now,
                reason=Message(
                    "direct debit %(payment)s sent to the bank", payment=str(payment.id)
                ),
            )
    session.flush()
    return payment.state.value


def record_transfer_awaited(
    session: Session,
    payment: Payment,
    now: datetime,
    grace_hours: int,
    instructions: dict[str, str] | None,
    remaining_cents: int | None,
    payment_intent_id: str | None = None,
) -> str:
    """Stripe gave a bank transfer's IBAN and reference (flushes). The first time, the
    pledge waits for the money until its deadline (the grace period) and the buyer is
    told what to transfer; later, what has arrived grows (never shrinks)."""
    pledge = _locked_pledge(session, payment.pledge_id)
    session.refresh(payment)
    if payment_intent_id and payment.payment_intent_id is None:
        payment.payment_intent_id = payment_intent_id
    if payment.state not in LIVE_PAYMENT_STATES:
        return payment.state.value
    if instructions and not payment.instructions:
        payment.instructions = instructions
    if remaining_cents is not None and 0 <= remaining_cents <= payment.amount_cents:
        received = payment.amount_cents - remaining_cents
        if received > payment.received_cents:
            payment.received_cents = received
            if pledge.state is PledgeState.PROCESSING and pledge.grace_until is not None:
                notices.transfer_partly_received(
                    session,
                    pledge_id=pledge.id,
                    organisation_id=pledge.organisation_id,
                    project_title=pledge.project.title,
                    amount_cents=payment.amount_cents,
                    received_cents=received,
                    reference=(payment.instructions or {}).get("reference", ""),
                    until=pledge.grace_until,
                    now=now,
                )
    if payment.state is PaymentState.CREATED:
        payment.state = PaymentState.PROCESSING
    payment.updated_at = now
    if pledge.state is PledgeState.COMMITTED:
        pledge.grace_until = now + timedelta(hours=grace_hours)
        pledge_states.change(
            session,
            pledge,
            PledgeState.PROCESSING,
            actor=None,
            now=now,
            reason=Message("bank transfer %(payment)s awaited", payment=str(payment.id)),
        )
        notices.transfer_due(
            session,
            pledge_id=pledge.id,
            organisation_id=pledge.organisation_id,
            project_title=pledge.project.title,
            amount_cents=payment.amount_cents,
            instructions=payment.instructions or {},
            until=pledge.grace_until,
            now=now,
        )
    session.flush()
    return payment.state.value


def cancel_unpaid(session: Session, pledge: Pledge, now: datetime, reason: Message) -> None:
    """A pledge not paid in time is cancelled and its tokens go back to the project (flushes
    through the lifecycle; InvalidTransition when it was paid or ended meanwhile)."""
    pledge_states.change(session, pledge, PledgeState.CANCELLED, actor=None, now=now, reason=reason)
    session.execute(
        update(Project)
        .where(Project.id == pledge.project_id)
        .values(tokens_pledged=Project.tokens_pledged - pledge.tokens)
        .execution_options(synchronize_session=False)
    )


def record_transfer_lapsed(session: Session, payment: Payment, now: datetime) -> bool:
    """A bank transfer not paid in full by its deadline, its intent cancelled at Stripe:
    the pledge is cancelled as a failed charge is after its grace period (flushes).
    False when it was settled otherwise meanwhile."""
    pledge = _locked_pledge(session, payment.pledge_id)
    session.refresh(payment)
    if payment.state not in LIVE_PAYMENT_STATES or pledge.state is not PledgeState.PROCESSING:
        return False
    payment.state, payment.failure_code, payment.updated_at = (
        PaymentState.FAILED,
        "not_paid_in_time",
        now,
    )
    cancel_unpaid(
        session, pledge, now, Message("the bank transfer did not arrive in full by its deadline")
    )
    notices.transfer_unpaid(
        session,
        pledge_id=pledge.id,
        organisation_id=pledge.organisation_id,
        project_title=pledge.project.title,
        tokens=pledge.tokens,
        amount_cents=pledge.amount_cents,
        until=pledge.grace_until or now,
        now=now,
    )
    session.flush()
    return True


def record_waiting(
    session: Session, payment: Payment, status: str, now: datetime, payment_intent_id: str | None
) -> str:
    """Stripe says an attempt waits: ``requires_action`` (the buyer must authenticate in
    the browser) or ``processing`` (the bank answers later, by another event). Only a
    live attempt moves, and only forward (flushes). Returns the attempt's state after."""
    _locked_pledge(session, payment.pledge_id)  # no claim runs while the attempt changes
    session.refresh(payment)
    if payment_intent_id and payment.payment_intent_id is None:
        payment.payment_intent_id = payment_intent_id
    if payment.method_type is not MethodType.CARD:  # their own recorders, called by Stripe
        session.flush()
        return payment.state.value
    if status == "requires_action" and payment.state is PaymentState.CREATED:
        payment.state, payment.updated_at = PaymentState.REQUIRES_ACTION, now
    session.flush()
    return payment.state.value


def record_result(
    session: Session,
    payment: Payment,
    result: PaymentResult,
    now: datetime,
    grace_hours: int,
    card: tuple[str, str] | None = None,
) -> str:
    """What Stripe answered to a charge (flushes); returns the attempt's state after."""
    if payment.payment_intent_id is None:
        payment.payment_intent_id = result.payment_intent_id
    if result.status == "succeeded":
        record_success(session, payment, now, card=card)
    elif result.status == "requires_action" and payment.method_type is MethodType.BANK_TRANSFER:
        record_transfer_awaited(
            session, payment, now, grace_hours, result.instructions, result.amount_remaining
        )
    elif result.status == "processing" and payment.method_type is MethodType.SEPA_DEBIT:
        record_processing(session, payment, now)
    elif result.status == "requires_action" and payment.kind is PaymentKind.OFF_SESSION:
        # Nobody is there to authenticate: as Stripe's authentication_required, the
        # pledge's grace period opens and the buyer pays on-session.
        record_failure(session, payment, "authentication_required", now, grace_hours)
    elif result.status == "requires_action":
        if payment.state is PaymentState.CREATED:
            payment.state, payment.updated_at = PaymentState.REQUIRES_ACTION, now
    elif result.status in ("requires_payment_method", "canceled"):
        record_failure(session, payment, result.status, now, grace_hours)
    # "processing": Stripe finishes it later and says so by webhook; the row waits.
    session.flush()
    return payment.state.value


# --- processes: the calls to Stripe ------------------------------------------------------------


@dataclass(frozen=True)
class PaymentOutcome:
    """What an on-session payment came to: the attempt, its state, and the client
    secret the browser needs when the bank asks for authentication."""

    pledge_id: int
    payment_id: int
    state: PaymentState
    client_secret: str | None


def pay_on_session(
    sessions: payments.Sessions,
    gateway: StripeGateway,
    *,
    organisation_id: int | None,
    pledge_id: int,
    payment_method: str,
    now: datetime,
    grace_hours: int,
) -> PaymentOutcome:
    """Pay a pledge whose off-session charge failed, within its grace period (process).

    ``organisation_id`` is the payer's (None: any, for the platform team). Raises
    NotFound, InvalidTransition (not payment_failed), GraceOver, PaymentInProgress
    (a twin request is paying), PaymentRequired (declined) and Unavailable.
    """
    for _ in range(3):
        with sessions.begin() as session:
            claim = _claim_on_session(session, organisation_id, pledge_id, payment_method, now)
        if claim.supersede is None:
            break
        _supersede(sessions, gateway, claim, now, grace_hours)
    else:
        raise PaymentInProgress("Another payment of this pledge is being made.")
    with sessions.begin() as session:
        payment = session.get_one(Payment, claim.payment_id)
        order = payments.ChargeOrder.of(payment, _project_of(session, payment), None)
    try:
        result = payments.send_charge(gateway, order)
    except (Declined, AuthenticationRequired) as error:
        with sessions.begin() as session:
            payment = session.get_one(Payment, order.payment_id)
            record_failure(session, payment, error.code, now, grace_hours, error.payment_intent_id)
        raise PaymentRequired(
            "The card was declined (%(code)s).", params={"code": error.code}
        ) from None
    except GatewayError as error:
        raise Unavailable(str(error)) from None
    card = _card(gateway, payment_method) if result.status == "succeeded" else None
    with sessions.begin() as session:
        payment = session.get_one(Payment, order.payment_id)
        record_result(session, payment, result, now, grace_hours, card=card)
        state = payment.state
    send_surplus_refunds(sessions, gateway, pledge_id, now)
    return PaymentOutcome(pledge_id, order.payment_id, state, result.client_secret)


def _project_of(session: Session, payment: Payment) -> int:
    return session.scalars(select(Pledge.project_id).where(Pledge.id == payment.pledge_id)).one()


def _card(gateway: StripeGateway, payment_method: str) -> tuple[str, str] | None:
    try:
        return gateway.card_of(payment_method)
    except GatewayError:  # the label is for people; the payment stands without it
        return None


def _supersede(
    sessions: payments.Sessions,
    gateway: StripeGateway,
    claim: Claim,
    now: datetime,
    grace_hours: int,
) -> None:
    """Cancel the attempt waiting for 3-D Secure at Stripe, then end it here. If Stripe
    says it succeeded meanwhile, record that success instead."""
    assert claim.supersede is not None and claim.supersede_intent is not None  # noqa: S101
    try:
        result = gateway.cancel_payment(
            claim.supersede_intent, key=f"payment-{claim.supersede}-cancel"
        )
    except GatewayError as error:
        raise Unavailable(str(error)) from None
    with sessions.begin() as session:
        payment = session.get_one(Payment, claim.supersede)
        if result.status == "canceled":
            session.execute(
                update(Payment)
                .where(Payment.id == payment.id, Payment.state == PaymentState.REQUIRES_ACTION)
                .values(state=PaymentState.CANCELLED, failure_code="superseded", updated_at=now)
                .execution_options(synchronize_session=False)
            )
        else:
            record_result(session, payment, result, now, grace_hours)


def charge_off_session(
    sessions: payments.Sessions,
    gateway: StripeGateway,
    payment_id: int,
    now: datetime,
    grace_hours: int,
) -> str:
    """Send a claimed off-session attempt (new, or stale after a crash) and record the
    answer (process). Returns ``succeeded``, ``failed``, ``waiting`` (Stripe later) or
    ``unavailable``."""
    with sessions.begin() as session:
        payment = session.get_one(Payment, payment_id)
        if payment.state is not PaymentState.CREATED:
            return payment.state.value
        project_id = _project_of(session, payment)
        pledge = session.get_one(Pledge, payment.pledge_id)
        customer = payments.customer_id_of(session, pledge.organisation_id)
        order = payments.ChargeOrder.of(
            payment, project_id, customer, pledge.payment_setup.mandate_id
        )
    try:
        result = payments.send_charge(gateway, order)
    except (Declined, AuthenticationRequired) as error:
        with sessions.begin() as session:
            payment = session.get_one(Payment, payment_id)
            record_failure(session, payment, error.code, now, grace_hours, error.payment_intent_id)
        return "failed"
    except GatewayError as error:
        log.warning("charge %s waits: %s", payment_id, error)
        return "unavailable"
    with sessions.begin() as session:
        payment = session.get_one(Payment, payment_id)
        state = record_result(session, payment, result, now, grace_hours)
    send_surplus_refunds(sessions, gateway, order.pledge_id, now)
    return {"succeeded": "succeeded", "failed": "failed"}.get(state, "waiting")


# --- refunds -------------------------------------------------------------------------------------


def due_refunds(pledge_id: int | None = None):
    """Every refund row not yet made at Stripe (of one pledge), as ``DueRefund`` columns."""
    query = (
        select(
            Refund.id,
            Refund.pledge_id,
            Refund.reason,
            Refund.amount_cents,
            Payment.payment_intent_id,
            Pledge.organisation_id,
            Pledge.project_id,
        )
        .join(Payment, Payment.id == Refund.payment_id)
        .join(Pledge, Pledge.id == Refund.pledge_id)
        .where(Refund.state == MoneyState.CREATED)
        .order_by(Refund.id)
    )
    return query if pledge_id is None else query.where(Refund.pledge_id == pledge_id)


def refunded(session: Session, rows: list[payments.DueRefund], now: datetime) -> None:
    """What refunds mean for their pledges, in the transaction that records them: a pledge
    of an unfunded project refunded in full leaves the project."""
    for row in rows:
        if row.reason != "unfunded":
            continue
        pledge = session.get_one(Pledge, row.pledge_id)
        if pledge.state is not PledgeState.PAID:
            continue
        pledge_states.change(
            session,
            pledge,
            PledgeState.REFUNDED,
            actor=None,
            now=now,
            reason=Message("the project is unfunded: refunded in full"),
        )
        session.execute(
            update(Project)
            .where(Project.id == pledge.project_id)
            .values(
                tokens_paid=Project.tokens_paid - pledge.tokens,
                tokens_pledged=Project.tokens_pledged - pledge.tokens,
            )
            .execution_options(synchronize_session=False)
        )


def send_refunds(
    sessions: payments.Sessions,
    gateway: StripeGateway,
    due: list[payments.DueRefund],
    now: datetime,
) -> tuple[int, int]:
    """Send and record refund rows (process); returns (recorded, left for the next run)."""
    return payments.send_refunds(sessions, gateway, due, now, refunded)


def send_surplus_refunds(
    sessions: payments.Sessions, gateway: StripeGateway, pledge_id: int, now: datetime
) -> int:
    """Refund a pledge's surplus payments at once (process); the refund sweep retries
    what Stripe could not take now. Returns how many were refunded."""
    with sessions() as session:
        due = [
            payments.DueRefund(*row)
            for row in session.execute(due_refunds(pledge_id).where(Refund.reason == SURPLUS))
        ]
    if not due:
        return 0
    done, _waiting = send_refunds(sessions, gateway, due, now)
    return done
