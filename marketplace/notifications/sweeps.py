"""The scheduler's e-mail delivery: notices committed since the last run go out once."""

from __future__ import annotations

from datetime import datetime

from marketplace.core.sweeps import SweepContext
from marketplace.notifications.services import Mailer, deliver


def deliver_notifications(ctx: SweepContext, now: datetime) -> str:
    counts = deliver(ctx.db.session_factory, Mailer(ctx.settings), now=now)
    return ", ".join(f"{n} {what}" for what, n in counts.items())
