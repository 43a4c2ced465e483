"""What every scheduler sweep receives: the database, the Stripe gateway, the settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from config import Settings
from marketplace.core.db import DatabaseState
from marketplace.payments.gateway import StripeGateway


@dataclass(frozen=True)
class SweepContext:
    db: DatabaseState
    gateway: StripeGateway
    settings: Settings

    def local_date(self, now: datetime) -> date:
        """The platform's calendar date at ``now``."""
        return now.astimezone(ZoneInfo(self.settings.timezone)).date()


def sweep_context(app: Any) -> SweepContext:
    """What the scheduler's sweeps need from a Flask application."""
    return SweepContext(app.extensions["db"], app.extensions["stripe"], app.extensions["settings"])
