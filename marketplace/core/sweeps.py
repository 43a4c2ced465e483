"""What every scheduler sweep receives: the database, the Stripe gateway, the settings."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from config import Settings
from marketplace.core.db import DatabaseState

if TYPE_CHECKING:  # for the type only: core sits below payments
    from marketplace.payments.gateway import StripeGateway

T = TypeVar("T")
# Threads a sweep may use at once on PostgreSQL (SQLite takes one writer at a time).
SWEEP_WORKERS = 4


@dataclass(frozen=True)
class SweepContext:
    db: DatabaseState
    gateway: StripeGateway
    settings: Settings

    def local_date(self, now: datetime) -> date:
        """The platform's calendar date at ``now``."""
        return now.astimezone(ZoneInfo(self.settings.timezone)).date()

    @property
    def workers(self) -> int:
        return 1 if self.db.engine.dialect.name == "sqlite" else SWEEP_WORKERS

    def in_parallel(
        self,
        items: Sequence[T],
        group: Callable[[T], Hashable],
        work: Callable[[list[T]], tuple[int, ...]],
    ) -> tuple[int, ...]:
        """Run ``work`` over ``items`` in up to ``workers`` threads and add up its counts.

        Items of one group (a project, say) go to the same thread, in their
        order, so no two threads wait on the same rows; groups are dealt out
        largest first to the least loaded thread. Each thread opens its own
        session. An exception in any thread is raised here.
        """
        groups: dict[Hashable, list[T]] = {}
        for item in items:
            groups.setdefault(group(item), []).append(item)
        shares: list[list[T]] = [[] for _ in range(self.workers)]
        for members in sorted(groups.values(), key=len, reverse=True):
            min(shares, key=len).extend(members)
        shares = [share for share in shares if share]
        if len(shares) <= 1:
            results = [work(share) for share in shares]
        else:
            # Each thread runs in a copy of the caller's context (the audit log's actor).
            contexts = [contextvars.copy_context() for _ in shares]
            with ThreadPoolExecutor(max_workers=len(shares)) as pool:
                results = list(pool.map(lambda c, s: c.run(work, s), contexts, shares))
        return tuple(map(sum, zip(*results, strict=True))) if results else ()


def sweep_context(app: Any) -> SweepContext:
    """What the scheduler's sweeps need from a Flask application."""
    # The scheduler's Stripe waits its turn under the rate limits and retries a 429.
    patient = app.extensions["stripe"].for_sweeps()
    return SweepContext(app.extensions["db"], patient, app.extensions["settings"])


class Progress:
    """How far a long sweep is: a log line at most every ``every`` seconds with what is
    done of how many, the rate so far and the time left at that rate (thread-safe)."""

    def __init__(
        self,
        what: str,
        total: int,
        log: logging.Logger,
        *,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.total, self.log, self.every, self.clock = what, total, log, every, clock
        self.done = 0
        self.began = self.last = clock()
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            now = self.clock()
            if now - self.last < self.every or self.done >= self.total:
                return
            self.last = now
            line = self.line(now)
        self.log.info("%s", line)

    def line(self, now: float | None = None) -> str:
        elapsed = (self.clock() if now is None else now) - self.began
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        ahead = f"{left:.0f} s left" if left != float("inf") else "time left unknown"
        return (
            f"{self.what}: {self.done:,} of {self.total:,} done, {rate:.1f}/s, {ahead} at this rate"
        )
