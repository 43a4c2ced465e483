"""A buyer's impact report for a period, as CSV and as PDF, from ``BuyerFigures``.

The CSV has one section a table (a first column names the section), so a
company can take each table into its sustainability report as it is.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from reportlab.lib import colors
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

from marketplace.core.exports import a4_document, csv_text, pdf_text
from marketplace.dashboards.services import BuyerFigures


def N_(text: str) -> str:
    """Marks a label for the catalogue (pybabel -k N_); the PDF's words translate it."""
    return text


class Cents(int):
    """An amount in cents: the CSV writes euros with two decimals, the PDF money as the
    reader's language writes it."""


class Count(int):
    """A count of tokens: the PDF groups its digits as the reader's language does (a year
    or an id is a plain int and is written as it is)."""


class Day(date):
    """A date: the CSV writes it as ISO 8601, the PDF as the reader's language does."""

    @classmethod
    def of(cls, value: date) -> Day:
        return cls(value.year, value.month, value.day)


def euros(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


@dataclass(frozen=True)
class Words:
    """How the PDF speaks: ``label`` translates a heading or a code, ``money`` and
    ``number`` format figures (the defaults are plain English)."""

    label: Callable[[str], str] = str
    money: Callable[[int], str] = lambda cents: f"EUR {euros(cents)}"
    number: Callable[[int], str] = lambda n: f"{n:,}"
    day: Callable[[date], str] = lambda d: d.isoformat()


# The report's headings and words, for the catalogue.
LABELS = (
    N_("figure"),
    N_("value"),
    N_("organisation"),
    N_("period"),
    N_("paid"),
    N_("refunded"),
    N_("verified social value bought"),
    N_("tokens minted to you"),
    N_("tokens held"),
    N_("tokens retired"),
    N_("project"),
    N_("title"),
    N_("theme"),
    N_("settled"),
    N_("tokens paid"),
    N_("tokens minted"),
    N_("refund"),
    N_("social value"),
    N_("outcome type"),
    N_("outcome"),
    N_("unit"),
    N_("verified"),
    N_("your share"),
    N_("valuation source"),
    N_("ESRS topic"),
    N_("disclosure requirement"),
    N_("SDG targets"),
    N_("not tagged"),
    N_("quantity"),
    N_("projects"),
    N_("source"),
    N_("serial block"),
    N_("vintage"),
    N_("status"),
    N_("purpose"),
    N_("beneficiary"),
    N_("retirement"),
    N_("date"),
    N_("claim"),
    N_("contract reference"),
    N_("summary"),
    N_("projects funded"),
    N_("outcomes verified"),
    N_("data points"),
    N_("tokens"),
    N_("retirements"),
    N_("receipts"),
    N_("number"),
    N_("document"),
    N_("pledge"),
    N_("refers to"),
    N_("receipt"),
    N_("credit_note"),
    N_("all time"),
    N_("None in this period."),
    N_("Impact report of %(organisation)s"),
    N_("Period: %(period)s"),
    N_("Social Outcomes Marketplace"),
    N_("issued"),
    N_("retired"),
    N_(
        "Social value is the buyer's share (by tokens minted) of the verified, "
        "conservative present value of each settled project, valued with method "
        "version 1 and the sources named above."
    ),
)


def period_label(figures: BuyerFigures) -> str:
    if figures.start is None and figures.end is None:
        return "all time"
    start = figures.start.isoformat() if figures.start else "the beginning"
    end = figures.end.isoformat() if figures.end else "today"
    return f"{start} to {end}"


def sections(figures: BuyerFigures, organisation: str, currency: str) -> list[tuple[str, list]]:
    """The report's tables: (title, rows with a header row first)."""
    summary = [
        ["figure", "value"],
        ["organisation", organisation],
        ["period", period_label(figures)],
        [f"paid ({currency})", Cents(figures.paid_cents)],
        [f"refunded ({currency})", Cents(figures.refunded_cents)],
        [f"verified social value bought ({currency})", Cents(figures.value_cents)],
        ["tokens minted to you", Count(figures.tokens_minted)],
        ["tokens held", Count(figures.tokens_held)],
        ["tokens retired", Count(figures.tokens_retired)],
    ]
    funded = [
        [
            "project",
            "title",
            "theme",
            "settled",
            "tokens paid",
            "tokens minted",
            f"refund ({currency})",
            f"social value ({currency})",
        ]
    ] + [
        [
            p.reference,
            p.title,
            p.theme,
            Day.of(p.settled_at.date()),
            Count(p.tokens_paid),
            Count(p.tokens_minted),
            Cents(p.refund_cents),
            Cents(p.value_cents),
        ]
        for p in figures.projects
    ]
    outcomes = [
        ["project", "outcome type", "outcome", "unit", "verified", "your share", "valuation source"]
    ] + [
        [
            f"P{line.project_id:06d}",
            line.code,
            line.name,
            line.unit,
            line.verified,
            f"{line.share:.2f}",
            f"{line.source} {line.url}".strip(),
        ]
        for p in figures.projects
        for line in p.outcomes
    ]
    data_points = [
        [
            "ESRS topic",
            "disclosure requirement",
            "SDG targets",
            "outcome type",
            "unit",
            "quantity",
            "projects",
            "source",
        ]
    ] + [
        [
            r["esrs_topic"] or "not tagged",
            r["esrs_disclosure"],
            r["sdg_targets"].replace(" ", ", "),
            r["outcome_type"],
            r["unit"],
            f"{r['quantity']:.2f}",
            r["projects"],
            r["source"],
        ]
        for r in figures.data_points()
    ]
    tokens: list[list[Any]] = [
        ["serial block", "project", "vintage", "quantity", "status", "purpose", "beneficiary"]
    ]
    retired_by = {r.id: r for r in figures.retirements}
    for block in figures.holdings:
        retirement = retired_by.get(block.retirement_id) if block.retirement_id else None
        tokens.append(
            [
                block.serial,
                f"P{block.project_id:06d}",
                block.vintage,
                Count(block.quantity),
                block.status.value,
                retirement.purpose.value if retirement else "",
                retirement.beneficiary if retirement else "",
            ]
        )
    retirements = [
        [
            "retirement",
            "date",
            "project",
            "quantity",
            "purpose",
            "claim",
            "beneficiary",
            "contract reference",
        ]
    ] + [
        [
            r.id,
            Day.of(r.retired_at.date()),
            f"P{r.project_id:06d}",
            Count(r.quantity),
            r.purpose.value,
            r.claim.value,
            r.beneficiary,
            r.contract_reference,
        ]
        for r in figures.retirements
    ]
    receipts = [
        ["number", "document", "date", "pledge", "project", f"amount ({currency})", "refers to"]
    ] + [
        [
            r.number,
            r.kind.value,
            Day.of(r.issued_at.date()),
            r.pledge_id,
            f"P{r.details['project']['id']:06d}",
            Cents(r.amount_cents),
            r.details.get("refers_to", ""),
        ]
        for r in figures.receipts
    ]
    return [
        ("summary", summary),
        ("projects funded", funded),
        ("outcomes verified", outcomes),
        ("data points", data_points),
        ("tokens", tokens),
        ("retirements", retirements),
        ("receipts", receipts),
    ]


def _csv_cell(cell: object) -> object:
    if isinstance(cell, Day):
        return cell.isoformat()
    return euros(cell) if isinstance(cell, Cents) else cell


def as_csv(figures: BuyerFigures, organisation: str, currency: str) -> str:
    lines: list[list[object]] = []
    for title, rows in sections(figures, organisation, currency):
        lines.append(["section", *rows[0]])
        lines += [[title, *(_csv_cell(cell) for cell in row)] for row in rows[1:]]
        lines.append([])
    return csv_text(lines, lineterminator="\n")


def _heading(text: str, words: Words) -> str:
    """A column heading without its currency (the amounts carry it), translated."""
    base = text.rsplit(" (", 1)[0] if text.endswith(")") else text
    return words.label(base)


def _pdf_cell(cell: object, words: Words) -> str:
    if isinstance(cell, Cents):
        return words.money(cell)
    if isinstance(cell, Count):
        return words.number(cell)
    if isinstance(cell, Day):
        return words.day(cell)
    return words.label(str(cell)) if str(cell) in CODES else str(cell)


# Values that are codes and read as words (statuses, purposes, claims, themes).
CODES = frozenset(
    {
        "all time",
        "issued",
        "retired",
        "receipt",
        "credit_note",
        "sroi_obligation",
        "csr_voluntary",
        "csrd_report",
        "contribution",
        "offset",
        "work",
        "housing",
        "youth",
        "health",
        "safety",
        "education",
        "wellbeing",
    }
)


def _width_of(text: str) -> float:
    return stringWidth(text, "Helvetica", 7) + 13  # the cell's padding and a margin


def _widths(rows: list[list[str]], width: float) -> list[float]:
    """Column widths in proportion to what each column holds, and never narrower than
    its longest word, so words wrap between them and never inside one."""
    columns = list(zip(*rows, strict=True))
    floor = [max(_width_of(w) for cell in col for w in (cell.split() or [""])) for col in columns]
    content = [max(_width_of(cell) for cell in col) for col in columns]
    spare = max(0.0, width - sum(floor))
    wants = [max(0.0, c - f) for c, f in zip(content, floor, strict=True)]
    total = sum(wants) or 1.0
    return [f + min(w, spare * w / total) for f, w in zip(floor, wants, strict=True)]


def as_pdf(
    figures: BuyerFigures, organisation: str, currency: str, words: Words | None = None
) -> bytes:
    words = words or Words()
    out = io.BytesIO()
    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7, leading=8.5)
    heading = words.label("Impact report of %(organisation)s") % {"organisation": organisation}
    document = a4_document(out, margin=14 * mm, title=heading)
    period = words.label(period_label(figures))
    story = [
        Paragraph(pdf_text(words.label("Social Outcomes Marketplace")), styles["Normal"]),
        Paragraph(pdf_text(heading), styles["Title"]),
        Paragraph(
            pdf_text(words.label("Period: %(period)s") % {"period": period}), styles["Normal"]
        ),
        Spacer(1, 4 * mm),
    ]
    usable = document.width
    for title, rows in sections(figures, organisation, currency):
        story.append(Paragraph(pdf_text(words.label(title).capitalize()), styles["Heading2"]))
        if len(rows) == 1:
            story.append(Paragraph(pdf_text(words.label("None in this period.")), styles["Normal"]))
            continue
        texts = [[_heading(str(cell), words) for cell in rows[0]]] + [
            [
                # the summary's first column names its figures: headings too
                _heading(str(cell), words)
                if title == "summary" and i == 0
                else _pdf_cell(cell, words)
                for i, cell in enumerate(row)
            ]
            for row in rows[1:]
        ]
        table = Table(
            [[Paragraph(pdf_text(cell), small) for cell in row] for row in texts],
            repeatRows=1,
            colWidths=_widths(texts, usable),
        )
        table.setStyle(
            TableStyle(
                [
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e4e9e7")),
                    ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b8c4bf")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story.append(table)
    story.append(Spacer(1, 4 * mm))
    story.append(
        Paragraph(
            pdf_text(
                words.label(
                    "Social value is the buyer's share (by tokens minted) of the verified, "
                    "conservative present value of each settled project, valued with method "
                    "version 1 and the sources named above."
                )
            ),
            small,
        )
    )
    document.build(story)
    return out.getvalue()
