"""Messages on pages in the reader's language: refusals, field errors and flashes.

A service's refusal and a validator's message with figures are ``Message``
values (an English catalogue template with named parameters); a constant
message is a plain catalogue string. Either is translated here, the figures
put in after the template is translated, formatted for the reader's locale.
No message is ever matched against patterns.
"""

from __future__ import annotations

from typing import Any

from babel.numbers import format_decimal
from flask_babel import get_locale, gettext

from outcomes.errors import Message

# Parameters that are words of the vocabulary (states, kinds, roles): translated too.
WORDS = frozenset({"state", "before", "after", "name", "kind", "role", "roles", "scope"})


def _word(value: str) -> str:
    return gettext(value.replace("_", " "))


def _parameter(name: str, value: Any, locale: str) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) and name not in ("code", "id"):
        return format_decimal(value, locale=locale)
    if isinstance(value, str) and name in WORDS:
        return " / ".join(_word(part) for part in value.split(" / "))
    return value


def translated(message: Any) -> Any:
    """``message`` in the reader's language (anything not a string is given back)."""
    if not isinstance(message, str) or not message:
        return message
    if isinstance(message, Message):
        locale = str(get_locale() or "en")
        params = {k: _parameter(k, v, locale) for k, v in message.params.items()}
        template = gettext(message.template)
        return template % params if params else template
    return gettext(message)
