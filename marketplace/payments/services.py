"""Money at Stripe, step by step: customers, saved cards, charges, refunds, payouts.

Each function that calls Stripe commits its session around the call: the row
that stands for the Stripe object is committed first (its id is the
idempotency key), the call runs outside any transaction, and its result is
recorded in a new transaction. A crash between the two leaves a ``created``
row that the sweeps finish by repeating the call with the same key.

Every money movement is posted to the ledger with a reference naming its row
(``payment:42``), so recording the same result twice posts once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.accounts.models import Organisation, User
from marketplace.funding import states as pledge_states
from marketplace.funding.models import Pledge, PledgeState
from marketplace.ledger.models import AccountKind
from marketplace.ledger.services import LedgerError, Leg, Posting, get_account, post, post_many
from marketplace.notifications import messages
from marketplace.notifications.services import notify
from marketplace.payments.gateway import (
    AuthenticationRequired,
    Declined,
    GatewayError,
    PaymentResult,
    StripeGateway,
    UnknownPaymentMethod,
)
from marketplace.payments.models import (
    ConnectedAccount,
    MoneyState,
    Payment,
    PaymentKind,
    PaymentSetup,
    Refund,
    SetupState,
    StripeCustomer,
    Transfer,
    card_label,
    refund_key,
)
from marketplace.projects.models import Project
from outcomes.errors import PaymentRequired, Unavailable, ValidationFailed

log = logging.getLogger(__name__)


def transfer_group(project_id: int) -> str:
    return f"project-{project_id}"


# --- customers and saved cards ------------------------------------------------------


def customer_for(
    session: Session, gateway: StripeGateway, organisation: Organisation, now: datetime
) -> str:
    """The organisation's Stripe Customer id, created once (commits)."""
    found = session.get(StripeCustomer, organisation.id)
    if found is not None:
        return found.customer_id
    session.commit()
    try:
        customer_id = gateway.create_customer(
            name=organisation.name,
            organisation_id=organisation.id,
            key=f"customer-organisation-{organisation.id}",
        )
    except GatewayError as error:
        raise Unavailable(str(error)) from None
    try:
        with session.begin_nested():
            session.add(
                StripeCustomer(
                    organisation_id=organisation.id, customer_id=customer_id, created_at=now
                )
            )
    except IntegrityError:  # a concurrent request stored it (the same id: same key)
        pass
    session.commit()
    return session.get(StripeCustomer, organisation.id).customer_id


@dataclass(frozen=True)
class SavedCard:
    """A card saved for off-session charges, as pledging needs it."""

    id: int
    payment_method_id: str
    label: str


def saved_method(session: Session, organisation_id: int, payment_method: str) -> SavedCard | None:
    found = session.execute(
        select(
            PaymentSetup.id, PaymentSetup.payment_method_id, PaymentSetup.brand, PaymentSetup.last4
        ).where(
            PaymentSetup.organisation_id == organisation_id,
            PaymentSetup.payment_method_id == payment_method,
            PaymentSetup.state == SetupState.SUCCEEDED,
        )
    ).first()
    if found is None:
        return None
    return SavedCard(found.id, found.payment_method_id, card_label(found.brand, found.last4))


def save_payment_method(
    session: Session, gateway: StripeGateway, user: User, payment_method: str, now: datetime
) -> SavedCard:
    """A card saved for off-session charges: reused when already saved, else set up (commits).

    Raises ValidationFailed (unknown payment method), PaymentRequired (declined,
    or it needs authentication) and Unavailable (Stripe did not answer).
    """
    organisation = user.organisation
    existing = saved_method(session, organisation.id, payment_method)
    if existing is not None:
        return existing
    customer_id = customer_for(session, gateway, organisation, now)
    setup = PaymentSetup(
        organisation_id=organisation.id,
        user_id=user.id,
        requested_method=payment_method,
        state=SetupState.PENDING,
        created_at=now,
    )
    session.add(setup)
    session.commit()
    try:
        result = gateway.save_payment_method(
            customer_id=customer_id,
            payment_method=payment_method,
            key=setup.idempotency_key,
            metadata={"payment_setup_id": str(setup.id), "organisation_id": str(organisation.id)},
        )
    except UnknownPaymentMethod:
        setup.state, setup.failure_code = SetupState.INVALID, "resource_missing"
        session.commit()
        raise ValidationFailed(
            errors={"payment_method": ["Stripe does not know this payment method."]}
        ) from None
    except (Declined, AuthenticationRequired) as error:
        setup.state, setup.failure_code = SetupState.DECLINED, error.code[:60]
        session.commit()
        raise PaymentRequired(f"The card was declined ({error.code}).") from None
    except GatewayError as error:
        raise Unavailable(str(error)) from None
    setup.state = SetupState.SUCCEEDED
    setup.setup_intent_id = result.setup_intent_id
    setup.payment_method_id = result.payment_method_id
    setup.brand, setup.last4 = result.brand[:20], result.last4[:4]
    session.commit()
    return SavedCard(setup.id, setup.payment_method_id, setup.label)


# --- charges --------------------------------------------------------------------------


def _books(session: Session, pledge: Pledge):
    return (
        get_account(session, AccountKind.STRIPE_CLEARING),
        get_account(session, AccountKind.BUYER, organisation_id=pledge.organisation_id),
        get_account(session, AccountKind.ESCROW, project_id=pledge.project_id),
    )


def record_success(
    session: Session, payment: Payment, now: datetime, payment_intent_id: str | None = None
) -> None:
    """The charge succeeded: the pledge is paid and the money is in the project's escrow.

    Repeating it (a webhook after the sweep) changes nothing.
    """
    if payment_intent_id and payment.payment_intent_id is None:
        payment.payment_intent_id = payment_intent_id
    if payment.state == MoneyState.SUCCEEDED:
        return
    payment.state, payment.updated_at, payment.failure_code = MoneyState.SUCCEEDED, now, ""
    pledge = session.get(Pledge, payment.pledge_id)
    clearing, buyer, escrow = _books(session, pledge)
    post(
        session,
        reference=f"payment:{payment.id}",
        kind="charge",
        now=now,
        memo=f"pledge {pledge.id}: {pledge.tokens} tokens",
        legs=[
            Leg(debit=clearing, credit=buyer, amount_cents=payment.amount_cents),
            Leg(debit=buyer, credit=escrow, amount_cents=payment.amount_cents),
        ],
    )
    if pledge.state in (PledgeState.COMMITTED, PledgeState.PAYMENT_FAILED):
        pledge_states.change(
            session,
            pledge,
            PledgeState.PAID,
            actor=None,
            now=now,
            reason=f"{payment.kind.value} payment {payment.id} succeeded",
        )
        session.execute(
            Project.__table__.update()
            .where(Project.id == pledge.project_id)
            .values(tokens_paid=Project.tokens_paid + pledge.tokens)
        )
    session.flush()


def record_failure(
    session: Session,
    payment: Payment,
    code: str,
    now: datetime,
    grace_hours: int,
    payment_intent_id: str | None = None,
) -> None:
    """The charge failed: an off-session failure opens the pledge's grace period."""
    if payment_intent_id and payment.payment_intent_id is None:
        payment.payment_intent_id = payment_intent_id
    if payment.state in (MoneyState.SUCCEEDED, MoneyState.FAILED):
        return
    payment.state, payment.failure_code, payment.updated_at = MoneyState.FAILED, code[:60], now
    pledge = session.get(Pledge, payment.pledge_id)
    if pledge.state == PledgeState.COMMITTED:
        pledge.grace_until = now + timedelta(hours=grace_hours)
        pledge_states.change(
            session,
            pledge,
            PledgeState.PAYMENT_FAILED,
            actor=None,
            now=now,
            reason=f"charge failed: {code}",
        )
        project = pledge.project
        notify(
            session,
            key=f"payment_failed:pledge:{pledge.id}",
            organisation_id=pledge.organisation_id,
            kind="payment_failed",
            message=messages.PAYMENT_FAILED,
            params={
                "project": project.title,
                "tokens": pledge.tokens,
                "code": code,
                "until_at": pledge.grace_until.isoformat(),
            },
            link=f"/pledges#pledge-{pledge.id}",
            now=now,
        )
    session.flush()


def execute_payment(
    session: Session,
    gateway: StripeGateway,
    payment: Payment,
    *,
    customer_id: str | None,
    now: datetime,
    grace_hours: int,
) -> PaymentResult:
    """Send a committed ``created`` payment to Stripe and record the answer (commits).

    Raises GatewayUnavailable when Stripe did not answer: the row stays ``created``.
    """
    pledge = session.get(Pledge, payment.pledge_id)
    session.commit()
    try:
        result = gateway.charge(
            customer_id=customer_id,
            payment_method=payment.payment_method_id,
            amount_cents=payment.amount_cents,
            key=payment.idempotency_key,
            off_session=payment.kind == PaymentKind.OFF_SESSION,
            transfer_group=transfer_group(pledge.project_id),
            metadata={
                "payment_id": str(payment.id),
                "pledge_id": str(pledge.id),
                "project_id": str(pledge.project_id),
            },
        )
    except (Declined, AuthenticationRequired) as error:
        record_failure(session, payment, error.code, now, grace_hours, error.payment_intent_id)
        session.commit()
        raise
    if payment.payment_intent_id is None:
        payment.payment_intent_id = result.payment_intent_id
    if result.status == "succeeded":
        record_success(session, payment, now)
    elif result.status == "requires_action":
        payment.state, payment.updated_at = MoneyState.REQUIRES_ACTION, now
    elif result.status == "requires_payment_method":
        record_failure(session, payment, "requires_payment_method", now, grace_hours)
    session.commit()
    return result


def customer_id_of(session: Session, organisation_id: int) -> str | None:
    found = session.get(StripeCustomer, organisation_id)
    return found.customer_id if found else None


# --- refunds ----------------------------------------------------------------------------


def _send_refund(
    gateway: StripeGateway, *, refund_id: int, pledge_id: int, payment_intent_id: str, amount: int
):
    """The one way a refund row becomes a Stripe refund: same key, same parameters."""
    return gateway.refund(
        payment_intent_id=payment_intent_id,
        amount_cents=amount,
        key=refund_key(refund_id),
        metadata={"refund_id": str(refund_id), "pledge_id": str(pledge_id)},
    )


def _refund_legs(session: Session, organisation_id: int, project_id: int, amount: int):
    clearing = get_account(session, AccountKind.STRIPE_CLEARING)
    buyer = get_account(session, AccountKind.BUYER, organisation_id=organisation_id)
    escrow = get_account(session, AccountKind.ESCROW, project_id=project_id)
    return [
        Leg(debit=escrow, credit=buyer, amount_cents=amount),
        Leg(debit=buyer, credit=clearing, amount_cents=amount),
    ]


def _pledge_refunded_in_full(session: Session, pledge: Pledge, now: datetime) -> None:
    """An unfunded project's pledge, refunded: it and its tokens leave the project."""
    if pledge.state != PledgeState.PAID:
        return
    pledge_states.change(
        session,
        pledge,
        PledgeState.REFUNDED,
        actor=None,
        now=now,
        reason="the project is unfunded: refunded in full",
    )
    session.execute(
        Project.__table__.update()
        .where(Project.id == pledge.project_id)
        .values(
            tokens_paid=Project.tokens_paid - pledge.tokens,
            tokens_pledged=Project.tokens_pledged - pledge.tokens,
        )
    )


def execute_refund(session: Session, gateway: StripeGateway, refund: Refund, now: datetime) -> None:
    """Send a committed ``created`` refund to Stripe and record it (commits)."""
    payment = session.get(Payment, refund.payment_id)
    session.commit()
    result = _send_refund(
        gateway,
        refund_id=refund.id,
        pledge_id=refund.pledge_id,
        payment_intent_id=payment.payment_intent_id,
        amount=refund.amount_cents,
    )
    refund.refund_id = result.id
    refund.state, refund.updated_at = MoneyState.SUCCEEDED, now
    pledge = session.get(Pledge, refund.pledge_id)
    post(
        session,
        reference=f"refund:{refund.id}",
        kind="refund",
        now=now,
        memo=f"pledge {pledge.id}: {refund.reason}",
        legs=_refund_legs(session, pledge.organisation_id, pledge.project_id, refund.amount_cents),
    )
    if refund.reason == "unfunded":
        _pledge_refunded_in_full(session, pledge, now)
    session.commit()


@dataclass(frozen=True)
class DueRefund:
    """What sending and recording one refund row needs, read in one query."""

    id: int
    pledge_id: int
    reason: str
    amount_cents: int
    payment_intent_id: str
    organisation_id: int
    project_id: int


def due_refunds():
    """The query of every refund row not yet made at Stripe, as ``DueRefund`` columns."""
    return (
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


def execute_refunds_together(
    session: Session, gateway: StripeGateway, due: list[DueRefund], now: datetime
) -> tuple[int, int]:
    """Send each refund to Stripe, then record them all in one transaction.

    Each call carries its row's key, so when recording fails (or the process
    dies first) the rows stay ``created`` and the next attempt gets the same
    Stripe refunds back. A batch that cannot be recorded together is recorded
    one refund at a time. Returns (sent, left for the next run).
    """
    session.commit()
    sent, waiting = [], 0
    for row in due:
        try:
            result = _send_refund(
                gateway,
                refund_id=row.id,
                pledge_id=row.pledge_id,
                payment_intent_id=row.payment_intent_id,
                amount=row.amount_cents,
            )
        except GatewayError as error:
            waiting += 1
            log.warning("refund %s waits for the next run: %s", row.id, error)
            continue
        sent.append((row, result.id))
    if not sent:
        return 0, waiting
    try:
        _record_refunds(session, sent, now)
        session.commit()
    except (LedgerError, IntegrityError) as error:
        session.rollback()
        log.warning("recording %d refunds together failed (%s); one by one", len(sent), error)
        recorded = 0
        for row, _stripe_id in sent:
            try:
                execute_refund(session, gateway, session.get(Refund, row.id), now)
                recorded += 1
            except (LedgerError, GatewayError) as one:
                session.rollback()
                log.error("refund %s cannot be recorded: %s", row.id, one)
        return recorded, waiting + len(sent) - recorded
    return len(sent), waiting


def _record_refunds(session: Session, sent: list[tuple[DueRefund, str]], now: datetime) -> None:
    still_open = set(
        session.scalars(
            select(Refund.id)
            .where(Refund.id.in_([row.id for row, _ in sent]), Refund.state == MoneyState.CREATED)
            .with_for_update()
        )
    )
    todo = [(row, stripe_id) for row, stripe_id in sent if row.id in still_open]
    if not todo:
        return
    session.execute(
        update(Refund),
        [
            {"id": row.id, "refund_id": stripe_id, "state": MoneyState.SUCCEEDED, "updated_at": now}
            for row, stripe_id in todo
        ],
    )
    post_many(
        session,
        [
            Posting(
                reference=f"refund:{row.id}",
                kind="refund",
                memo=f"pledge {row.pledge_id}: {row.reason}",
                legs=_refund_legs(session, row.organisation_id, row.project_id, row.amount_cents),
            )
            for row, _ in todo
        ],
        now=now,
    )
    for row, _ in todo:
        if row.reason == "unfunded":
            _pledge_refunded_in_full(session, session.get(Pledge, row.pledge_id), now)
    session.flush()


# --- payouts (Stripe Connect) ---------------------------------------------------------------


def connected_account(session: Session, organisation_id: int) -> ConnectedAccount | None:
    return session.get(ConnectedAccount, organisation_id)


def start_onboarding(
    session: Session,
    gateway: StripeGateway,
    user: User,
    *,
    return_url: str,
    refresh_url: str,
    now: datetime,
) -> str:
    """The Stripe onboarding URL for the user's organisation, creating its account once."""
    organisation = user.organisation
    account = connected_account(session, organisation.id)
    session.commit()
    try:
        if account is None:
            account_id = gateway.create_account(
                organisation_id=organisation.id,
                name=organisation.name,
                email=user.email,
                key=f"connect-organisation-{organisation.id}",
            )
            try:
                with session.begin_nested():
                    session.add(
                        ConnectedAccount(
                            organisation_id=organisation.id,
                            account_id=account_id,
                            created_at=now,
                            updated_at=now,
                        )
                    )
            except IntegrityError:
                pass
            session.commit()
            account = connected_account(session, organisation.id)
        return gateway.onboarding_link(
            account_id=account.account_id, return_url=return_url, refresh_url=refresh_url
        )
    except GatewayError as error:
        raise Unavailable(str(error)) from None


def refresh_account(
    session: Session, gateway: StripeGateway, account: ConnectedAccount, now: datetime
) -> ConnectedAccount:
    try:
        status = gateway.account_status(account.account_id)
    except GatewayError as error:
        raise Unavailable(str(error)) from None
    account.details_submitted = status.details_submitted
    account.payouts_enabled = status.payouts_enabled and status.transfers_active
    account.updated_at = now
    session.flush()
    return account


def execute_transfer(
    session: Session,
    gateway: StripeGateway,
    transfer: Transfer,
    account: ConnectedAccount,
    now: datetime,
) -> None:
    """Send a committed ``created`` transfer to the connected account and book it (commits)."""
    session.commit()
    result = gateway.transfer(
        account_id=account.account_id,
        amount_cents=transfer.amount_cents,
        transfer_group=transfer_group(transfer.project_id),
        key=transfer.idempotency_key,
        metadata={
            "transfer_id": str(transfer.id),
            "project_id": str(transfer.project_id),
            "kind": transfer.kind,
        },
    )
    transfer.transfer_id = result.id
    transfer.state, transfer.updated_at = MoneyState.SUCCEEDED, now
    payable = get_account(session, AccountKind.PAYABLE, organisation_id=transfer.organisation_id)
    clearing = get_account(session, AccountKind.STRIPE_CLEARING)
    post(
        session,
        reference=f"transfer:{transfer.id}",
        kind="transfer",
        now=now,
        memo=f"project {transfer.project_id}: {transfer.kind}",
        legs=[Leg(debit=payable, credit=clearing, amount_cents=transfer.amount_cents)],
    )
    session.commit()
