"""Money at Stripe, call by call: customers, saved cards, charges, refunds, payouts.

This module makes Stripe calls for rows and records what Stripe answered; what
an answer means for a pledge is decided by its owner (``funding.charges``),
which this module never imports.

Transactions are declared: every function that calls Stripe is a *process*
function. It takes a session factory (``sessions``), commits the row that
stands for the Stripe object first (its id is the idempotency key), makes the
call outside any transaction, and records the result in a new transaction. A
crash between the two leaves a ``created`` row that a sweep finishes by
repeating the call with the same key. The other functions only read or flush.

Every money movement is posted through ``ledger.postings`` with a reference
naming its row (``refund:42``), so recording the same result twice posts once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from marketplace.ledger import postings
from marketplace.ledger.models import JournalEntry
from marketplace.ledger.services import LedgerError, book, post_many, reverse
from marketplace.payments.gateway import (
    AuthenticationRequired,
    Declined,
    GatewayError,
    MandateAcceptance,
    MandateMissing,
    MoneyObject,
    PaymentResult,
    Refused,
    StripeGateway,
    UnknownPaymentMethod,
)
from marketplace.payments.models import (
    BANK_TRANSFER,
    BalanceReturn,
    ConnectedAccount,
    MethodType,
    MoneyState,
    Payment,
    PaymentKind,
    PaymentSetup,
    Refund,
    SetupState,
    StripeCustomer,
    Transfer,
    method_label,
    refund_key,
)
from outcomes.db import affected
from outcomes.errors import PaymentRequired, Unavailable, ValidationFailed

log = logging.getLogger(__name__)

Sessions = sessionmaker[Session]


def transfer_group(project_id: int) -> str:
    return f"project-{project_id}"


# --- customers and saved cards ------------------------------------------------------


def customer_id_of(session: Session, organisation_id: int) -> str | None:
    found = session.get(StripeCustomer, organisation_id)
    return found.customer_id if found else None


def customer_for(
    sessions: Sessions, gateway: StripeGateway, *, organisation_id: int, name: str, now: datetime
) -> str:
    """The organisation's Stripe Customer id, created once (process)."""
    with sessions() as session:
        known = customer_id_of(session, organisation_id)
    if known is not None:
        return known
    try:
        customer_id = gateway.create_customer(
            name=name,
            organisation_id=organisation_id,
            key=f"customer-organisation-{organisation_id}",
        )
    except GatewayError as error:
        raise Unavailable(str(error), retry_after=getattr(error, "retry_after", None)) from None
    with sessions.begin() as session:
        try:
            with session.begin_nested():
                session.add(
                    StripeCustomer(
                        organisation_id=organisation_id, customer_id=customer_id, created_at=now
                    )
                )
        except IntegrityError:  # a concurrent request stored it (the same id: same key)
            pass
    return customer_id


@dataclass(frozen=True)
class SavedCard:
    """A payment method saved for off-session charges (a card or a SEPA account with its
    mandate) or an organisation's bank-transfer "method", as pledging needs it."""

    id: int
    payment_method_id: str
    label: str
    method_type: MethodType = MethodType.CARD


def saved_query(organisation_id: Any, payment_method: Any) -> Select:
    """The organisation's method ready to charge: the one saved with this Stripe id, or
    its bank-transfer method for BANK_TRANSFER (the ids are values, or bind parameters).
    Its rows make SavedCards with ``saved_card``."""
    if isinstance(payment_method, str) and payment_method == BANK_TRANSFER:
        which = PaymentSetup.method_type == MethodType.BANK_TRANSFER
    else:
        which = PaymentSetup.payment_method_id == payment_method
    return select(
        PaymentSetup.id,
        PaymentSetup.payment_method_id,
        PaymentSetup.method_type,
        PaymentSetup.brand,
        PaymentSetup.last4,
    ).where(
        PaymentSetup.organisation_id == organisation_id,
        which,
        PaymentSetup.state == SetupState.SUCCEEDED,
    )


def saved_card(row: Any) -> SavedCard:
    """A row of ``saved_query`` (its columns, in its order) as a SavedCard."""
    setup_id, payment_method_id, method_type, brand, last4 = row
    return SavedCard(
        setup_id,
        payment_method_id or BANK_TRANSFER,
        method_label(method_type, brand, last4),
        method_type,
    )


def saved_method(session: Session, organisation_id: int, payment_method: str) -> SavedCard | None:
    found = session.execute(saved_query(organisation_id, payment_method)).first()
    return None if found is None else saved_card(found)


def bank_transfer_method(
    session: Session, *, organisation_id: int, user_id: int, now: datetime
) -> SavedCard:
    """The organisation's bank-transfer "method", made once (nothing is saved at Stripe:
    the virtual IBAN comes with the payment at close). Flushes."""
    found = saved_method(session, organisation_id, BANK_TRANSFER)
    if found is not None:
        return found
    try:
        with session.begin_nested():
            session.add(
                PaymentSetup(
                    organisation_id=organisation_id,
                    user_id=user_id,
                    requested_method=BANK_TRANSFER,
                    state=SetupState.SUCCEEDED,
                    method_type=MethodType.BANK_TRANSFER,
                    created_at=now,
                )
            )
    except IntegrityError:  # a concurrent request made it
        pass
    made = saved_method(session, organisation_id, BANK_TRANSFER)
    assert made is not None  # noqa: S101 - made above or by the twin
    return made


@dataclass(frozen=True)
class SepaAccount:
    """A bank account typed on the pledge form for SEPA Direct Debit, with the mandate."""

    iban: str
    holder: str
    email: str
    mandate: MandateAcceptance


def iban_valid(iban: str) -> bool:
    """ISO 13616: country letters, check digits, 11-30 letters and digits; mod 97 is 1."""
    if not (15 <= len(iban) <= 34) or not iban.isascii() or not iban.isalnum():
        return False
    if not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    moved = (iban[4:] + iban[:4]).upper()
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def saved_by_another(session: Session, organisation_id: int, payment_method: str) -> bool:
    """Whether another organisation saved this payment method (its id is theirs)."""
    return (
        session.scalar(
            select(PaymentSetup.id)
            .where(
                PaymentSetup.payment_method_id == payment_method,
                PaymentSetup.organisation_id != organisation_id,
            )
            .limit(1)
        )
        is not None
    )


def save_payment_method(
    sessions: Sessions,
    gateway: StripeGateway,
    *,
    organisation_id: int,
    organisation_name: str,
    user_id: int,
    payment_method: str,
    now: datetime,
    sepa: SepaAccount | None = None,
    mandate: MandateAcceptance | None = None,
) -> SavedCard:
    """A payment method saved for off-session charges: reused when already saved, else set
    up (process). ``sepa``: a bank account typed on the form, made a PaymentMethod first
    (``payment_method`` is then ``sepa_debit``); ``mandate``: the buyer's acceptance of the
    SEPA mandate for a ``sepa_debit`` PaymentMethod id.

    Raises ValidationFailed (unknown payment method, an IBAN Stripe refuses, a SEPA
    account without the mandate), PaymentRequired (declined, or it needs
    authentication) and Unavailable (Stripe did not answer).
    """
    if sepa is None:
        with sessions() as session:
            existing = saved_method(session, organisation_id, payment_method)
        if existing is not None:
            return existing
    customer_id = customer_for(
        sessions, gateway, organisation_id=organisation_id, name=organisation_name, now=now
    )
    with sessions.begin() as session:
        setup = PaymentSetup(
            organisation_id=organisation_id,
            user_id=user_id,
            requested_method=f"sepa_debit {sepa.iban[-4:]}" if sepa else payment_method,
            state=SetupState.PENDING,
            created_at=now,
        )
        session.add(setup)
        session.flush()
        setup_id, key = setup.id, setup.idempotency_key
    try:
        if sepa is not None:
            payment_method = gateway.create_sepa_method(
                iban=sepa.iban, holder=sepa.holder, email=sepa.email, key=f"{key}-method"
            )
            mandate = sepa.mandate
        result = gateway.save_payment_method(
            customer_id=customer_id,
            payment_method=payment_method,
            key=key,
            metadata={"payment_setup_id": str(setup_id), "organisation_id": str(organisation_id)},
            mandate=mandate,
        )
    except MandateMissing:
        _setup_ended(sessions, setup_id, SetupState.INVALID, "mandate_missing")
        raise ValidationFailed(
            errors={"mandate_accepted": ["Accept the SEPA Direct Debit mandate to pay by debit."]}
        ) from None
    except Refused as error:
        if sepa is None or error.code != "invalid_bank_account_iban":
            raise Unavailable(str(error), retry_after=getattr(error, "retry_after", None)) from None
        _setup_ended(sessions, setup_id, SetupState.INVALID, error.code)
        raise ValidationFailed(errors={"iban": ["Stripe does not accept this IBAN."]}) from None
    except UnknownPaymentMethod:
        _setup_ended(sessions, setup_id, SetupState.INVALID, "resource_missing")
        raise ValidationFailed(
            errors={"payment_method": ["Stripe does not know this payment method."]}
        ) from None
    except (Declined, AuthenticationRequired) as error:
        _setup_ended(sessions, setup_id, SetupState.DECLINED, error.code[:60])
        raise PaymentRequired(
            "The card was declined (%(code)s).", params={"code": error.code}
        ) from None
    except GatewayError as error:
        raise Unavailable(str(error), retry_after=getattr(error, "retry_after", None)) from None
    with sessions.begin() as session:
        setup = session.get_one(PaymentSetup, setup_id)
        setup.state = SetupState.SUCCEEDED
        setup.setup_intent_id = result.setup_intent_id
        setup.payment_method_id = result.payment_method_id
        setup.method_type = MethodType(result.method_type)
        setup.mandate_id = result.mandate_id
        setup.brand, setup.last4 = result.brand[:20], result.last4[:4]
        return SavedCard(setup.id, result.payment_method_id, setup.label, setup.method_type)


def _setup_ended(sessions: Sessions, setup_id: int, state: SetupState, code: str) -> None:
    with sessions.begin() as session:
        setup = session.get_one(PaymentSetup, setup_id)
        setup.state, setup.failure_code = state, code


# --- charges ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeOrder:
    """What one call to charge a claimed payment row needs, read before the call."""

    payment_id: int
    pledge_id: int
    project_id: int
    amount_cents: int
    payment_method_id: str
    off_session: bool
    customer_id: str | None
    method_type: MethodType = MethodType.CARD
    mandate_id: str | None = None

    @classmethod
    def of(
        cls,
        payment: Payment,
        project_id: int,
        customer_id: str | None,
        mandate_id: str | None = None,
    ) -> ChargeOrder:
        return cls(
            payment_id=payment.id,
            pledge_id=payment.pledge_id,
            project_id=project_id,
            amount_cents=payment.amount_cents,
            payment_method_id=payment.payment_method_id,
            off_session=payment.kind == PaymentKind.OFF_SESSION,
            customer_id=customer_id,
            method_type=payment.method_type,
            mandate_id=mandate_id,
        )


def send_charge(gateway: StripeGateway, order: ChargeOrder) -> PaymentResult:
    """The one way a payment row becomes a PaymentIntent: the same key, the same parameters.

    A card or a SEPA debit is charged; a bank transfer is asked for (its intent waits for
    the buyer's money). Raises Declined and AuthenticationRequired (with the
    PaymentIntent's id when Stripe made one) and GatewayUnavailable.
    """
    metadata = {
        "payment_id": str(order.payment_id),
        "pledge_id": str(order.pledge_id),
        "project_id": str(order.project_id),
    }
    if order.method_type is MethodType.BANK_TRANSFER:
        if order.customer_id is None:
            raise Refused("A bank transfer needs the buyer's Stripe customer.", code="customer")
        return gateway.bank_transfer(
            customer_id=order.customer_id,
            amount_cents=order.amount_cents,
            key=f"payment-{order.payment_id}",
            transfer_group=transfer_group(order.project_id),
            metadata=metadata,
        )
    return gateway.charge(
        customer_id=order.customer_id,
        payment_method=order.payment_method_id,
        amount_cents=order.amount_cents,
        key=f"payment-{order.payment_id}",
        off_session=order.off_session,
        transfer_group=transfer_group(order.project_id),
        metadata=metadata,
        mandate=order.mandate_id if order.method_type is MethodType.SEPA_DEBIT else None,
    )


# --- refunds ----------------------------------------------------------------------------


def _send_refund(
    gateway: StripeGateway, *, refund_id: int, pledge_id: int, payment_intent_id: str, amount: int
) -> MoneyObject:
    """The one way a refund row becomes a Stripe refund: same key, same parameters."""
    return gateway.refund(
        payment_intent_id=payment_intent_id,
        amount_cents=amount,
        key=refund_key(refund_id),
        metadata={"refund_id": str(refund_id), "pledge_id": str(pledge_id)},
    )


@dataclass(frozen=True)
class DueRefund:
    """What sending and recording one refund row needs, read in one query (by the
    owner of pledges, which knows each pledge's organisation and project)."""

    id: int
    pledge_id: int
    reason: str
    amount_cents: int
    payment_intent_id: str
    organisation_id: int
    project_id: int


# Called in the transaction that records refunds, with the rows recorded: the owner
# of pledges applies what a refund means for them (e.g. an unfunded pledge is refunded).
OnRefunded = Callable[[Session, list[DueRefund], datetime], None]


def send_refunds(
    sessions: Sessions,
    gateway: StripeGateway,
    due: list[DueRefund],
    now: datetime,
    on_refunded: OnRefunded,
) -> tuple[int, int]:
    """Send each refund to Stripe, then record them all in one transaction (process).

    Each call carries its row's key, so when recording fails (or the process
    dies first) the rows stay ``created`` and the next attempt gets the same
    Stripe refunds back. A batch that cannot be recorded together is recorded
    one refund at a time. Returns (recorded, left for the next run).
    """
    sent: list[tuple[DueRefund, str]] = []
    waiting = 0
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
        with sessions.begin() as session:
            _record_refunds(session, sent, now, on_refunded)
        return len(sent), waiting
    except (LedgerError, IntegrityError) as error:
        log.warning("recording %d refunds together failed (%s); one by one", len(sent), error)
    recorded = 0
    for one in sent:
        try:
            with sessions.begin() as session:
                _record_refunds(session, [one], now, on_refunded)
            recorded += 1
        except (LedgerError, IntegrityError) as error:
            log.error("refund %s cannot be recorded: %s", one[0].id, error)
    return recorded, waiting + len(sent) - recorded


def _record_refunds(
    session: Session, sent: list[tuple[DueRefund, str]], now: datetime, on_refunded: OnRefunded
) -> None:
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
            postings.refund(
                session,
                refund_id=row.id,
                pledge_id=row.pledge_id,
                reason=row.reason,
                organisation_id=row.organisation_id,
                project_id=row.project_id,
                amount_cents=row.amount_cents,
            )
            for row, _ in todo
        ],
        now=now,
    )
    on_refunded(session, [row for row, _ in todo], now)
    session.flush()


def refund_failed(session: Session, refund: Refund, code: str, now: datetime) -> bool:
    """Stripe says a refund we booked failed (the bank returned it): the row becomes
    ``failed`` and its journal entry is reversed, so the books hold the money again
    (reconciliation reports the failed refund for the team: the buyer is still owed it).
    Returns False when it was known already (flushes)."""
    if refund.state == MoneyState.FAILED:
        return False
    refund.state, refund.failure_code, refund.updated_at = MoneyState.FAILED, code[:60], now
    entry = session.scalar(
        select(JournalEntry).where(JournalEntry.reference == f"refund:{refund.id}")
    )
    if entry is not None:
        reverse(session, entry, now=now, reason=f"refund {refund.id} failed at Stripe: {code}")
    session.flush()
    return True


# --- money no payment needs (bank transfers) -------------------------------------------------


def note_cash_balance(
    session: Session, *, customer_id: str, amount_cents: int, now: datetime
) -> BalanceReturn | None:
    """Stripe says a buyer's cash balance holds money no payment took (more than was due,
    a transfer without a reference it could match, or a cancelled transfer's part): a
    return of it is opened, unless one is open already (flushes). None when the customer
    is not ours or nothing is there."""
    organisation_id = session.scalar(
        select(StripeCustomer.organisation_id).where(StripeCustomer.customer_id == customer_id)
    )
    if organisation_id is None or amount_cents <= 0:
        return None
    made = BalanceReturn(
        organisation_id=organisation_id,
        customer_id=customer_id,
        amount_cents=amount_cents,
        state=MoneyState.CREATED,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(made)
            session.flush()
    except IntegrityError:  # one is open: it is sent first, and the rest is noted again
        return None
    return made


def send_balance_returns(sessions: Sessions, gateway: StripeGateway, now: datetime) -> int:
    """Return every open balance to its buyer (process): the amount as noted, keyed by the
    row, and booked in and out of the buyer's account. An amount Stripe no longer holds
    (a payment took it meanwhile) ends the row as failed; the next note opens another."""
    with sessions() as session:
        due = session.execute(
            select(
                BalanceReturn.id,
                BalanceReturn.organisation_id,
                BalanceReturn.customer_id,
                BalanceReturn.amount_cents,
            )
            .where(BalanceReturn.state == MoneyState.CREATED)
            .order_by(BalanceReturn.id)
            .limit(100)
        ).all()
    returned = 0
    for row in due:
        try:
            result = gateway.return_balance(
                customer_id=row.customer_id,
                amount_cents=row.amount_cents,
                key=f"balance-return-{row.id}",
                metadata={"balance_return_id": str(row.id)},
            )
        except Refused as error:
            with sessions.begin() as session:
                session.execute(
                    update(BalanceReturn)
                    .where(BalanceReturn.id == row.id, BalanceReturn.state == MoneyState.CREATED)
                    .values(state=MoneyState.FAILED, failure_code=error.code[:60], updated_at=now)
                )
            log.warning("balance return %s refused: %s", row.id, error)
            continue
        except GatewayError as error:
            log.warning("balance return %s waits for the next run: %s", row.id, error)
            continue
        with sessions.begin() as session:
            done = session.execute(
                update(BalanceReturn)
                .where(BalanceReturn.id == row.id, BalanceReturn.state == MoneyState.CREATED)
                .values(state=MoneyState.SUCCEEDED, refund_id=result.id, updated_at=now)
            )
            if affected(done) == 1:
                book(
                    session,
                    postings.balance_returned(
                        session,
                        return_id=row.id,
                        organisation_id=row.organisation_id,
                        amount_cents=row.amount_cents,
                    ),
                    now=now,
                )
                returned += 1
    return returned


# --- payouts (Stripe Connect) ---------------------------------------------------------------


def connected_account(session: Session, organisation_id: int) -> ConnectedAccount | None:
    return session.get(ConnectedAccount, organisation_id)


def start_onboarding(
    sessions: Sessions,
    gateway: StripeGateway,
    *,
    organisation_id: int,
    organisation_name: str,
    email: str,
    return_url: str,
    refresh_url: str,
    now: datetime,
) -> str:
    """The Stripe onboarding URL for the organisation, creating its account once (process)."""
    with sessions() as session:
        account = connected_account(session, organisation_id)
        account_id = account.account_id if account else None
    try:
        if account_id is None:
            account_id = gateway.create_account(
                organisation_id=organisation_id,
                name=organisation_name,
                email=email,
                key=f"connect-organisation-{organisation_id}",
            )
            with sessions.begin() as session:
                try:
                    with session.begin_nested():
                        session.add(
                            ConnectedAccount(
                                organisation_id=organisation_id,
                                account_id=account_id,
                                created_at=now,
                                updated_at=now,
                            )
                        )
                except IntegrityError:  # a concurrent request stored it (same key: same id)
                    pass
        with sessions.begin() as session:  # count the link: its key comes from the row
            account = session.scalars(
                select(ConnectedAccount)
                .where(ConnectedAccount.organisation_id == organisation_id)
                .with_for_update()
            ).one()
            account.links_issued += 1
            session.flush()
            key = account.link_key()
        return gateway.onboarding_link(
            account_id=account_id, return_url=return_url, refresh_url=refresh_url, key=key
        )
    except GatewayError as error:
        raise Unavailable(str(error), retry_after=getattr(error, "retry_after", None)) from None


def refresh_account(
    session: Session, gateway: StripeGateway, account: ConnectedAccount, now: datetime
) -> ConnectedAccount:
    """Stripe's view of the payout account, copied onto ours (a read at Stripe; flushes)."""
    try:
        status = gateway.account_status(account.account_id)
    except GatewayError as error:
        raise Unavailable(str(error), retry_after=getattr(error, "retry_after", None)) from None
    account.details_submitted = status.details_submitted
    account.payouts_enabled = status.payouts_enabled and status.transfers_active
    account.updated_at = now
    session.flush()
    return account


@dataclass(frozen=True)
class DueTransfer:
    id: int
    project_id: int
    organisation_id: int
    kind: str
    amount_cents: int
    account_id: str


def send_transfer(
    sessions: Sessions, gateway: StripeGateway, due: DueTransfer, now: datetime
) -> None:
    """Send a committed ``created`` transfer to the connected account and book it (process)."""
    result = gateway.transfer(
        account_id=due.account_id,
        amount_cents=due.amount_cents,
        transfer_group=transfer_group(due.project_id),
        key=f"transfer-{due.id}",
        metadata={
            "transfer_id": str(due.id),
            "project_id": str(due.project_id),
            "kind": due.kind,
        },
    )
    with sessions.begin() as session:
        transfer = session.get_one(Transfer, due.id)
        if transfer.state == MoneyState.SUCCEEDED:
            return
        transfer.transfer_id = result.id
        transfer.state, transfer.updated_at = MoneyState.SUCCEEDED, now
        book(
            session,
            postings.payout(
                session,
                transfer_id=due.id,
                project_id=due.project_id,
                organisation_id=due.organisation_id,
                kind=due.kind,
                amount_cents=due.amount_cents,
            ),
            now=now,
        )
