"""Stripe's rate limits: every process keeps to them together, and a 429 fails nothing.

The fake Stripe enforces the sandbox's limits (25 requests a second over the API and
to each endpoint) and counts the 429s it answers. Two ``flask scheduler tick``
processes settle the same projects at once, each pacing its calls through the shared
``stripe_pace`` rows; together they stay under the limit, every refund is made once,
no row is failed, and the books agree with Stripe.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from itertools import pairwise

import pytest
from sqlalchemy import func, select

from bench import settlement as bench
from marketplace.payments.models import MoneyState, Refund, Transfer
from marketplace.payments.pacing import GLOBAL, Limits, Pacer, TooLong
from marketplace.projects.models import Project, ProjectState
from marketplace.reconciliation.checks import reconcile
from tests.deploy.test_crash_recovery import all_of, migrated_app, tick

pytestmark = pytest.mark.postgres_only
PROJECTS, PLEDGES = 5, 100
LIMIT = 25


def stripe_requests(localstripe) -> int:
    """How many requests the fake Stripe has taken (refusals not counted)."""
    with urllib.request.urlopen(localstripe.url + "/_config/requests", timeout=30) as answer:
        return len(json.load(answer)["requests"])


def test_two_schedulers_at_once_settle_under_stripes_limit_and_fail_nothing(
    postgres_admin_url, tmp_path
):
    with migrated_app(postgres_admin_url, "som_rate", tmp_path / "instance") as made:
        app, url, localstripe = made
        bench.seed(app, localstripe.url, PROJECTS, PLEDGES)
        localstripe.limit(per_second=LIMIT, per_endpoint=LIMIT)
        before = stripe_requests(localstripe)

        began = time.monotonic()
        both = [tick(url, localstripe.url, tmp_path / "instance", bench.SETTLE_AT) for _ in "ab"]
        assert [process.wait(timeout=300) for process in both] == [0, 0]
        elapsed = time.monotonic() - began
        refused = localstripe.refused()
        sent = stripe_requests(localstripe) - before
        # the checks below read Stripe without the scheduler's pacing: lift the limit
        localstripe.limit(per_second=0, per_endpoint=0)

        with app.extensions["db"].session_factory() as session:
            settled = select(func.count()).where(Project.state == ProjectState.SETTLED)
            assert session.scalar(settled) == PROJECTS
            refunds = session.scalars(select(Refund)).all()
            transfers = session.scalars(select(Transfer)).all()
            assert len(refunds) == PROJECTS * PLEDGES
            assert {r.state for r in refunds} == {MoneyState.SUCCEEDED}
            assert {t.state for t in transfers} == {MoneyState.SUCCEEDED}
            at_stripe = all_of(app, "refunds")
            assert sorted(r.id for r in at_stripe) == sorted(r.refund_id for r in refunds)
            run = reconcile(session, app.extensions["stripe"], bench.SETTLE_AT)
            assert [d for d in run.differences if not d.startswith("Stripe clearing:")] == []
        # Together under the limit: the fake refused at most a handful, and the calls
        # took as long as the limit makes them (each refund and transfer is one call).
        # (every call the two ticks made: the refunds and transfers, and reconciliation's
        # reads of every payment, refund and transfer)
        assert refused <= 3, refused
        assert sent >= len(refunds) + len(transfers)
        assert sent / elapsed <= LIMIT, (sent, elapsed)
        print(
            f"{sent} calls in {elapsed:.1f} s: {sent / elapsed:.1f}/s of {LIMIT}, {refused} refused"
        )


def test_the_pacer_spaces_every_threads_calls_and_a_person_does_not_wait_long(app):
    engine = app.extensions["db"].engine
    pacer = Pacer(engine, Limits(per_second=40, per_endpoint=20))
    taken: list[tuple[str, float]] = []

    def take(endpoint: str) -> None:
        for _ in range(10):
            taken.append((endpoint, pacer.moment(endpoint)))

    threads = [
        threading.Thread(target=take, args=(endpoint,))
        for endpoint in ("POST /v1/refunds", "POST /v1/refunds", "POST /v1/transfers")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    def gaps(moments: list[float]) -> list[float]:
        ordered = sorted(moments)
        return [b - a for a, b in pairwise(ordered)]

    refunds = [at for endpoint, at in taken if endpoint == "POST /v1/refunds"]
    assert min(gaps(refunds)) >= 1 / 20 - 1e-6  # each endpoint at its own limit
    assert min(gaps([at for _e, at in taken])) >= 1 / 40 - 1e-6  # and all of them together
    assert len(refunds) == 20 and len(taken) == 30
    # the 30 moments reach 0.95 s ahead (20 refunds at 20/s); a person would wait that long
    with pytest.raises(TooLong) as busy:
        pacer.wait("POST /v1/refunds", patience=0.5)
    assert busy.value.delay > 0.5
    with engine.connect() as connection:
        rows = dict(connection.exec_driver_sql("SELECT name, next_us FROM stripe_pace").all())
    assert set(rows) == {GLOBAL, "POST /v1/refunds", "POST /v1/transfers"}


def test_a_charge_asking_during_a_large_settlement_waits_only_its_turn(app):
    """Four threads of refunds each wait for their moment before taking the next; a charge
    that asks in the middle gets a moment within the next few, not after every refund
    still to come."""
    pacer = Pacer(app.extensions["db"].engine, Limits(per_second=200, per_endpoint=200))
    stop = threading.Event()

    def refunds() -> None:
        while not stop.is_set():  # as a sweep's thread: wait for each moment, then call
            pacer.wait("POST /v1/refunds")

    threads = [threading.Thread(target=refunds) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        asked = time.time()
        charge = pacer.moment("POST /v1/payment_intents")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    # at most the four refund threads' pending moments ahead of it, at 1/200 s each
    assert charge - asked <= 5 / 200 + 0.05, charge - asked
