"""The marketplace raises the domain's errors (defined in ``outcomes.errors``)."""

from outcomes.errors import (
    Conflict,
    DomainError,
    Forbidden,
    MarketplaceError,
    NotFound,
    PaymentRequired,
    RateLimited,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)

__all__ = [
    "Conflict",
    "DomainError",
    "Forbidden",
    "MarketplaceError",
    "NotFound",
    "PaymentRequired",
    "RateLimited",
    "Unauthenticated",
    "Unavailable",
    "ValidationFailed",
]
