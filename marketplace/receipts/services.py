"""Issuing receipts and credit notes, gap-free per year (see models for the invariants).

``issue`` writes a receipt for every successful charge that has none and a credit note
for every succeeded refund that has none, numbering them in one sequence. It first
locks the year's counter row (``SELECT ... FOR UPDATE``; on SQLite the transaction's
write lock does the same), then looks for what is due: two issuers in any two
processes queue there, and the second sees what the first wrote. Numbers are taken in
the same transaction as the documents, so a rollback gives them back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from config import Settings
from marketplace.accounts.models import Organisation, Role, User
from marketplace.funding.models import Pledge
from marketplace.notifications.services import EMAIL_LANGUAGES
from marketplace.payments.models import MethodType, MoneyState, Payment, PaymentState, Refund
from marketplace.projects.models import Project
from marketplace.receipts import document
from marketplace.receipts.models import DocumentKind, Receipt, ReceiptCounter, document_number
from outcomes.errors import NotFound

BATCH = 500
CHARGED = (PaymentState.SUCCEEDED, PaymentState.SURPLUS)


@dataclass(frozen=True)
class Issuer:
    """The platform as a party to its receipts (settings: PLATFORM_*)."""

    legal_name: str
    address: str
    registry_id: str
    vat_id: str
    currency: str
    timezone: str

    @classmethod
    def of(cls, settings: Settings) -> Issuer:
        return cls(
            settings.platform_legal_name,
            settings.platform_address,
            settings.platform_registry_id,
            settings.platform_vat_id,
            settings.currency,
            settings.timezone,
        )

    def party(self) -> dict[str, str]:
        return {
            "legal_name": self.legal_name,
            "address": self.address,
            "registry_id": self.registry_id,
            "vat_id": self.vat_id,
        }


def _lock_counter(session: Session, year: int) -> int:
    """The year's last number, its counter row locked until the transaction ends."""
    dialect = session.get_bind().dialect.name
    maker = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(maker(ReceiptCounter).values(year=year, last_number=0).on_conflict_do_nothing())
    last = session.scalar(
        select(ReceiptCounter.last_number).where(ReceiptCounter.year == year).with_for_update()
    )
    return int(last or 0)


def _buyer(organisation: Organisation) -> dict[str, str]:
    return {
        "name": organisation.name,
        "legal_name": organisation.legal_name,
        "address": organisation.address,
        "registry_id": organisation.registry_id,
        "vat_id": organisation.vat_id,
    }


def _facts(session: Session, payment: Payment, issuer: Issuer) -> tuple[dict[str, Any], str, int]:
    """What a receipt for ``payment`` says, the language of its buyer, and the buyer
    organisation."""
    pledge = session.get_one(Pledge, payment.pledge_id)
    person = session.get(User, pledge.user_id)
    language = person.language if person and person.language in EMAIL_LANGUAGES else "en"
    details = {
        **invoice_facts(session, pledge, issuer),
        "amount_cents": payment.amount_cents,
        "paid_at": payment.updated_at.isoformat(),
        "method": _method(payment, pledge),
    }
    return details, language, pledge.organisation_id


def _method(payment: Payment, pledge: Pledge) -> str:
    """How it was paid: the card, the SEPA account, or ``bank_transfer`` (translated)."""
    if payment.method_type is MethodType.BANK_TRANSFER:
        return MethodType.BANK_TRANSFER.value
    if payment.method_type is MethodType.SEPA_DEBIT:
        return pledge.payment_setup.label
    return payment.card if payment.card_last4 else payment.payment_method_id[:24]


def invoice_facts(session: Session, pledge: Pledge, issuer: Issuer) -> dict[str, Any]:
    """What a bank-transfer pledge's invoice says of its parties and purchase."""
    project = session.get_one(Project, pledge.project_id)
    organisation = session.get_one(Organisation, pledge.organisation_id)
    return {
        "seller": issuer.party(),
        "buyer": _buyer(organisation),
        "project": {"id": project.id, "reference": project.reference, "title": project.title},
        "pledge_id": pledge.id,
        "tokens": pledge.tokens,
        "price_cents": project.token_price_cents or 0,
    }


def _write(
    session: Session,
    *,
    kind: DocumentKind,
    year: int,
    sequence: int,
    paid: tuple[int, int, int],  # the payment, its pledge and the buyer organisation
    details: dict[str, Any],
    language: str,
    issuer: Issuer,
    now: datetime,
    refund: Refund | None = None,
    refers_to: Receipt | None = None,
) -> None:
    number = document_number(year, sequence)
    pdf = document.render(
        document.words(
            kind=kind.value,
            number=number,
            issued_at=now,
            details=details,
            language=language,
            currency=issuer.currency,
            zone=issuer.timezone,
        ),
        author=issuer.legal_name,
    )
    session.execute(
        insert(Receipt).values(
            number=number,
            year=year,
            sequence=sequence,
            kind=kind,
            payment_id=paid[0],
            refund_id=refund.id if refund else None,
            refers_to_id=refers_to.id if refers_to else None,
            pledge_id=paid[1],
            organisation_id=paid[2],
            amount_cents=details["amount_cents"],
            currency=issuer.currency,
            language=language,
            issued_at=now,
            details=details,
            pdf=pdf,
            sha256=hashlib.sha256(pdf).hexdigest(),
        )
    )


def issue(
    session: Session,
    issuer: Issuer,
    *,
    now: datetime,
    payment_ids: Sequence[int] | None = None,
    limit: int = BATCH,
) -> tuple[int, int]:
    """Receipts for charges without one, then credit notes for refunds without one (of
    ``payment_ids`` only, when given). Returns (receipts, credit notes) written."""
    year = now.astimezone(ZoneInfo(issuer.timezone)).year
    last = _lock_counter(session, year)
    has_receipt = select(Receipt.id).where(
        Receipt.payment_id == Payment.id, Receipt.kind == DocumentKind.RECEIPT
    )
    charges = select(Payment).where(Payment.state.in_(CHARGED), ~has_receipt.exists())
    if payment_ids is not None:
        charges = charges.where(Payment.id.in_(payment_ids))
    due = session.scalars(charges.order_by(Payment.id).limit(limit)).all()
    for payment in due:
        last += 1
        details, language, organisation_id = _facts(session, payment, issuer)
        _write(
            session,
            kind=DocumentKind.RECEIPT,
            year=year,
            sequence=last,
            paid=(payment.id, payment.pledge_id, organisation_id),
            details=details,
            language=language,
            issuer=issuer,
            now=now,
        )
    note = aliased(Receipt)
    has_note = select(note.id).where(note.refund_id == Refund.id)
    refunds = (
        select(Refund, Receipt)
        .join(
            Receipt,
            and_(Receipt.payment_id == Refund.payment_id, Receipt.kind == DocumentKind.RECEIPT),
        )
        .where(Refund.state == MoneyState.SUCCEEDED, ~has_note.exists())
    )
    if payment_ids is not None:
        refunds = refunds.where(Refund.payment_id.in_(payment_ids))
    notes = session.execute(refunds.order_by(Refund.id).limit(limit)).all()
    for refund, receipt in notes:
        last += 1
        details = {
            **receipt.details,
            "amount_cents": refund.amount_cents,
            "reason": refund.reason,
            "refers_to": receipt.number,
        }
        _write(
            session,
            kind=DocumentKind.CREDIT_NOTE,
            year=year,
            sequence=last,
            paid=(receipt.payment_id, receipt.pledge_id, receipt.organisation_id),
            details=details,
            language=receipt.language,
            issuer=issuer,
            now=now,
            refund=refund,
            refers_to=receipt,
        )
    if due or notes:
        session.execute(
            update(ReceiptCounter).where(ReceiptCounter.year == year).values(last_number=last)
        )
    session.flush()
    return len(due), len(notes)


def of_organisation(session: Session, user: User) -> list[Receipt]:
    """The documents of the person's organisation (admins: every one), newest first."""
    query = select(Receipt).order_by(Receipt.year.desc(), Receipt.sequence.desc())
    if user.role is not Role.ADMIN:
        query = query.where(Receipt.organisation_id == user.organisation_id)
    return list(session.scalars(query.limit(1000)))


def get(session: Session, user: User, receipt_id: int) -> Receipt:
    """One document, for its buyer organisation's people and admins; others: not found."""
    found = session.get(Receipt, receipt_id)
    if found is None or not (
        user.role is Role.ADMIN
        or (user.role is Role.BUYER and found.organisation_id == user.organisation_id)
    ):
        raise NotFound("No such receipt.")
    return found
