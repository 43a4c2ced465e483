"""The marketplace raises the domain's errors (defined in ``outcomes.errors``)."""

from outcomes.errors import (
    Conflict,
    DomainError,
    Forbidden,
    MarketplaceError,
    NotFound,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)

__all__ = [
    "Conflict",
    "DomainError",
    "Forbidden",
    "MarketplaceError",
    "NotFound",
    "RateLimited",
    "Unauthenticated",
    "ValidationFailed",
]
