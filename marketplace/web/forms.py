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
# An amount as people write it: 60000, 60000.50, 60000,50, 45,000, 45.000, 45,000.50,
# 45.000,50, 60 000, with or without the euro sign (a group separator before each three
# digits; the decimal separator, if any, is the other one).
PLAIN_AMOUNT = re.compile(r"(\d{1,10})(?:[.,](\d{1,2}))?")
# Thousands grouped with one separator throughout ("1.200.000", never "1.200,000"), then
# the decimals after the other one.
GROUPED_AMOUNT = re.compile(r"(\d{1,3}([.,])\d{3}(?:\2\d{3}){0,2})(?:([.,])(\d{1,2}))?")
FRACTIONS = ("deadweight", "displacement", "attribution", "drop_off", "haircut")


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
    """An amount in euros as the site prints it, in either language ("€45,000.00",
    "€ 45.000,00", "45000") to cents; None when it is not such an amount."""
    text = text.strip().removeprefix("€").removeprefix("EUR").strip()
    text = text.replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    plain = PLAIN_AMOUNT.fullmatch(text)
    if plain:
        return int(plain[1]) * 100 + int((plain[2] or "0").ljust(2, "0"))
    grouped = GROUPED_AMOUNT.fullmatch(text)
    if grouped and grouped[3] != grouped[2]:
        whole = grouped[1].replace(grouped[2], "")
        return int(whole) * 100 + int((grouped[4] or "0").ljust(2, "0"))
    return None


def as_fraction(text: str) -> str:
    """A fraction as people write it ("30%", "30 %", "0,3") as the API reads it ("0.3");
    anything else is given back for the schema to name what is wrong."""
    compact = text.strip().replace("\u00a0", "").replace(" ", "")
    if compact.endswith("%"):
        number = compact[:-1].replace(",", ".")
        if re.fullmatch(r"\d{1,3}(?:\.\d{1,4})?", number):
            return format(Decimal(number) / 100, "f")
        return text
    if re.fullmatch(r"\d+,\d+", compact):
        return compact.replace(",", ".")
    return text


def with_fractions(values: Mapping[str, str]) -> dict[str, str]:
    """The form's values with every fraction field (``deadweight``, ``lines-0-drop_off``)
    read by ``as_fraction``."""
    return {
        name: as_fraction(value) if name.rsplit("-", 1)[-1] in FRACTIONS else value
        for name, value in values.items()
    }


def percent_to_rate(text: str) -> Decimal | None:
    """'25', '25%' or '12,5 %' percent to the rate 0.25 or 0.125; None when malformed."""
    text = text.strip().removesuffix("%").strip().replace(",", ".")
    if not re.match(r"^\d{1,3}(?:\.\d{1,2})?$", text):
        return None
    return Decimal(text) / 100
