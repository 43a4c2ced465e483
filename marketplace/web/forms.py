"""Helpers for forms with repeated rows (outcome lines) and their errors.

Rows are named ``{prefix}-{row}-{field}``. Blank rows are skipped; a loaded
line's errors (``{prefix}.{index}.{field}``) are mapped back onto the row the
person typed them in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal

MAX_ROWS = 50
AMOUNT = re.compile(r"^\d{1,10}(?:[.,]\d{1,2})?$")


def row_count(values: Mapping[str, str], default: int) -> int:
    """How many rows to show: the form's count, one more after "add a line"."""
    try:
        rows = int(values.get("rows", default))
    except ValueError:
        rows = default
    if values.get("action") == "add_line":
        rows += 1
    return max(1, min(rows, MAX_ROWS))


def collect_rows(
    values: Mapping[str, str],
    prefix: str,
    fields: Sequence[str],
    rows: int,
    always_set: Sequence[str] = (),
) -> tuple[list[dict], list[int]]:
    """The filled-in rows as dicts (blank fields left out), and each one's row number.

    A row is filled in when a field other than ``always_set`` (selects with a
    default, hidden fields) has a value.
    """
    lines, row_of_line = [], []
    for row in range(rows):
        raw = {name: values.get(f"{prefix}-{row}-{name}", "").strip() for name in fields}
        if not any(value for name, value in raw.items() if name not in always_set):
            continue
        lines.append({name: value for name, value in raw.items() if value != ""})
        row_of_line.append(row)
    return lines, row_of_line


def row_errors(
    errors: Mapping[str, list[str]], prefix: str, row_of_line: Sequence[int]
) -> dict[str, list[str]]:
    """Map ``lines.2.quantity`` onto the field ``lines-5-quantity``; others unchanged."""
    mapped: dict[str, list[str]] = {}
    for name, messages in errors.items():
        parts = name.split(".")
        if (
            parts[0] == prefix
            and len(parts) == 3
            and parts[1].isdigit()
            and int(parts[1]) < len(row_of_line)
        ):
            mapped[f"{prefix}-{row_of_line[int(parts[1])]}-{parts[2]}"] = messages
        else:
            mapped[name] = messages
    return mapped


def euros_to_cents(text: str) -> int | None:
    """'60000', '60000.5' or '60000,50' to cents; None when it is not such an amount."""
    text = text.strip().replace(" ", "")
    if not AMOUNT.match(text):
        return None
    return int(Decimal(text.replace(",", ".")) * 100)


def percent_to_rate(text: str) -> Decimal | None:
    """'25' or '12.5' percent to the rate 0.25 or 0.125; None when malformed."""
    text = text.strip().replace(",", ".")
    if not re.match(r"^\d{1,3}(?:\.\d{1,2})?$", text):
        return None
    return Decimal(text) / 100
