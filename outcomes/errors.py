"""The domain's refusals, each with a stable machine code.

Services in ``outcomes`` and ``marketplace`` raise these; the edges (JSON API,
web pages, CLI) map them to a response in one place each. An error carries no
HTTP knowledge beyond its kind: the mapping from kind to status lives in
``marketplace.api.problems``. They live here, in the lowest layer with
services, so that every layer above can raise them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def plain_euros(key: str, value: Any) -> Any:
    """A figure of the English ``detail``: cents (a ``*_cents`` key) as euros."""
    if key.endswith("_cents") and isinstance(value, int) and not isinstance(value, bool):
        sign, cents = ("-" if value < 0 else ""), abs(value)
        return f"{sign}EUR {cents // 100:,}.{cents % 100:02d}"
    return value


class DomainError(Exception):
    """Base of every refusal the domain reports to its caller.

    A refusal is data: a stable ``code``, an English catalogue ``template`` with
    named ``params`` (``"Only %(left)s tokens remain."``), and field errors.
    The edges render it: the API in English (``detail``), the pages in the
    reader's language (the template translated, then the parameters put in).
    """

    code = "error"
    title = "The request could not be completed"

    def __init__(
        self,
        template: str | None = None,
        *,
        code: str | None = None,
        errors: Mapping[str, Sequence[str]] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.template = template or self.title
        self.params = dict(params or {})
        self.detail = (
            self.template % {k: plain_euros(k, v) for k, v in self.params.items()}
            if self.params
            else self.template
        )
        if code is not None:
            self.code = code
        self.errors = {name: list(messages) for name, messages in (errors or {}).items()}
        super().__init__(self.detail)

    @property
    def message(self) -> Message:
        """The refusal as a ``Message``: English as text, a template for the pages."""
        return Message(self.template, **self.params)


class Message(str):
    """A field error with figures: reads as the English text, keeps its template and
    parameters so a page can show it in the reader's language."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, **params: Any) -> Message:
        made = super().__new__(cls, template % params if params else template)
        made.template, made.params = template, params
        return made


class ValidationFailed(DomainError):
    """Input is malformed or breaks a rule; ``errors`` names each field."""

    code = "validation_failed"
    title = "The input is not valid: see errors for each field."


class Conflict(DomainError):
    """The request clashes with the current state (taken name, wrong state)."""

    code = "conflict"
    title = "The request conflicts with the current state"


class NotFound(DomainError):
    """The object does not exist, or the caller may not know it exists."""

    code = "not_found"
    title = "Not found"


class Unauthenticated(DomainError):
    """No valid credentials were given."""

    code = "unauthenticated"
    title = "Authentication is required"


class Forbidden(DomainError):
    """The caller is known but its role or object does not allow this."""

    code = "forbidden"
    title = "You are not allowed to do this"


class PaymentRequired(DomainError):
    """The payment method was refused (declined, or authentication is needed)."""

    code = "payment_method_declined"
    title = "The payment method was declined"


class Unavailable(DomainError):
    """A service the request depends on (the payment provider) did not answer; retry later
    (after ``retry_after`` seconds when the service said so)."""

    code = "payment_provider_unavailable"
    title = "The payment provider is unavailable; please try again shortly"

    def __init__(
        self, detail: str | None = None, *, retry_after: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after


class RateLimited(DomainError):
    """Too many attempts; ``retry_after`` says how many seconds to wait."""

    code = "rate_limited"
    title = "Too many attempts"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = max(1, retry_after)


# The marketplace's name for the same base.
MarketplaceError = DomainError
