"""Jinja filters that format money, decimals and percentages for the locale.

Money arrives as integer cents and is divided as a Decimal, never a float.
"""

from __future__ import annotations

from decimal import Decimal

from flask import Flask, current_app
from flask_babel import format_currency, format_decimal, format_percent, gettext, ngettext


def money(cents: int | None, currency: str | None = None) -> str:
    if cents is None:
        return ""
    currency = currency or current_app.extensions["settings"].currency
    return format_currency(Decimal(cents) / 100, currency)


def decimal_money(amount: Decimal | None, currency: str) -> str:
    """A decimal amount (not cents) such as a proxy value, to the cent."""
    if amount is None:
        return ""
    return format_currency(amount, currency)


def percent(rate: Decimal | str | None) -> str:
    """A rate as a percentage; snapshots keep rates as strings such as "0.275"."""
    if rate is None or rate == "":
        return ""
    return format_percent(Decimal(rate), format="#,##0.##%")


def number(value: int | Decimal | None) -> str:
    return "" if value is None else format_decimal(value)


# The value bank's units (outcome-types.csv), counted in the reader's language. A unit
# not listed here (a new outcome type's) is shown as it was entered.
def _units(n: int | Decimal) -> dict[str, str]:
    num = number(n)
    return {
        "person": ngettext("%(count)s person", "%(count)s people", n, count=num),
        "person-year": ngettext("%(count)s person-year", "%(count)s person-years", n, count=num),
        "child": ngettext("%(count)s child", "%(count)s children", n, count=num),
        "household": ngettext("%(count)s household", "%(count)s households", n, count=num),
        "incident": ngettext("%(count)s incident", "%(count)s incidents", n, count=num),
        "pupil": ngettext("%(count)s pupil", "%(count)s pupils", n, count=num),
        "WELLBY": ngettext("%(count)s WELLBY", "%(count)s WELLBYs", n, count=num),
    }


def quantity(n: int | Decimal | None, unit: str) -> str:
    """``20 people``, ``1 person``, ``20 personen``: a count with its unit, plural right."""
    if n is None:
        return ""
    return _units(n).get(unit) or f"{number(n)} {unit}"


def unit_name(unit: str) -> str:
    """One of the unit, for "per person" (a unit not in the value bank as entered)."""
    return {
        "person": gettext("person"),
        "person-year": gettext("person-year"),
        "child": gettext("child"),
        "household": gettext("household"),
        "incident": gettext("incident"),
        "pupil": gettext("pupil"),
        "WELLBY": "WELLBY",
    }.get(unit, unit)


def tokens(n: int | None) -> str:
    """``1 token``, ``2,540 tokens``."""
    if n is None:
        return ""
    return ngettext("%(count)s token", "%(count)s tokens", n, count=number(n))


def register_filters(app: Flask) -> None:
    app.jinja_env.filters.update(
        money=money,
        decimal_money=decimal_money,
        percent=percent,
        number=number,
        quantity=quantity,
        unit_name=unit_name,
        tokens=tokens,
    )
