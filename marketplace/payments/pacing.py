"""Stripe's rate limits, kept by every process together.

Stripe allows an account so many requests a second over the whole API (25 in a
sandbox, 100 live) and, unless it says otherwise, 25 a second to each endpoint
(a method and a route: ``POST /v1/refunds``); past them it answers 429 (Rate
limits). Every call the app makes first takes the next free moment of both
limits from the ``stripe_pace`` table and sleeps until then, so the sweeps of
every process and thread together stay under them, each call in the order it
asked (a large settlement makes a charge wait its turn, never forever).

On PostgreSQL a moment is taken in one short transaction that locks the global
row first (the same order everywhere: no deadlock), reads the endpoint's, and moves
both past the moment it takes; times are microseconds of the wall clock, which
every process on the servers shares. On SQLite the moments are kept in the process
(a lock and a dict): its one writer is often held by the request that is calling
Stripe, so a second connection could only wait for it. (SQLite runs one app process
and one scheduler; each keeps under the limit, and a 429 is sent again anyway.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert

from marketplace.payments.models import StripePace

GLOBAL = "*"
# Below Stripe's figures, so a clock's drift or a request's jitter does not tip over.
MARGIN = 0.95
# Stripe's documented limits, requests a second: (global, each endpoint).
SANDBOX = (25, 25)
LIVE = (100, 25)


@dataclass(frozen=True)
class Limits:
    """Requests a second the app allows itself, globally and per endpoint."""

    per_second: float
    per_endpoint: float

    @classmethod
    def parse(cls, configured: str, api_key: str) -> Limits | None:
        """``STRIPE_RATE_LIMIT``: "" (Stripe's figures for the key, less the margin),
        "off", or "GLOBAL/ENDPOINT" requests a second as given. Raises ValueError."""
        text = configured.strip().lower()
        if text == "off":
            return None
        if not text:
            figures = LIVE if api_key.startswith(("sk_live_", "rk_live_")) else SANDBOX
            return cls(figures[0] * MARGIN, figures[1] * MARGIN)
        given, _slash, endpoint = text.partition("/")
        limits = cls(float(given), float(endpoint or given))
        if not (0 < limits.per_second <= 10_000 and 0 < limits.per_endpoint <= 10_000):
            raise ValueError("STRIPE_RATE_LIMIT: between 0 and 10000 requests a second")
        return limits


class Pacer:
    """Takes each call's moment under both limits and waits for it."""

    def __init__(
        self,
        engine: Engine,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine, self.limits = engine, limits
        self.clock, self.sleep = clock, sleep
        self._known: set[str] = set()
        self.shared = engine.dialect.name == "postgresql"
        self._lock = threading.Lock()
        self._next: dict[str, int] = {}

    def _ensure(self, name: str) -> None:
        if name in self._known:
            return
        with self.engine.begin() as connection:
            connection.execute(
                postgresql_insert(StripePace).values(name=name, next_us=0).on_conflict_do_nothing()
            )
        self._known.add(name)

    def _take(self, rows: dict[str, int], endpoint: str, now_us: int) -> tuple[int, dict]:
        """The moment, and each limit's next free moment after it."""
        at = max(now_us, *rows.values())
        steps = {GLOBAL: self.limits.per_second, endpoint: self.limits.per_endpoint}
        after = {name: max(rows[name], at + int(1_000_000 / steps[name])) for name in rows}
        return at, after

    @staticmethod
    def _within(at: int, now_us: int, patience: float | None) -> None:
        """Raises TooLong, before anything is taken, when the moment is further off than
        the caller will wait (so a refused call leaves its moment to the next)."""
        if patience is not None and (at - now_us) / 1_000_000 > patience:
            raise TooLong((at - now_us) / 1_000_000)

    def moment(self, endpoint: str, *, patience: float | None = None) -> float:
        """Take the next free moment (seconds since the epoch) for one call to ``endpoint``;
        with ``patience``, only one at most that many seconds away (else TooLong)."""
        if not self.shared:
            with self._lock:
                now_us = int(self.clock() * 1_000_000)
                kept = {name: self._next.get(name, 0) for name in (GLOBAL, endpoint)}
                at, after = self._take(kept, endpoint, now_us)
                self._within(at, now_us, patience)
                self._next.update(after)
            return at / 1_000_000
        for name in (GLOBAL, endpoint):
            self._ensure(name)
        now_us = int(self.clock() * 1_000_000)
        with self.engine.begin() as connection:
            rows: dict[str, int] = {}
            for name in (GLOBAL, endpoint):  # the global row first, always
                rows[name] = (
                    connection.scalar(
                        select(StripePace.next_us).where(StripePace.name == name).with_for_update()
                    )
                    or 0
                )
            at, after = self._take(rows, endpoint, now_us)
            self._within(at, now_us, patience)  # rolls back: nothing taken
            for name, next_us in after.items():
                connection.execute(
                    update(StripePace).where(StripePace.name == name).values(next_us=next_us)
                )
        return at / 1_000_000

    def wait(self, endpoint: str, *, patience: float | None = None) -> float:
        """Sleep until this call's moment; returns the seconds slept. With ``patience``,
        raises TooLong instead of sleeping longer (a person is waiting)."""
        delay = self.moment(endpoint, patience=patience) - self.clock()
        if delay <= 0:
            return 0.0
        self.sleep(delay)
        return delay


class TooLong(Exception):
    """The call's moment is further off than the caller will wait."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"Stripe's rate limit: the next call in {delay:.1f} s")
        self.delay = delay
