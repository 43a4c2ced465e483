"""The injectable clock.

Services take ``now`` as an argument; edges read it from the application's
clock, which tests and the scheduler's ``tick --now`` replace.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import current_app

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def now() -> datetime:
    """The current instant as the running application sees it."""
    clock: Clock = current_app.extensions.get("clock", system_clock)
    return clock()


def today() -> date:
    """The platform's calendar date now (deadlines and start dates are such dates)."""
    zone = ZoneInfo(current_app.extensions["settings"].timezone)
    return now().astimezone(zone).date()
