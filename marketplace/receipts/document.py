"""A receipt or credit note as one A4 PDF page, in the buyer's language.

``words`` turns a document's stored facts into its text (translated with the
application's catalogue, amounts and dates for the reader's locale; no Flask needed,
so the scheduler writes them); ``render`` lays the text out. Every value goes through
``pdf_text`` into a Paragraph: shown as written, never read as markup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from io import BytesIO
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from reportlab.lib import colors
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

from marketplace.core.exports import a4_document, pdf_text
from marketplace.notifications.services import EMAIL_LANGUAGES, translator

MARGIN = 20 * mm


def N_(text: str) -> str:
    return text


REFUND_REASONS = {
    "unfunded": N_("the project did not reach its threshold"),
    "settlement": N_("outcomes not verified at settlement"),
    "surplus": N_("a second payment of the same pledge"),
}


METHODS = {"bank_transfer": N_("bank transfer"), "sepa_debit": N_("SEPA Direct Debit")}


@dataclass(frozen=True)
class DocumentText:
    title: str
    number_line: str
    parties: list[tuple[str, list[str]]]  # (heading, lines)
    lines_heading: list[str]  # the table's column headings
    lines: list[list[str]]
    total: tuple[str, str]
    notes: list[str]


def _party(details: dict[str, Any], gettext) -> list[str]:
    lines = [details.get("legal_name") or details.get("name") or ""]
    if details.get("address"):
        lines.append(details["address"])
    if details.get("registry_id"):
        lines.append(gettext("Registry id: %(id)s") % {"id": details["registry_id"]})
    if details.get("vat_id"):
        lines.append(gettext("VAT id: %(id)s") % {"id": details["vat_id"]})
    return lines


def _reader(
    language: str, currency: str, zone: str, details: dict[str, Any]
) -> tuple[Callable[[str], str], Callable[[int], str], Callable[[Any], str], str]:
    """How a document speaks to its reader: the catalogue, money, days (in the platform's
    zone) and the purchase ("12 impact tokens of P000007 ...")."""
    gettext = translator(language if language in EMAIL_LANGUAGES else "en")
    locale = EMAIL_LANGUAGES.get(language, "en_GB")

    def money(cents: int) -> str:
        return format_currency(Decimal(cents) / 100, currency, locale=locale)

    def day(value: str | datetime) -> str:
        instant = datetime.fromisoformat(value) if isinstance(value, str) else value
        return format_date(instant.astimezone(ZoneInfo(zone)).date(), "long", locale=locale)

    project = details["project"]
    what = gettext("%(tokens)s impact tokens of %(reference)s %(title)s") % {
        "tokens": format_decimal(details["tokens"], locale=locale),
        "reference": project["reference"],
        "title": project["title"],
    }
    return gettext, money, day, what


def words(
    *,
    kind: str,
    number: str,
    issued_at: datetime,
    details: dict[str, Any],
    language: str,
    currency: str,
    zone: str,
) -> DocumentText:
    """What the document says, in ``language``."""
    gettext, money, day, what = _reader(language, currency, zone, details)
    receipt = kind == "receipt"
    method = details["method"]
    notes = [
        gettext("Pledge no. %(pledge)s, paid on %(day)s (%(method)s).")
        % {
            "pledge": details["pledge_id"],
            "day": day(details["paid_at"]),
            "method": gettext(METHODS[method]) if method in METHODS else method,
        }
    ]
    if receipt:
        notes.append(
            gettext(
                "The money is held in escrow until the project is settled; what is not "
                "verified then is refunded with a credit note."
            )
        )
    else:
        notes.insert(
            0,
            gettext("Refers to receipt %(number)s. Reason: %(reason)s.")
            % {
                "number": details["refers_to"],
                "reason": gettext(REFUND_REASONS.get(details["reason"], details["reason"])),
            },
        )
    return DocumentText(
        title=gettext("Receipt") if receipt else gettext("Credit note"),
        number_line=gettext("No. %(number)s, %(day)s") % {"number": number, "day": day(issued_at)},
        parties=[
            (gettext("Issued by"), _party(details["seller"], gettext)),
            (gettext("Issued to"), _party(details["buyer"], gettext)),
        ],
        lines_heading=[gettext("Description"), gettext("Price a token"), gettext("Amount")],
        lines=[
            [
                what if receipt else gettext("Refund on the payment for %(what)s") % {"what": what},
                # a refund returns part of a payment: no price of a token applies to it
                money(details["price_cents"]) if receipt else "",
                money(details["amount_cents"] if receipt else -details["amount_cents"]),
            ]
        ],
        total=(
            gettext("Paid") if receipt else gettext("Refunded"),
            money(details["amount_cents"]),
        ),
        notes=notes,
    )


def invoice_words(
    *,
    issued_at: datetime,
    details: dict[str, Any],
    transfer: dict[str, Any],
    language: str,
    currency: str,
    zone: str,
) -> DocumentText:
    """The invoice of a pledge paid by bank transfer, in ``language``: what to transfer,
    where to, with which reference and by when, and what has arrived so far. It is not a
    receipt: the receipt follows when the money has arrived in full."""
    gettext, money, day, what = _reader(language, currency, zone, details)
    notes = [
        gettext(
            "Please transfer %(amount)s to IBAN %(iban)s (BIC %(bic)s, account holder "
            "%(holder)s) with the reference %(reference)s before %(day)s."
        )
        % {
            "amount": money(transfer["remaining_cents"]),
            "iban": transfer["iban"],
            "bic": transfer["bic"],
            "holder": transfer["account_holder_name"],
            "reference": transfer["reference"],
            "day": day(transfer["pay_before"]),
        },
        gettext(
            "Quote the reference exactly: a transfer without it cannot be matched to this "
            "pledge and is returned. More than the amount is returned too."
        ),
        gettext("Pledge no. %(pledge)s. A receipt follows when the amount has arrived in full.")
        % {"pledge": details["pledge_id"]},
    ]
    received = transfer["received_cents"]
    return DocumentText(
        title=gettext("Invoice"),
        number_line=gettext("Reference %(reference)s, %(day)s")
        % {"reference": transfer["reference"], "day": day(issued_at)},
        parties=[
            (gettext("Issued by"), _party(details["seller"], gettext)),
            (gettext("Issued to"), _party(details["buyer"], gettext)),
        ],
        lines_heading=[gettext("Description"), gettext("Price a token"), gettext("Amount")],
        lines=[
            [what, money(details["price_cents"]), money(transfer["amount_cents"])],
            *([[gettext("Received so far"), "", money(-received)]] if received else []),
        ],
        total=(gettext("To pay"), money(transfer["remaining_cents"])),
        notes=notes,
    )


def render(text: DocumentText, *, author: str) -> bytes:
    """The document as PDF bytes."""
    buffer = BytesIO()
    styles = getSampleStyleSheet()
    body = styles["BodyText"].clone("body", fontSize=10, leading=13)
    small = styles["BodyText"].clone("small", fontSize=8.5, leading=11)
    bold = body.clone("bold", fontName="Helvetica-Bold")
    title = styles["Title"].clone("receipt-title", alignment=0, fontSize=18, leading=22)
    document = a4_document(
        buffer, margin=MARGIN, title=f"{text.title} {text.number_line}", author=author
    )
    width = document.width

    def p(value: str, style=body) -> Paragraph:
        return Paragraph(pdf_text(value), style)

    parties = Table(
        [[[p(heading, bold), *[p(line) for line in lines]] for heading, lines in text.parties]],
        colWidths=[width / 2, width / 2],
    )
    parties.hAlign = "LEFT"
    parties.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (0, -1), 0)])
    )
    figures = Table(
        [
            [p(h, bold) for h in text.lines_heading],
            *[[p(cell) for cell in row] for row in text.lines],
            ["", p(text.total[0], bold), p(text.total[1], bold)],
        ],
        colWidths=[width - 70 * mm, 35 * mm, 35 * mm],
    )
    figures.hAlign = "LEFT"
    figures.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -2), 0.25, colors.HexColor("#d3dbd8")),
                ("LEFTPADDING", (0, 0), (0, -1), 0),
            ]
        )
    )
    story = [
        p(author, bold),
        Spacer(1, 3 * mm),
        p(text.title, title),
        p(text.number_line),
        Spacer(1, 6 * mm),
        parties,
        Spacer(1, 8 * mm),
        figures,
        Spacer(1, 6 * mm),
        *[p(note, small) for note in text.notes],
    ]
    document.build(story)
    return buffer.getvalue()
