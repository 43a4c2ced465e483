"""Dashboards and the buyer's impact report, checked against the ledger and the registry."""

from __future__ import annotations

import csv
import io

import pypdfium2
from sqlalchemy import func, select

from marketplace.accounts.models import Role
from marketplace.funding.models import Pledge
from marketplace.ledger.models import JournalEntry, JournalLeg
from marketplace.payments.models import Payment, Refund
from marketplace.registry.models import BlockStatus, TokenBlock
from tests.factories import UserFactory
from tests.integration.test_settlement import (  # noqa: F401 - the fixtures
    retire,
    settled_example,
    worked_example,
)


def read_csv(text: str) -> dict[str, list[dict]]:
    """The report's sections: {section: [row as {column: value}]}."""
    found: dict[str, list[dict]] = {}
    header = None
    for row in csv.reader(io.StringIO(text)):
        if not row:
            header = None
        elif header is None:
            header = row[1:]
        else:
            found.setdefault(row[0], []).append(dict(zip(header, row[1:], strict=True)))
    return found


def ledger_total(session, prefix: str, ids) -> int:
    """The money the journal moved in the entries ``{prefix}:{id}``.

    A charge and a refund each pass through the buyer's account in two legs of
    the same amount (clearing -> buyer -> escrow, and back).
    """
    references = [f"{prefix}:{i}" for i in ids]
    legs = session.execute(
        select(JournalEntry.reference, func.sum(JournalLeg.amount_cents))
        .join(JournalLeg, JournalLeg.entry_id == JournalEntry.id)
        .where(JournalEntry.reference.in_(references))
        .group_by(JournalEntry.reference)
    ).all()
    return sum(total // 2 for _reference, total in legs)


def test_the_impact_report_agrees_with_the_ledger_and_the_registry(
    app, client, session, auth_headers, web, settled_example
):
    project, bank = settled_example.project, settled_example.bank
    retired = retire(
        client,
        auth_headers(bank),
        project.id,
        100,
        "report-1",
        purpose="csrd_report",
        contract_reference="ROT-2027-0042",
    )
    assert retired.status_code == 201, retired.json

    web.login(bank.email)
    page = web.get("/dashboard")
    assert page.status_code == 200
    assert "<svg" in page.get_data(as_text=True)
    report = read_csv(web.get("/impact-report.csv").get_data(as_text=True))

    session.rollback()
    pledges = select(Pledge.id).where(Pledge.organisation_id == bank.organisation_id)
    payment_ids = session.scalars(select(Payment.id).where(Payment.pledge_id.in_(pledges))).all()
    refund_ids = session.scalars(select(Refund.id).where(Refund.pledge_id.in_(pledges))).all()
    summary = {row["figure"]: row["value"] for row in report["summary"]}
    assert summary["paid (EUR)"] == "29530.00"  # 1,000 tokens at 29.53
    assert ledger_total(session, "payment", payment_ids) == 2_953_000
    assert summary["refunded (EUR)"] == "1358.38"
    assert ledger_total(session, "refund", refund_ids) == 135_838
    size = TokenBlock.last_serial - TokenBlock.first_serial + 1
    held, gone = (
        session.scalar(
            select(func.sum(size)).where(
                TokenBlock.holder_id == bank.organisation_id, TokenBlock.status == status
            )
        )
        for status in (BlockStatus.ISSUED, BlockStatus.RETIRED)
    )
    assert (summary["tokens held"], summary["tokens retired"]) == (str(held), str(gone))
    assert (held, gone) == (565, 100)
    assert summary["tokens minted to you"] == "665"
    [funded] = report["projects funded"]
    assert (funded["tokens paid"], funded["tokens minted"]) == ("1000", "665")
    [outcome] = report["outcomes verified"]
    assert (outcome["verified"], outcome["your share"]) == ("14", "5.54")  # 14 x 665/1,680
    [point] = report["data points"]
    # grouped by the value bank's reporting tags, never guessed from the code
    assert (point["ESRS topic"], point["disclosure requirement"], point["quantity"]) == (
        "S3",
        "S3-4",
        "5.54",
    )
    assert point["SDG targets"] == "8.5, 1.2, 10.2"
    [retirement] = report["retirements"]
    assert (retirement["purpose"], retirement["contract reference"]) == (
        "csrd_report",
        "ROT-2027-0042",
    )
    assert {row["serial block"] for row in report["tokens"]} == {
        f"SOM-P{project.id:06d}-2027-0000001-0000100",
        f"SOM-P{project.id:06d}-2027-0000101-0000665",
    }
    # the charge's receipt and the refund's credit note referring to it
    receipt, note = report["receipts"]
    assert (receipt["document"], receipt["amount (EUR)"]) == ("receipt", "29530.00")
    assert (note["document"], note["amount (EUR)"]) == ("credit_note", "1358.38")
    assert note["refers to"] == receipt["number"] and receipt["number"].startswith("SOM-20")

    pdf = web.get("/impact-report.pdf")
    assert pdf.headers["Content-Type"] == "application/pdf"
    document = pypdfium2.PdfDocument(pdf.data)
    text = " ".join(
        " ".join(document[i].get_textpage().get_text_range().split()) for i in range(len(document))
    )
    for figure in ("€29,530.00", "€1,358.38", "ROT-2027-0042", "S3-4", "5.54"):
        assert figure in text, (figure, text)
    # words wrap between words, never inside one (a column as wide as its longest word)
    for word in (project.title, "verified", f"P{project.id:06d}", "SOM-P"):
        assert word in text, word

    web.client.set_cookie("som_lang", "nl")
    dutch = pypdfium2.PdfDocument(web.get("/impact-report.pdf").data)
    text = " ".join(
        " ".join(dutch[i].get_textpage().get_text_range().split()) for i in range(len(dutch))
    )
    for words in ("Impactrapport van", "€ 29.530,00", "€ 1.358,38", "Geverifieerde"):
        assert words in text, (words, text)
    assert "29530.00" not in text and "Impact report of" not in text
    # dates as the reader's language writes them (the CSV keeps ISO 8601)
    import re

    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text), text
    from config import PROJECT_ROOT

    folder = PROJECT_ROOT / "test-artifacts" / "pdf"
    folder.mkdir(parents=True, exist_ok=True)
    dutch[0].render(scale=1.5).to_pil().save(folder / "impact-report-nl.png")


def test_a_period_without_settlements_shows_none_and_bad_dates_are_422(web, settled_example):
    web.login(settled_example.bank.email)

    early = read_csv(web.get("/impact-report.csv?from=2026-01-01&to=2026-12-31").get_data(True))
    assert "projects funded" not in early  # settled in 2027
    assert web.get("/impact-report.csv?from=2027-13-01").status_code == 422
    assert web.get("/impact-report.csv?from=2027-06-01&to=2027-01-01").status_code == 422


def test_each_role_has_its_dashboard(app, web, session, worked_example):
    project, admin = worked_example
    owner = UserFactory(role=Role.ENTREPRENEUR, organisation=project.organisation)
    session.commit()
    web.login(owner.email)
    mine = web.get("/dashboard").get_data(as_text=True)
    assert project.title in mine and "Evaluation" in mine
    panel = web.as_user(admin.email).get("/dashboard").get_data(as_text=True)
    assert "Evaluations to assign" in panel
    assert web.as_user(owner.email).get("/impact-report.csv").status_code == 403


def test_the_platform_sees_the_money_on_its_way_and_the_time_left(web, session, clock):
    from datetime import timedelta

    from marketplace.payments.models import MoneyState
    from tests.factories import RefundFactory, TransferFactory

    admin = UserFactory(role=Role.ADMIN)
    for _ in range(3):
        RefundFactory(state=MoneyState.CREATED)
    TransferFactory(state=MoneyState.CREATED)
    for ago in (30, 50):  # two went out in the last minute
        RefundFactory(state=MoneyState.SUCCEEDED, updated_at=clock.at - timedelta(seconds=ago))
    RefundFactory(state=MoneyState.SUCCEEDED, updated_at=clock.at - timedelta(minutes=5))
    session.commit()
    web.login(admin.email)

    page = web.get("/dashboard").get_data(as_text=True)

    assert "Waiting for Stripe: 3 refunds and 1 transfers. In the last minute 2 went out." in page
    assert "At this pace about 2 minutes are left." in page
    web.client.set_cookie("som_lang", "nl")
    dutch = web.get("/dashboard").get_data(as_text=True)
    assert "Geld onderweg" in dutch and "nog ongeveer 2 minuten nodig" in dutch
