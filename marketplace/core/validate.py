"""marshmallow's validators, giving their messages as templates with parameters.

A message with figures in it ("Must be greater than or equal to 1.") is a
``Message``: it reads as marshmallow's English text (the API sends that), and
keeps the template and figures so a page shows it in the reader's language.
Schemas import ``validate`` from here instead of from marshmallow.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import validate as ma_validate
from marshmallow.validate import URL, Email, Regexp, Validator

from outcomes.errors import Message

__all__ = ["URL", "Email", "Length", "OneOf", "Range", "Regexp", "Validator"]

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _template(message: str) -> str:
    """marshmallow's ``{name}`` placeholders as the catalogue's ``%(name)s``."""
    return _PLACEHOLDER.sub(r"%(\1)s", message.replace("%", "%%"))


class Range(ma_validate.Range):
    def _format_error(self, value: Any, message: str) -> str:
        return Message(_template(self.error or message), min=self.min, max=self.max)


class Length(ma_validate.Length):
    def _format_error(self, value: Any, message: str) -> str:
        return Message(
            _template(self.error or message), min=self.min, max=self.max, equal=self.equal
        )


class OneOf(ma_validate.OneOf):
    def _format_error(self, value: Any) -> str:
        return Message(_template(self.error), choices=self.choices_text, labels=self.labels_text)
