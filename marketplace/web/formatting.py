"""Jinja filters that format money, decimals and percentages for the locale.

Money arrives as integer cents and is divided as a Decimal, never a float.
"""

from __future__ import annotations

from decimal import Decimal

from flask import Flask, current_app
from flask_babel import format_currency, format_decimal, format_percent


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


def register_filters(app: Flask) -> None:
    app.jinja_env.filters.update(
        money=money, decimal_money=decimal_money, percent=percent, number=number
    )
