"""Schema pieces shared by every boundary: trimmed strings, pagination."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

import marshmallow as ma

from marketplace.core import validate
from outcomes.errors import Message, ValidationFailed

MAX_PER_PAGE = 200
# Row ids are PostgreSQL ``integer``s; a larger number cannot name a row.
ROW_ID_MAX = 2**31 - 1


class Trimmed(ma.fields.String):
    """A string with surrounding white space removed before validation."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        return str(super()._deserialize(value, attr, data, **kwargs)).strip()


class PageArgsSchema(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = ma.fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PER_PAGE))


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A schema for ``{"items", "page", "per_page", "total"}`` of ``item_schema``."""
    return ma.Schema.from_dict(
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
            "page": ma.fields.Integer(required=True),
            "per_page": ma.fields.Integer(required=True),
            "total": ma.fields.Integer(required=True),
        },
        name=name,
    )


def _controls(text: str, allowed: str = "") -> bool:
    """Whether ``text`` has control or format characters (other than ``allowed``), or
    line and paragraph separators: nothing a person types on one line."""
    return any(
        ch not in allowed and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")
        for ch in text
    )


class SingleLine(Trimmed):
    """One line of text: no control characters (a CR/LF in a title would end an e-mail
    header; a NUL is no text), no invisible format characters."""

    default_error_messages = {"control": "One line, without control characters."}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if _controls(text):
            raise self.make_error("control")
        return text


class Text(Trimmed):
    """Text of several lines: line breaks and tabs, no other control characters."""

    default_error_messages = {"control": "No control characters."}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if _controls(text, allowed="\n\r\t"):
            raise self.make_error("control")
        return text


WHOLE = re.compile(r"-?[0-9]{1,18}")


class WholeNumber(ma.fields.Integer):
    """A whole number, given as a JSON integer or as digits in a form field.

    Unlike marshmallow's Integer, it never truncates: 1.5 and "1.5" are
    refused rather than read as 1, and true/false are not numbers.
    """

    default_error_messages = {"invalid": "Must be a whole number."}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, str):
            text = value.strip()
            # ASCII digits only: "²" and "٣" are digits to str.isdigit, not to int().
            if not WHOLE.fullmatch(text):
                raise self.make_error("invalid")
            value = int(text)
        if not isinstance(value, int):
            raise self.make_error("invalid")
        return int(super()._deserialize(value, attr, data, **kwargs))


# The dates a person may give: far enough for any project, near enough for every
# calculation (a day after 9999-12-31 does not exist).
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)
# The pages a listing may be asked for (a larger offset is no page, and overflows).
MAX_PAGE = 100_000


class SaneDate(ma.fields.Date):
    """A date from 2000-01-01 to 2100-12-31."""

    default_error_messages = {"range": "A date from 2000-01-01 to 2100-12-31."}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> date:
        day: date = super()._deserialize(value, attr, data, **kwargs)
        if not FIRST_DAY <= day <= LAST_DAY:
            raise self.make_error("range")
        return day


def sane_day(raw: str | None, field: str) -> date | None:
    """A YYYY-MM-DD date from a query string (None when empty); ValidationFailed naming
    ``field`` when it is not one, or out of range."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(errors={field: ["A date such as 2027-12-31."]}) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValidationFailed(errors={field: ["A date from 2000-01-01 to 2100-12-31."]})
    return day


def page_number(raw: str | None) -> int:
    """A listing's page from a query string: 1 when absent; ValidationFailed naming
    ``page`` when it is not a whole number from 1 to ``MAX_PAGE``."""
    text = (raw or "").strip()
    if not text:
        return 1
    if not WHOLE.fullmatch(text) or not 1 <= int(text) <= MAX_PAGE:
        raise ValidationFailed(
            errors={"page": [Message("A whole number from 1 to %(max)s.", max=MAX_PAGE)]}
        )
    return int(text)


def row_id(**kwargs: Any) -> WholeNumber:
    """A field naming a row by its id: a whole number from 1 to ``ROW_ID_MAX``."""
    return WholeNumber(validate=validate.Range(min=1, max=ROW_ID_MAX), **kwargs)
