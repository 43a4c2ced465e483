"""Every table of the application, imported in one place for Alembic and tests."""

from marketplace.accounts.models import ApiToken, LoginAttempt, Organisation, User
from outcomes.catalogue import OutcomeType
from outcomes.db import Base

__all__ = ["ApiToken", "Base", "LoginAttempt", "Organisation", "OutcomeType", "User"]
