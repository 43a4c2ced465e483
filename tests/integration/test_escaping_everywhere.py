"""Markup a person types is text wherever it is shown: pages, PDFs, CSV, e-mails.

The settled worked example gets markup in every free-text field people fill in
(the title, summary and city of the project, the organisations' names, the
evaluator's evidence note, the retirement's beneficiary, contract reference and
note, the reason of a return); every page that shows them is read by each
person who sees it, and no page may carry the markup as markup.
"""

from __future__ import annotations

import csv
import io
from email import message_from_bytes

import pypdfium2
from sqlalchemy import select, update

from marketplace.accounts.models import Organisation
from marketplace.projects.models import Project
from marketplace.registry.models import Retirement
from outcomes.evaluation import EvaluationResult
from tests.integration.test_notifications import NOW, mailing, smtp  # noqa: F401
from tests.integration.test_settlement import (  # noqa: F401 - fixtures
    retire,
    settled_example,
    worked_example,
)

MARK = '<b id="xss">M</b>'
ESCAPED = "&lt;b id=&#34;xss&#34;&gt;M&lt;/b&gt;"


def marked(text: str) -> str:
    return f"{text} {MARK}"


def test_markup_in_every_free_text_field_is_shown_as_text(
    app, client, session, auth_headers, web, settled_example, smtp
):
    project, bank = settled_example.project, settled_example.bank
    session.execute(
        update(Project)
        .where(Project.id == project.id)
        .values(title=marked("Jobs"), summary=marked("A summary"), city=marked("Rotterdam"))
    )
    session.execute(
        update(Organisation)
        .where(Organisation.id.in_([bank.organisation_id, project.organisation_id]))
        .values(name=Organisation.name + " " + MARK, registry_public=True)
    )
    session.execute(update(EvaluationResult).values(evidence_note=marked("Payroll")))
    session.commit()
    made = retire(
        client,
        auth_headers(bank),
        project.id,
        20,
        "escape-1",
        beneficiary=marked("Gemeente"),
        purpose="csrd_report",
        contract_reference=marked("ROT"),
        note=marked("For the tender"),
    )
    assert made.status_code == 201, made.json
    retirement_id = made.json["id"]
    session.rollback()
    assert MARK in session.get(Retirement, retirement_id).beneficiary  # stored as typed

    pages = {
        bank.email: [
            f"/projects/{project.id}",
            "/projects",
            "/dashboard",
            "/pledges",
            "/notices",
            "/holdings",
            f"/projects/{project.id}/settlement",
            f"/registry/retirements/{retirement_id}",
            "/registry",
        ],
        project.created_by.email: ["/dashboard", f"/projects/{project.id}/funding"],
        settled_example.admin.email: [
            "/admin/audit",
            "/admin/outbox",
            f"/evaluations/{settled_example.evaluation_id}",
            "/review",
        ],
    }
    shown = 0
    for email, paths in pages.items():
        browser = web.as_user(email)
        for path in paths:
            answer = browser.client.get(path)
            assert answer.status_code == 200, path
            page = answer.get_data(as_text=True)
            assert MARK not in page, path
            shown += page.count(ESCAPED)
    assert shown >= 10  # the marked texts are on the pages, escaped

    reader = web.as_user(bank.email)
    pdfs = [
        reader.client.get("/impact-report.pdf").data,
        reader.client.get(f"/registry/retirements/{retirement_id}/certificate.pdf").data,
    ]
    for data in pdfs:
        document = pypdfium2.PdfDocument(data)
        text = " ".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
        assert 'id="xss"' in text.replace("\r", "").replace("\n", " ")  # as written, as text

    for path in ("/impact-report.csv", "/registry.csv"):
        rows = csv.reader(io.StringIO(reader.client.get(path).get_data(as_text=True), newline=""))
        cells = [cell for row in rows for cell in row]
        assert any(MARK in cell for cell in cells), path  # plain text in a CSV

    port, inbox = smtp
    from marketplace.notifications.sweeps import deliver_notifications

    deliver_notifications(mailing(app, port), NOW)
    bodies = [message_from_bytes(m.content) for m in inbox.messages]
    assert bodies
    for mail in bodies:
        assert mail.get_content_type() == "text/plain"  # markup is never rendered
    session.rollback()
    assert session.scalar(select(Project.title).where(Project.id == project.id)) == marked("Jobs")
