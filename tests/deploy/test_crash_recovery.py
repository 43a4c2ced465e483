"""The scheduler killed in the middle of its sweeps, and PostgreSQL restarted under a
running app: nothing is lost, nothing is done twice, nothing is left half-done.

Kill tests: ``flask scheduler tick`` runs as a process and is SIGKILLed at points
recognised by what the database shows, then started again each time; a last run
finishes. (1) Projects in funding on their start date: killed inside
``charge_pledges`` (twice) and while the cost tranches are paid; every pledge is
then charged once at Stripe, every tranche paid once, and reconciliation is clean.
(2) Projects on the day after their end (as the settlement benchmark seeds them):
killed inside ``settle_projects``, ``execute_refunds`` (twice),
``execute_transfers`` and ``finish_settlements``; every project is then settled
once, every refund and transfer exists once at Stripe and once in the books, no
money row waits in ``created`` and no notice in ``sending``.

Restart test: the app serves a pledge, PostgreSQL is restarted (fast shutdown,
every connection cut), and the next pledge succeeds on fresh connections.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import flask_migrate
import psycopg
import pytest
from sqlalchemy import func, insert, select, update

import config
from bench import pledges as bench_pledges
from bench import settlement as bench
from config import PROJECT_ROOT
from marketplace import create_app
from marketplace.audit.models import AuditEvent
from marketplace.funding.models import Pledge, PledgeState, PledgeStateChange
from marketplace.ledger.models import JournalEntry
from marketplace.notifications.models import MailState, Notification
from marketplace.payments.models import MoneyState, Payment, PaymentState, Refund, Transfer
from marketplace.projects.models import Project, ProjectState
from marketplace.reconciliation.checks import reconcile
from marketplace.settlement.models import Settlement
from tests.support.deploy import BIN, production_env
from tests.support.postgres import PostgresServer, create_database, find_bindir
from tests.support.stripe_process import StripeServer

pytestmark = pytest.mark.postgres_only
PROJECTS, PLEDGES = 12, 25

# Where to kill: a description and a query that is true once the run is that far.
KILL_POINTS = [
    ("settle_projects, a third of the projects claimed", "SELECT count(*) >= 4 FROM settlements"),
    (
        "execute_refunds, the first refunds made",
        "SELECT count(*) >= 10 FROM refunds WHERE state = 'succeeded'",
    ),
    (
        "execute_refunds, half of them made",
        f"SELECT count(*) >= {PROJECTS * PLEDGES // 2} FROM refunds WHERE state = 'succeeded'",  # noqa: S608 - constants
    ),
    (
        "execute_transfers, the first premium paid",
        "SELECT count(*) >= 1 FROM transfers WHERE kind = 'premium' AND state = 'succeeded'",
    ),
    (
        "finish_settlements, the first project settled",
        "SELECT count(*) >= 1 FROM projects WHERE state = 'settled'",
    ),
]


@contextlib.contextmanager
def migrated_app(postgres_admin_url: str, name: str, instance: Path):
    """An app on a fresh, migrated database with a localstripe of its own:
    (app, database URL, localstripe)."""
    localstripe = StripeServer().start()
    url = create_database(postgres_admin_url, f"{name}_{os.getpid()}")
    app = create_app(config.testing_settings(url, instance, stripe_api_base=localstripe.url))
    with app.app_context():
        flask_migrate.upgrade()
    try:
        yield app, url, localstripe
    finally:
        app.extensions["db"].engine.dispose()
        localstripe.stop()


@pytest.fixture
def seeded(postgres_admin_url, tmp_path):
    with migrated_app(postgres_admin_url, "som_crash", tmp_path / "instance") as made:
        app, _url, localstripe = made
        bench.seed(app, localstripe.url, PROJECTS, PLEDGES)
        yield made


def tick(url: str, stripe_base: str, instance: Path, at) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "flask"), "--app", "marketplace", "scheduler", "tick", "--now", at.isoformat()],
        env=production_env(url, stripe_base, instance),
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def far_enough(url: str, query: str) -> bool:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return bool(conn.execute(query).fetchone()[0])


def kill_at_each(
    url: str, stripe_base: str, instance: Path, at, points, *, every=timedelta(0)
) -> list[str]:
    """Start a tick for each point (``every`` apart, as the scheduler's minutes pass) and
    SIGKILL it there; return the points it was killed at, alive."""
    killed_at = []
    for n, (description, query) in enumerate(points):
        process = tick(url, stripe_base, instance, at + n * every)
        deadline = time.monotonic() + 120
        while process.poll() is None and not far_enough(url, query):
            assert time.monotonic() < deadline, f"never reached: {description}"
            time.sleep(0.01)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed_at.append(description)
        assert process.wait(timeout=30) in (0, -signal.SIGKILL)
    return killed_at


def all_of(app, resource: str) -> list:
    """Every object of a Stripe list (``payment_intents``, ``refunds``, ``transfers``)."""
    listing = getattr(app.extensions["stripe"].client.v1, resource)
    found, after = [], None
    while True:
        page = listing.list(params={"limit": 100, **({"starting_after": after} if after else {})})
        found.extend(page.data)
        if not page.has_more:
            return found
        after = page.data[-1].id


def test_the_scheduler_killed_inside_each_settlement_sweep_finishes_exactly_once(seeded, tmp_path):
    app, url, localstripe = seeded
    killed_at = kill_at_each(
        url, localstripe.url, tmp_path / "instance", bench.SETTLE_AT, KILL_POINTS
    )
    # Each point was reached with the process still running: every kill landed.
    assert killed_at == [description for description, _ in KILL_POINTS]
    # Restarted: the run finishes; ten minutes later the interrupted e-mails are settled too.
    for at in (bench.SETTLE_AT, bench.SETTLE_AT + timedelta(minutes=11)):
        finished = tick(url, localstripe.url, tmp_path / "instance", at)
        assert finished.wait(timeout=180) == 0

    with app.extensions["db"].session_factory() as session:
        assert (
            session.scalar(select(func.count()).where(Project.state == ProjectState.SETTLED))
            == PROJECTS
        )
        assert session.scalar(select(func.count()).select_from(Settlement)) == PROJECTS
        refunds = session.scalars(select(Refund)).all()
        assert len(refunds) == PROJECTS * PLEDGES
        assert {r.state for r in refunds} == {MoneyState.SUCCEEDED}
        transfers = session.scalars(select(Transfer).where(Transfer.kind == "premium")).all()
        assert len(transfers) == PROJECTS
        assert {t.state for t in transfers} == {MoneyState.SUCCEEDED}
        assert not session.scalar(
            select(func.count()).where(Notification.mail_state == MailState.SENDING)
        )
        # Stripe holds each refund once: none was made twice by a restarted run.
        at_stripe = all_of(app, "refunds")
        assert sorted(r.id for r in at_stripe) == sorted(r.refund_id for r in refunds)
        assert sum(r.amount for r in at_stripe) == sum(r.amount_cents for r in refunds)
        # One refund entry per refund in the books, and the audit log saw each entry once.
        entries = session.scalar(select(func.count()).select_from(JournalEntry))
        refund_entries = session.scalar(select(func.count()).where(JournalEntry.kind == "refund"))
        assert refund_entries == PROJECTS * PLEDGES
        assert session.scalar(select(func.count()).where(AuditEvent.kind == "money")) == entries
        # Reconciliation: the journal balances and every payment, refund and transfer
        # agrees with Stripe. (The clearing account is left out: the seed books the
        # money into escrow without the charges' clearing entries.)
        run = reconcile(session, app.extensions["stripe"], bench.SETTLE_AT + timedelta(hours=1))
        differences = [d for d in run.differences if not d.startswith("Stripe clearing:")]
        assert differences == []
        assert run.checked >= PROJECTS * PLEDGES


@pytest.fixture
def own_postgres():
    """A PostgreSQL server of this test's own: it is restarted under the app."""
    server = PostgresServer(find_bindir()).start()
    yield server
    server.stop()


def test_the_app_survives_a_postgresql_restart_and_loses_no_pledge(own_postgres, tmp_path):
    url = create_database(own_postgres.url(), "som_restart")
    app = create_app(config.testing_settings(url, tmp_path / "instance"))
    with app.app_context():
        flask_migrate.upgrade()
    project_id, buyers = bench_pledges.seed(url)
    client = app.test_client()

    def pledge(buyer: int, key: str):
        secret, method = buyers[buyer]
        return client.post(
            f"/api/v1/projects/{project_id}/pledges",
            json={"tokens": 3, "payment_method": method},
            headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": key},
        )

    assert pledge(0, "before").status_code == 201
    # Every pooled connection dies with the restart; the next requests get new ones.
    own_postgres.pg_ctl("restart", "-m", "fast")
    assert client.get("/health").status_code == 200
    assert pledge(1, "after-restart").status_code == 201

    # While the server is down a pledge is refused cleanly, and nothing of it remains.
    own_postgres.pg_ctl("stop", "-m", "fast")
    try:
        down = pledge(2, "during-outage")
        assert down.status_code == 503
        assert down.json["code"] == "database_unavailable"
        assert down.headers["Retry-After"] == "5"
        assert client.get("/health").status_code == 503
    finally:
        own_postgres.pg_ctl("start")
    # The buyer retries with the same key once the database is back: one pledge.
    again = pledge(2, "during-outage")
    assert again.status_code == 201
    assert pledge(2, "during-outage").json["id"] == again.json["id"]

    with app.extensions["db"].session_factory() as session:
        pledges = session.scalars(select(Pledge).order_by(Pledge.id)).all()
        assert [p.tokens for p in pledges] == [3, 3, 3]
        assert session.get(Project, project_id).tokens_pledged == 9
        history = session.scalar(select(func.count()).select_from(PledgeStateChange))
        assert history == 3
    app.extensions["db"].engine.dispose()


@pytest.fixture
def in_funding(postgres_admin_url, tmp_path):
    """Projects in funding past their deadline, each with committed pledges that reach
    the threshold, as on the morning of their start date."""
    with migrated_app(postgres_admin_url, "som_crash_funding", tmp_path / "instance") as made:
        app, _url, localstripe = made
        valued = bench.seed_valued(app, localstripe.url, PROJECTS, PLEDGES)
        _commit_pledges(app, valued)
        yield made


def _commit_pledges(app, valued) -> None:
    """Put the valued projects in funding with pledges from every buyer, up to 95%."""
    with app.extensions["db"].engine.begin() as conn:
        conn.execute(
            update(Project)
            .where(Project.id.in_(valued.project_ids))
            .values(
                state=ProjectState.FUNDING,
                listed_at=bench.SEEDED_AT,
                tokens_pledged=valued.size * PLEDGES,
            )
        )
        conn.execute(
            insert(Pledge),
            [
                {
                    "project_id": project_id,
                    "organisation_id": organisation,
                    "user_id": user,
                    "payment_setup_id": setup,
                    "tokens": valued.size,
                    "amount_cents": valued.size * valued.price,
                    "state": PledgeState.COMMITTED,
                    "created_at": bench.SEEDED_AT,
                    "updated_at": bench.SEEDED_AT,
                }
                for project_id in valued.project_ids
                for organisation, (user, setup, _customer, _method) in valued.cards.items()
            ],
        )


# The morning of the start date (00:00 in Amsterdam): funding closes, every pledge is
# charged, the projects start and their cost tranches are paid out, in one tick.
START = datetime(2026, 12, 9, 23, 0, tzinfo=UTC)
FUNDING_KILL_POINTS = [
    (
        "charge_pledges, the first charges made",
        "SELECT count(*) >= 10 FROM payments WHERE state = 'succeeded'",
    ),
    (
        "charge_pledges, most charges made",
        f"SELECT count(*) >= {PROJECTS * PLEDGES * 2 // 3} FROM payments "  # noqa: S608
        "WHERE state = 'succeeded'",
    ),
    (
        "start_projects / execute_transfers, the first cost tranche paid",
        "SELECT count(*) >= 1 FROM transfers WHERE kind = 'cost_tranche' AND state = 'succeeded'",
    ),
]


def test_the_scheduler_killed_while_charging_and_starting_finishes_exactly_once(
    in_funding, tmp_path
):
    app, url, localstripe = in_funding
    instance = tmp_path / "instance"
    # A charge claimed but not yet sent by a killed run is taken up again once it is
    # STALE_AFTER (2 minutes) old, with the same idempotency key: the runs are 3 minutes apart.
    every = timedelta(minutes=3)
    points = FUNDING_KILL_POINTS
    killed_at = kill_at_each(url, localstripe.url, instance, START, points, every=every)
    assert killed_at == [description for description, _ in points]
    finish = START + len(points) * every
    assert tick(url, localstripe.url, instance, finish).wait(timeout=180) == 0

    with app.extensions["db"].session_factory() as session:
        states = session.scalars(select(Project.state)).all()
        assert states == [ProjectState.RUNNING] * PROJECTS
        pledges = session.scalars(select(Pledge.state)).all()
        assert set(pledges) == {PledgeState.PAID} and len(pledges) == PROJECTS * PLEDGES
        payments = session.scalars(select(Payment)).all()
        assert len(payments) == PROJECTS * PLEDGES
        assert {p.state for p in payments} == {PaymentState.SUCCEEDED}
        # Stripe charged each pledge once, and paid each cost tranche once.
        intents = [i for i in all_of(app, "payment_intents") if i.status == "succeeded"]
        assert sorted(i.id for i in intents) == sorted(p.payment_intent_id for p in payments)
        tranches = session.scalars(select(Transfer).where(Transfer.kind == "cost_tranche")).all()
        assert len(tranches) == PROJECTS
        assert {t.state for t in tranches} == {MoneyState.SUCCEEDED}
        assert sorted(t.id for t in all_of(app, "transfers")) == sorted(
            t.transfer_id for t in tranches
        )
        run = reconcile(session, app.extensions["stripe"], finish + timedelta(hours=1))
        assert run.differences == []
