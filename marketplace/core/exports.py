"""The one writer for text that leaves the app in a file or a message: PDF, CSV, e-mail.

Every value a person typed (titles, names, beneficiaries, contract references,
notes) goes through here on its way into a document:
- PDF: reportlab's ``Paragraph`` reads its text as markup (``<img src=...>``
  would make the server fetch a URL, ``a<b`` breaks the document), so text is
  escaped; and reportlab may fetch nothing from outside at all (``no_fetching``).
- CSV: a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
  return is a formula to a spreadsheet; such a cell is prefixed with ``'``
  (OWASP's rule for CSV injection). Numbers are written as numbers.
- E-mail headers: one line, no control characters (a CR/LF would start a new
  header), at most ``limit`` characters.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

from reportlab import rl_config
from reportlab.lib.pagesizes import A4
from reportlab.platypus import SimpleDocTemplate

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def no_fetching() -> None:
    """reportlab opens no URL and no file it is pointed at (only inline ``data:``)."""
    rl_config.trustedHosts = ["nothing.invalid"]
    rl_config.trustedSchemes = ["data"]


no_fetching()


def a4_document(
    out: BinaryIO, *, margin: float, title: str, author: str | None = None
) -> SimpleDocTemplate:
    """An A4 page with the same margin on every side, for the platform's PDFs (what lies
    between the margins is ``document.width``)."""
    named: dict[str, Any] = {"title": title}
    if author is not None:
        named["author"] = author
    return SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin,
        **named,
    )


def pdf_text(value: object) -> str:
    """``value`` as text for a reportlab Paragraph: shown as written, never as markup."""
    return escape(str(value))


def csv_cell(value: object) -> object:
    """A cell a spreadsheet cannot read as a formula."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(rows: Iterable[Iterable[object]], *, lineterminator: str = "\r\n") -> str:
    """Rows as CSV, every cell through ``csv_cell``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=lineterminator)
    for row in rows:
        writer.writerow([csv_cell(cell) for cell in row])
    return out.getvalue()


def header_text(value: object, limit: int = 200) -> str:
    """One line for an e-mail header: control and separator characters become spaces."""
    cleaned = "".join(
        " " if unicodedata.category(ch).startswith(("C", "Z")) and ch != " " else ch
        for ch in str(value)
    )
    return " ".join(cleaned.split())[:limit]
