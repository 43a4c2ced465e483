"""The scheduler: sweeps run every minute, each one idempotent.

Invariants:
- A sweep takes a session and ``now`` and does all its work as of ``now``; it
  runs in its own transaction, so one failing sweep neither rolls back nor
  stops the others.
- Sweeps are safe with two scheduler processes at once: they act only on rows
  they claim with an atomic state change (later sweeps) or do work that is
  harmless to repeat (deleting expired rows).
- Jobs live in memory with fixed ids (never a shared job store), coalesced and
  with at most one instance each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from marketplace.accounts.services import purge_login_attempts
from marketplace.core.db import DatabaseState

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 60


@dataclass(frozen=True)
class Sweep:
    name: str
    run: Callable[[Session, datetime], str]


@dataclass(frozen=True)
class SweepReport:
    name: str
    ok: bool
    summary: str


SWEEPS: tuple[Sweep, ...] = (Sweep("purge_login_attempts", purge_login_attempts),)


def run_sweeps(
    db: DatabaseState, now: datetime, sweeps: tuple[Sweep, ...] = SWEEPS
) -> list[SweepReport]:
    """Run every sweep once as of ``now``; report what each did."""
    reports = []
    for sweep in sweeps:
        try:
            with db.transaction() as session:
                summary = sweep.run(session, now)
        except Exception:
            log.exception("sweep %s failed", sweep.name)
            reports.append(SweepReport(sweep.name, False, "failed; see the log"))
        else:
            reports.append(SweepReport(sweep.name, True, summary))
    return reports


def build_scheduler(job: Callable[[], object]):
    """A blocking APScheduler running ``job`` every minute, starting now."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone=UTC)
    scheduler.add_job(
        job,
        "interval",
        seconds=SWEEP_INTERVAL_SECONDS,
        id="sweeps",
        coalesce=True,
        max_instances=1,
        next_run_time=datetime.now(UTC),
        replace_existing=True,
    )
    return scheduler
