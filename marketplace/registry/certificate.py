"""The retirement certificate: one A4 page in PDF, with a QR code of its public page.

Layout only: the words come ready in the reader's language (``CertificateText``, made
by the view), and every one goes through ``pdf_text`` into a Paragraph, so long
names wrap inside the margins instead of running off the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from io import BytesIO

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

from marketplace.core.exports import a4_document, pdf_text

MARGIN = 20 * mm
QR_SIDE = 38 * mm


@dataclass(frozen=True)
class CertificateText:
    """What a certificate says, in the reader's language, figures formatted."""

    document_title: str
    platform: str
    title: str
    number: str
    lead: str
    beneficiary: str
    facts: list[tuple[str, str]]  # (label, value)
    serials_heading: str
    serials: list[str]
    outcomes_heading: str
    outcomes: list[str]
    check: str
    url: str
    final: str
    note: str = ""
    extra: list[str] = field(default_factory=list)


def _qr(url: str) -> Drawing:
    qr = QrCodeWidget(url, barLevel="M")
    x0, y0, x1, y1 = qr.getBounds()
    drawing = Drawing(
        QR_SIDE, QR_SIDE, transform=[QR_SIDE / (x1 - x0), 0, 0, QR_SIDE / (y1 - y0), 0, 0]
    )
    drawing.add(qr)
    return drawing


def render(text: CertificateText) -> bytes:
    """The certificate as PDF bytes."""
    buffer = BytesIO()
    styles = getSampleStyleSheet()
    body = styles["BodyText"].clone("body", fontSize=10, leading=13)
    small = styles["BodyText"].clone("small", fontSize=8.5, leading=11)
    brand = styles["BodyText"].clone(
        "brand", fontName="Helvetica-Bold", textColor=colors.HexColor("#0b5d4b")
    )
    title = styles["Title"].clone("certificate-title", alignment=0, fontSize=18, leading=22)
    heading = styles["Heading3"].clone("heading", spaceBefore=6, spaceAfter=3)
    document = a4_document(buffer, margin=MARGIN, title=text.document_title, author=text.platform)
    width = document.width

    def p(value: str, style=body) -> Paragraph:
        return Paragraph(pdf_text(value), style)

    facts = Table(
        [[p(label, small), p(value)] for label, value in text.facts],
        colWidths=[45 * mm, width - 45 * mm],
    )
    facts.hAlign = "LEFT"
    facts.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#d3dbd8")),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    story = [
        p(text.platform, brand),
        Spacer(1, 3 * mm),
        p(text.title, title),
        p(text.number),
        Spacer(1, 3 * mm),
        p(text.lead, styles["Heading2"]),
        p(text.beneficiary, styles["Heading3"]),
        Spacer(1, 2 * mm),
        facts,
        p(text.serials_heading, heading),
        *[p(serial) for serial in text.serials],
        p(text.outcomes_heading, heading),
        *[p(line) for line in text.outcomes],
        *[p(line) for line in text.extra],
    ]
    if text.note:
        story += [Spacer(1, 2 * mm), p(text.note, small)]
    check = Table(
        [
            [
                [p(text.check, small), p(text.url, small), Spacer(1, 2 * mm), p(text.final, small)],
                _qr(text.url),
            ]
        ],
        colWidths=[width - QR_SIDE - 4 * mm, QR_SIDE + 4 * mm],
    )
    check.hAlign = "LEFT"
    check.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "BOTTOM"), ("LEFTPADDING", (0, 0), (0, 0), 0)])
    )
    story += [Spacer(1, 6 * mm), check]
    document.build(story)
    return buffer.getvalue()
