"""The domain's refusals, each with a stable machine code.

Services in ``outcomes`` and ``marketplace`` raise these; the edges (JSON API,
web pages, CLI) map them to a response in one place each. An error carries no
HTTP knowledge beyond its kind: the mapping from kind to status lives in
``marketplace.api.problems``. They live here, in the lowest layer with
services, so that every layer above can raise them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class DomainError(Exception):
    """Base of every refusal the domain reports to its caller."""

    code = "error"
    title = "The request could not be completed"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        errors: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        self.errors = {name: list(messages) for name, messages in (errors or {}).items()}
        super().__init__(self.detail)


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
    """A service the request depends on (the payment provider) did not answer; retry later."""

    code = "payment_provider_unavailable"
    title = "The payment provider is unavailable; please try again shortly"


class RateLimited(DomainError):
    """Too many attempts; ``retry_after`` says how many seconds to wait."""

    code = "rate_limited"
    title = "Too many attempts"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kwargs) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = max(1, retry_after)


# The marketplace's name for the same base.
MarketplaceError = DomainError
