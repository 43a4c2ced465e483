"""Receipts and credit notes (product.md "Payment methods and receipts"): one for every
charge and every refund, numbered gap-free per year also when two processes issue at
once, written once in the buyer's language, and shown only to the buyer's organisation
and the admins."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta

import pypdfium2
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from config import PROJECT_ROOT
from marketplace.accounts.models import Role
from marketplace.payments.models import MoneyState, Payment, PaymentState, Refund
from marketplace.receipts.models import DocumentKind, Receipt
from marketplace.receipts.services import Issuer, issue
from tests.factories import PaymentFactory, PledgeFactory, UserFactory
from tests.integration.test_settlement import (  # noqa: F401 - the fixtures
    ENDED,
    settled_example,
    worked_example,
)


def pdf_words(data: bytes) -> str:
    page = pypdfium2.PdfDocument(data)[0]
    return " ".join(page.get_textpage().get_text_range().split())


def test_every_charge_has_a_receipt_and_every_refund_a_credit_note(
    app, client, session, auth_headers, settled_example, web
):
    session.rollback()
    charged = session.scalars(
        select(Payment).where(Payment.state == PaymentState.SUCCEEDED).order_by(Payment.id)
    ).all()
    refunded = session.scalars(
        select(Refund).where(Refund.state == MoneyState.SUCCEEDED).order_by(Refund.id)
    ).all()
    documents = session.scalars(select(Receipt).order_by(Receipt.year, Receipt.sequence)).all()
    assert len(charged) == 2 and len(refunded) == 2  # both buyers paid; both were refunded
    receipts = [d for d in documents if d.kind is DocumentKind.RECEIPT]
    notes = [d for d in documents if d.kind is DocumentKind.CREDIT_NOTE]
    assert [r.payment_id for r in receipts] == [p.id for p in charged]
    assert [r.amount_cents for r in receipts] == [p.amount_cents for p in charged]
    assert sorted(n.refund_id for n in notes) == [r.id for r in refunded]
    by_id = {r.id: r for r in receipts}
    for note in notes:
        refund = session.get(Refund, note.refund_id)
        assert note.amount_cents == refund.amount_cents
        assert by_id[note.refers_to_id].payment_id == refund.payment_id
        assert note.details["refers_to"] == by_id[note.refers_to_id].number
    # one sequence a year, consecutive from the year's first: the charges were made when
    # funding closed, the refunds a year later at settlement
    years = sorted({d.year for d in documents})
    assert len(years) == 2
    for year in years:
        numbers = [d.number for d in documents if d.year == year]
        assert numbers == [f"SOM-{year}-{n:06d}" for n in range(1, len(numbers) + 1)]
    assert {d.year for d in receipts} == {years[0]} and {d.year for d in notes} == {years[1]}

    # a second tick writes nothing twice
    issuer = Issuer.of(app.extensions["settings"])
    assert issue(session, issuer, now=ENDED + timedelta(days=2)) == (0, 0)
    session.rollback()

    bank = settled_example.bank
    mine = client.get("/api/v1/receipts", headers=auth_headers(bank)).json
    # newest first: the credit note of the settlement's year, then the receipt before it
    assert [(r["kind"], r["number"]) for r in mine] == [
        ("credit_note", notes[0].number),
        ("receipt", receipts[0].number),
    ]
    first = receipts[0]
    words = pdf_words(web.as_user(bank.email).get(f"/receipts/{first.id}.pdf").data)
    assert first.number in words
    assert app.extensions["settings"].platform_legal_name in words
    assert settled_example.project.title in words


def test_a_dutch_buyer_gets_a_dutch_receipt_kept_as_issued(app, client, session, auth_headers, web):
    buyer = UserFactory(language="nl")
    buyer.organisation.legal_name = "Havenstad Bank N.V."
    buyer.organisation.registry_id = "24123456"
    pledge = PledgeFactory(organisation=buyer.organisation, user=buyer)
    payment = PaymentFactory(pledge=pledge, state=PaymentState.SUCCEEDED)
    session.commit()
    issuer = Issuer.of(app.extensions["settings"])
    assert issue(session, issuer, now=ENDED) == (1, 0)
    session.commit()
    receipt = session.scalars(select(Receipt).where(Receipt.payment_id == payment.id)).one()
    receipt_id, number, stored = receipt.id, receipt.number, receipt.pdf
    session.rollback()

    web.login(buyer.email)
    once = web.get(f"/receipts/{receipt_id}.pdf")
    assert once.status_code == 200 and once.mimetype == "application/pdf"
    words = pdf_words(once.data)
    assert "Ontvangstbewijs" in words and number in words
    assert "Havenstad Bank N.V." in words and "24123456" in words
    assert once.data == stored == web.get(f"/receipts/{receipt_id}.pdf").data

    # the database keeps it as issued
    with pytest.raises(DatabaseError):
        session.execute(
            text("UPDATE receipts SET amount_cents = 1 WHERE id = :id"), {"id": receipt_id}
        )
    session.rollback()

    # another buyer, even with its id, sees nothing; an admin sees it
    stranger = web.as_user(UserFactory().email)
    assert stranger.get(f"/receipts/{receipt_id}.pdf").status_code == 404
    assert "No such receipt." in stranger.get(f"/receipts/{receipt_id}.pdf").get_data(as_text=True)
    assert (
        client.get(
            f"/api/v1/receipts/{receipt_id}", headers=auth_headers(UserFactory())
        ).status_code
        == 404
    )
    admin = UserFactory(role=Role.ADMIN)
    session.commit()
    listed = client.get("/api/v1/receipts", headers=auth_headers(admin)).json
    assert [r["number"] for r in listed] == [number]


def test_twenty_receipts_issued_at_once_by_two_processes_are_numbered_without_gap(app, session):
    payments = [PaymentFactory(state=PaymentState.SUCCEEDED) for _ in range(20)]
    session.commit()
    ids = [p.id for p in payments]
    url = app.extensions["settings"].database_url
    start = time.time() + 3
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.issue_receipts", url, str(start)]
            + [str(i) for i in half],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for half in (ids[::2], ids[1::2])
    ]
    for process in processes:
        _out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err

    session.rollback()
    documents = session.scalars(select(Receipt).order_by(Receipt.sequence)).all()
    assert sorted(d.payment_id for d in documents) == sorted(ids)
    assert [d.sequence for d in documents] == list(range(1, 21))
    assert len({d.number for d in documents}) == 20
    session.rollback()
