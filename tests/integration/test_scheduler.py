"""Sweeps run in their own transactions; one failing does not stop the others."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from marketplace.accounts.models import LoginAttempt
from marketplace.core.sweeps import sweep_context
from marketplace.scheduler import SWEEPS, Sweep, build_scheduler, run_sweeps
from tests.factories import LoginAttemptFactory


def test_a_failing_sweep_is_reported_and_the_others_still_run(app, session):
    at = datetime(2027, 1, 1, tzinfo=UTC)
    LoginAttemptFactory(attempted_at=at - timedelta(days=3))

    def broken(_ctx, _now):
        raise RuntimeError("boom")

    reports = run_sweeps(sweep_context(app), at, (Sweep("broken", broken), *SWEEPS))

    assert reports[0].name == "broken"
    assert not reports[0].ok
    assert [r.name for r in reports[1:]] == [s.name for s in SWEEPS]
    assert all(r.ok for r in reports[1:]), reports
    session.rollback()
    assert session.scalar(select(func.count()).select_from(LoginAttempt)) == 0


def test_the_scheduler_runs_one_coalesced_job_every_minute():
    scheduler = build_scheduler(lambda: None)

    job = scheduler.get_job("sweeps")
    assert job.trigger.interval == timedelta(minutes=1)
    assert job.coalesce is True
    assert job.max_instances == 1


def test_a_quiet_tick_is_one_line_and_a_busy_one_names_what_happened(app, session):
    from marketplace.scheduler import log_lines

    at = datetime(2027, 1, 1, 9, 30, tzinfo=UTC)
    # without Stripe objects or rows, reconcile has nothing to compare either
    quiet = [r for r in run_sweeps(sweep_context(app), at) if r.name != "reconcile"]

    assert log_lines(quiet, at) == [
        f"{len(quiet)} sweeps as of 2027-01-01 09:30 UTC: nothing to do"
    ]

    LoginAttemptFactory(attempted_at=at - timedelta(days=3))
    session.commit()

    def broken(_ctx, _now):
        raise RuntimeError("boom")

    busy = run_sweeps(sweep_context(app), at, (Sweep("broken", broken), *SWEEPS))
    lines = log_lines([r for r in busy if r.name != "reconcile"], at)
    assert lines == [
        "sweep broken: FAILED; see the error above",
        "sweep purge_login_attempts: deleted 1 old log-in attempts",
    ]
