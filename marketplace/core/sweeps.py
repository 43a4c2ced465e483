"""What every scheduler sweep receives: the database, the Stripe gateway, the settings."""

from __future__ import annotations

import contextvars
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
    return SweepContext(app.extensions["db"], app.extensions["stripe"], app.extensions["settings"])
