"""Stripe's rate limits, kept by every process together.

Stripe allows an account so many requests a second over the whole API (25 in a
sandbox, 100 live) and, unless it says otherwise, 25 a second to each endpoint
(a method and a route: ``POST /v1/refunds``); past them it answers 429 (Rate
limits). Every call the app makes first takes the next free moment of both
limits from the ``stripe_pace`` table and sleeps until then, so the sweeps of
every process and thread together stay under them, each call in the order it
asked (a large settlement makes a charge wait its turn, never forever).

A moment is taken in one short transaction that locks the global row first (the
same order everywhere: no deadlock; SQLite's single writer does the same), reads
the endpoint's, and moves both past the moment it takes. Times are microseconds
of the wall clock, which every process on the servers shares.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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
        self.waited = 0.0  # seconds slept in this process, for the progress reports

    def _ensure(self, name: str) -> None:
        if name in self._known:
            return
        with self.engine.begin() as connection:
            make = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
            connection.execute(
                make(StripePace).values(name=name, next_us=0).on_conflict_do_nothing()
            )
        self._known.add(name)

    def moment(self, endpoint: str) -> float:
        """Take the next free moment (seconds since the epoch) for one call to ``endpoint``."""
        for name in (GLOBAL, endpoint):
            self._ensure(name)
        now_us = int(self.clock() * 1_000_000)
        with (
            self.engine.connect().execution_options(sqlite_begin="IMMEDIATE") as connection,
            connection.begin(),
        ):
            rows: dict[str, int] = {}
            for name in (GLOBAL, endpoint):  # the global row first, always
                rows[name] = (
                    connection.scalar(
                        select(StripePace.next_us).where(StripePace.name == name).with_for_update()
                    )
                    or 0
                )
            at = max(now_us, *rows.values())
            for name, per_second in (
                (GLOBAL, self.limits.per_second),
                (endpoint, self.limits.per_endpoint),
            ):
                connection.execute(
                    update(StripePace)
                    .where(StripePace.name == name)
                    .values(next_us=max(rows[name], at + int(1_000_000 / per_second)))
                )
        return at / 1_000_000

    def wait(self, endpoint: str, *, patience: float | None = None) -> float:
        """Sleep until this call's moment; returns the seconds slept. With ``patience``,
        raises TooLong instead of sleeping longer (a person is waiting)."""
        delay = self.moment(endpoint) - self.clock()
        if delay <= 0:
            return 0.0
        if patience is not None and delay > patience:
            raise TooLong(delay)
        self.sleep(delay)
        self.waited += delay
        return delay


class TooLong(Exception):
    """The call's moment is further off than the caller will wait."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"Stripe's rate limit: the next call in {delay:.1f} s")
        self.delay = delay
