"""Jinja filters that format money, decimals and percentages for the locale.

Money arrives as integer cents and is divided as a Decimal, never a float.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import flask_babel
from flask import Flask, current_app
from flask_babel import format_currency, format_decimal, format_percent, gettext, ngettext

from marketplace.web.vocabulary import N_


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


def per_euro(ratio: Decimal | None) -> str:
    """Social value per euro as an amount to the cent ("€2.40"): euros per euro."""
    if ratio is None:
        return ""
    return format_currency(ratio, current_app.extensions["settings"].currency)


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


# Codes that reach a reason as figures, with the words people read instead.
CODE_LABELS = {
    "card_declined": N_("the card was declined"),
    "insufficient_funds": N_("the account had too little money"),
    "expired_card": N_("the card has expired"),
    "authentication_required": N_("the bank asked the card holder to confirm"),
    "requires_payment_method": N_("the card could not be charged"),
    "canceled": N_("the payment was cancelled"),
    "off-session": N_("card on file"),
    "on-session": N_("paid on the page"),
}


def _figure(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return money(value) if key.endswith("_cents") else number(value)
    if isinstance(value, str) and value in CODE_LABELS:
        return gettext(CODE_LABELS[value])
    return str(value)


def reason_in_language(template: str, params: dict[str, Any] | None) -> str:
    """A reason in the reader's language, money and counts formatted; a reason typed by
    a person (no figures) is shown as typed."""
    if not params:
        return gettext(template) if template else ""
    return gettext(template) % {k: _figure(k, v) for k, v in params.items()}


def history_reason(change: Any) -> str:
    """A history row's reason (``reason`` and ``reason_params``) for the reader."""
    return reason_in_language(change.reason or "", change.reason_params)


def audit_reason(detail: dict[str, Any]) -> str:
    """An audit event's reason for the reader: the template when the event kept one."""
    if detail.get("reason_params"):
        return reason_in_language(detail.get("reason_template", ""), detail["reason_params"])
    return gettext(detail.get("reason") or "") if detail.get("reason") else ""


# What each form field is called on its page, for the error summary ("Start date: Not a
# valid date."). Row fields are named ``{rows}-{n}-{field}`` (outcome lines).
FIELD_LABELS = {
    "title": N_("Title"),
    "summary": N_("Summary"),
    "city": N_("City"),
    "theme": N_("Theme"),
    "budget": N_("Budget in euros"),
    "premium": N_("Success premium"),
    "funding_deadline": N_("Funding deadline"),
    "start_date": N_("Start date"),
    "end_date": N_("End date"),
    "outcome_type": N_("Outcome"),
    "target_quantity": N_("Target"),
    "evidence_grade": N_("Evidence grade"),
    "tokens": N_("Tokens"),
    "payment_method": N_("Card"),
    "project_id": N_("Project"),
    "quantity": N_("Quantity"),
    "beneficiary": N_("Beneficiary"),
    "purpose": N_("Purpose"),
    "claim": N_("Claim"),
    "contract_reference": N_("Contract reference"),
    "note": N_("Note"),
    "reason": N_("Reason"),
    "text": N_("Report"),
    "file": N_("File"),
    "outcome_id": N_("Evidence for"),
    "evaluator_id": N_("Evaluator"),
    "email": N_("E-mail address"),
    "password": N_("Password"),
    "current_password": N_("Current password"),
    "members": N_("Colleagues"),
    "legal_name": N_("Legal name"),
    "registry_id": N_("KvK number or other registry id"),
    "address": N_("Address"),
    "vat_id": N_("VAT id"),
    "website": N_("Website"),
    "description": N_("About the organisation"),
    "name": N_("Name"),
    "organisation": N_("Organisation"),
    "role": N_("Role"),
    "deadweight": N_("Deadweight"),
    "displacement": N_("Displacement"),
    "attribution": N_("Attribution"),
    "drop_off": N_("Drop-off per year"),
    "valuation_year": N_("Valuation year"),
}
ROW_FIELD = re.compile(r"^(?P<rows>[a-z_]+)-(?P<n>\d+)-(?P<field>[a-z_]+)$")
ROW_ITEM = re.compile(r"^(?P<field>verified|note|figure)-\d+$")


def field_label(name: str) -> str:
    """The field's name as its page shows it, or "" for an unknown one."""
    if name in FIELD_LABELS:
        return gettext(FIELD_LABELS[name])
    row = ROW_FIELD.match(name)
    if row and row["field"] in FIELD_LABELS:
        return gettext("Line %(n)s, %(field)s") % {
            "n": int(row["n"]) + 1,
            "field": gettext(FIELD_LABELS[row["field"]]).lower(),
        }
    item = ROW_ITEM.match(name)
    if item:
        return {
            "verified": gettext("Verified quantity"),
            "note": gettext("Evidence"),
            "figure": gettext("Figure"),
        }[item["field"]]
    return ""


# What a retirement is for, and what it claims, as people call it.
PURPOSE_LABELS = {
    "sroi_obligation": N_("Social-return obligation (public procurement)"),
    "csr_voluntary": N_("Voluntary CSR contribution"),
    "csrd_report": N_("CSRD report"),
}
CLAIM_LABELS = {
    "contribution": N_("Contribution to the outcome"),
    "offset": N_("Offset against our own impact"),
}


# The kinds of notice, as the outbox lists them.
NOTICE_KINDS = {
    "certificate_ready": N_("Certificate ready"),
    "concern_decided": N_("Concern decided"),
    "concern_filed": N_("Concern filed"),
    "declaration_needed": N_("Declaration needed"),
    "dispute": N_("Dispute"),
    "evaluation_assigned": N_("Evaluation assigned"),
    "evaluation_returned": N_("Evaluation returned"),
    "failed_logins": N_("Failed sign-ins"),
    "funding_closed": N_("Funding closed"),
    "grace_ending": N_("Grace period ending"),
    "obligation": N_("Social-return obligation"),
    "obligation_credit": N_("Social-return credit"),
    "payment_failed": N_("Payment failed"),
    "transfer_due": N_("Bank transfer"),
    "project_listed": N_("Project listed"),
    "project_settled": N_("Project settled"),
    "project_started": N_("Project started"),
    "project_withdrawn": N_("Project withdrawn"),
    "submission_decided": N_("Submission decided"),
    "surplus_refunded": N_("Double payment refunded"),
    "threshold_reached": N_("Threshold reached"),
}


OBLIGATION_STATE_LABELS = {
    "pending": N_("awaiting decision"),
    "accepted": N_("accepted"),
    "rejected": N_("rejected"),
    "signed_off": N_("signed off"),
}


def obligation_state(value: Any) -> str:
    """An obligation's or a credit's state in words (never its code)."""
    key = getattr(value, "value", value)
    return gettext(OBLIGATION_STATE_LABELS[key]) if key in OBLIGATION_STATE_LABELS else str(key)


def notice_kind(kind: str) -> str:
    return gettext(NOTICE_KINDS[kind]) if kind in NOTICE_KINDS else kind


def purpose_label(value: Any) -> str:
    value = getattr(value, "value", value)
    return gettext(PURPOSE_LABELS[value]) if value in PURPOSE_LABELS else str(value)


def claim_label(value: Any) -> str:
    value = getattr(value, "value", value)
    return gettext(CLAIM_LABELS[value]) if value in CLAIM_LABELS else str(value)


ROLE_LABELS = {
    "entrepreneur": N_("Social entrepreneur"),
    "buyer": N_("Buyer of outcomes"),
    "evaluator": N_("Evaluator"),
    "admin": N_("Platform team"),
    "authority": N_("Contracting authority"),
}


def role_label(value: object) -> str:
    key = getattr(value, "value", value)
    return gettext(ROLE_LABELS[key]) if key in ROLE_LABELS else str(key)


def day(value: date | datetime | None) -> str:
    """Every date on every page in one style per language: 22 November 2026."""
    return "" if value is None else flask_babel.format_date(value, "long")


def isoday(value: str | None) -> str:
    """A date or instant written in ISO 8601 (as a claim trail keeps them), as ``day``."""
    if not value:
        return ""
    if "T" in value:
        return day(datetime.fromisoformat(value))
    return day(date.fromisoformat(value))


def moment(value: datetime | None) -> str:
    """Every instant, in the platform's time zone: 22 November 2026, 09:00."""
    if value is None:
        return ""
    return f"{flask_babel.format_date(value, 'long')}, {flask_babel.format_time(value, 'short')}"


def register_filters(app: Flask) -> None:
    app.jinja_env.filters.update(
        money=money,
        decimal_money=decimal_money,
        per_euro=per_euro,
        percent=percent,
        number=number,
        quantity=quantity,
        unit_name=unit_name,
        tokens=tokens,
        history_reason=history_reason,
        audit_reason=audit_reason,
        field_label=field_label,
        purpose_label=purpose_label,
        notice_kind=notice_kind,
        obligation_state=obligation_state,
        claim_label=claim_label,
        role_label=role_label,
        day=day,
        isoday=isoday,
        moment=moment,
    )
