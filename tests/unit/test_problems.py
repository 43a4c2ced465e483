"""Validation messages become one flat map of field names to messages."""

import pytest

from marketplace.api.problems import flatten_errors, status_of
from marketplace.core.errors import Conflict, RateLimited, ValidationFailed


@pytest.mark.parametrize(
    ("messages", "flat"),
    [
        ({"email": ["Bad."]}, {"email": ["Bad."]}),
        (
            {"lines": {0: {"quantity": ["Must be positive."]}}},
            {"lines.0.quantity": ["Must be positive."]},
        ),
        ({"_schema": ["Invalid input type."]}, {"_schema": ["Invalid input type."]}),
        ({"lines": {"_schema": ["Too many."]}}, {"lines": ["Too many."]}),
        (["Invalid JSON body."], {"_schema": ["Invalid JSON body."]}),
    ],
)
def test_nested_messages_are_flattened_to_dotted_names(messages, flat):
    assert flatten_errors(messages) == flat


def test_each_error_kind_has_its_status():
    assert status_of(ValidationFailed()) == 422
    assert status_of(Conflict(code="email_taken")) == 409
    assert status_of(RateLimited(retry_after=5)) == 429
