"""Every table of the application, imported in one place for Alembic and tests."""

from marketplace.accounts.models import ApiToken, LoginAttempt, Organisation, User
from marketplace.ledger.models import JournalEntry, JournalLeg, LedgerAccount
from marketplace.projects.models import (
    ListingVersion,
    Project,
    ProjectStateChange,
    ValuationSnapshot,
)
from outcomes.catalogue import OutcomeType
from outcomes.commitments import OutcomeCommitment
from outcomes.db import Base

__all__ = [
    "ApiToken",
    "Base",
    "JournalEntry",
    "JournalLeg",
    "LedgerAccount",
    "ListingVersion",
    "LoginAttempt",
    "Organisation",
    "OutcomeCommitment",
    "OutcomeType",
    "Project",
    "ProjectStateChange",
    "User",
    "ValuationSnapshot",
]
