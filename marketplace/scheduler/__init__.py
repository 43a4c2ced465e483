"""The scheduler: sweeps run every minute, each one idempotent.

Invariants:
- A sweep takes a ``SweepContext`` (database, Stripe gateway, settings) and
  ``now``, and does all its work as of ``now``. Sweeps that call Stripe commit
  around each call (never holding a transaction open across the network);
  the others run in one transaction each. One failing sweep neither rolls back
  nor stops the others.
- Sweeps are safe with two scheduler processes at once: they act only on rows
  they claim with an atomic state change or a unique insert, and every Stripe
  call carries an idempotency key derived from a row.
- Jobs live in memory with fixed ids (never a shared job store), coalesced and
  with at most one instance each.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from marketplace.accounts.services import purge_login_attempts
from marketplace.audit import services as audit
from marketplace.core.sweeps import SweepContext
from marketplace.funding import sweeps as funding
from marketplace.notifications.sweeps import deliver_notifications
from marketplace.receipts.sweeps import issue_receipts
from marketplace.reconciliation.checks import reconcile_sweep
from marketplace.settlement import sweeps as settlement

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 60


@dataclass(frozen=True)
class Sweep:
    name: str
    run: Callable[[SweepContext, datetime], str]


@dataclass(frozen=True)
class SweepReport:
    name: str
    ok: bool
    summary: str

    @property
    def did_something(self) -> bool:
        """Failed, or counted something other than nothing (every summary is counts)."""
        return not self.ok or re.search(r"[1-9]", self.summary) is not None


def log_lines(reports: list[SweepReport], now: datetime) -> list[str]:
    """What a tick says in the log: a line for each sweep that did something, or one
    line that nothing needed doing (so a quiet scheduler writes one line a minute)."""
    busy = [r for r in reports if r.did_something]
    if not busy:
        return [f"{len(reports)} sweeps as of {now:%Y-%m-%d %H:%M} UTC: nothing to do"]
    return [f"sweep {r.name}: {r.summary if r.ok else 'FAILED; see the error above'}" for r in busy]


def in_one_transaction(work: Callable[[Session, datetime], str]):
    """A sweep doing ``work(session, now)`` in one transaction."""

    def run(ctx: SweepContext, now: datetime) -> str:
        with ctx.db.transaction() as session:
            return work(session, now)

    return run


# In this order: a round closed in a tick is charged in the same tick.
SWEEPS: tuple[Sweep, ...] = (
    Sweep("notify_thresholds", funding.notify_thresholds),
    Sweep("close_funding", funding.close_funding),
    Sweep("charge_pledges", funding.charge_pledges),
    Sweep("remind_grace_ending", funding.remind_grace_ending),
    Sweep("end_bank_transfers", funding.end_bank_transfers),
    Sweep("end_grace_periods", funding.end_grace_periods),
    Sweep("start_projects", funding.start_projects),
    Sweep("open_evaluations", settlement.open_evaluations),
    Sweep("settle_projects", settlement.settle_projects),
    Sweep("execute_refunds", funding.execute_refunds),
    Sweep("return_balances", funding.return_balances),
    # A receipt for each charge and a credit note for each refund made so far.
    Sweep("issue_receipts", issue_receipts),
    Sweep("execute_transfers", funding.execute_transfers),
    Sweep("finish_settlements", settlement.finish_settlements),
    Sweep("flag_late", settlement.flag_late),
    Sweep("reconcile", reconcile_sweep),
    Sweep("purge_login_attempts", in_one_transaction(purge_login_attempts)),
    # Last: e-mail what every sweep above (and every request since) committed.
    Sweep("deliver_notifications", deliver_notifications),
)


def run_sweeps(
    ctx: SweepContext, now: datetime, sweeps: tuple[Sweep, ...] = SWEEPS
) -> list[SweepReport]:
    """Run every sweep once as of ``now``; report what each did."""
    reports = []
    for sweep in sweeps:
        try:
            with audit.acting_as("scheduler"):
                summary = sweep.run(ctx, now)
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
