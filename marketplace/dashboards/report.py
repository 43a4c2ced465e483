"""A buyer's impact report for a period, as CSV and as PDF, from ``BuyerFigures``.

The CSV has one section a table (a first column names the section), so a
company can take each table into its sustainability report as it is.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from marketplace.core.exports import csv_text, pdf_text
from marketplace.dashboards.services import BuyerFigures


def euros(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


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
        [f"paid ({currency})", euros(figures.paid_cents)],
        [f"refunded ({currency})", euros(figures.refunded_cents)],
        [f"verified social value bought ({currency})", euros(figures.value_cents)],
        ["tokens minted to you", figures.tokens_minted],
        ["tokens held", figures.tokens_held],
        ["tokens retired", figures.tokens_retired],
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
            p.settled_at.date().isoformat(),
            p.tokens_paid,
            p.tokens_minted,
            euros(p.refund_cents),
            euros(p.value_cents),
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
        ["standard", "metric", "outcome type", "unit", "quantity", "projects", "source"]
    ] + [
        [
            r["standard"],
            r["metric"],
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
                block.quantity,
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
            r.retired_at.date().isoformat(),
            f"P{r.project_id:06d}",
            r.quantity,
            r.purpose.value,
            r.claim.value,
            r.beneficiary,
            r.contract_reference,
        ]
        for r in figures.retirements
    ]
    return [
        ("summary", summary),
        ("projects funded", funded),
        ("outcomes verified", outcomes),
        ("data points", data_points),
        ("tokens", tokens),
        ("retirements", retirements),
    ]


def as_csv(figures: BuyerFigures, organisation: str, currency: str) -> str:
    lines: list[list[object]] = []
    for title, rows in sections(figures, organisation, currency):
        lines.append(["section", *rows[0]])
        lines += [[title, *row] for row in rows[1:]]
        lines.append([])
    return csv_text(lines, lineterminator="\n")


def as_pdf(figures: BuyerFigures, organisation: str, currency: str) -> bytes:
    out = io.BytesIO()
    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7, leading=8.5)
    document = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=14 * mm,
        rightMargin=14 * mm,
        topMargin=14 * mm,
        bottomMargin=14 * mm,
        title=f"Impact report of {organisation}",
    )
    story = [
        Paragraph("Social Outcomes Marketplace", styles["Normal"]),
        Paragraph(f"Impact report of {pdf_text(organisation)}", styles["Title"]),
        Paragraph(f"Period: {pdf_text(period_label(figures))}", styles["Normal"]),
        Spacer(1, 4 * mm),
    ]
    for title, rows in sections(figures, organisation, currency):
        story.append(Paragraph(pdf_text(title.capitalize()), styles["Heading2"]))
        if len(rows) == 1:
            story.append(Paragraph("None in this period.", styles["Normal"]))
            continue
        table = Table(
            [[Paragraph(pdf_text(cell), small) for cell in row] for row in rows], repeatRows=1
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
            "Social value is the buyer's share (by tokens minted) of the verified, conservative "
            "present value of each settled project, valued with method version 1 and the "
            "sources named above.",
            small,
        )
    )
    document.build(story)
    return out.getvalue()
