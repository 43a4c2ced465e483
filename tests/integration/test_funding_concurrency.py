"""Pledges and sweeps under concurrency: never oversold, every pledge charged exactly once."""

from __future__ import annotations

import multiprocessing
import random
import threading
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from marketplace.core.sweeps import SweepContext
from marketplace.funding import sweeps
from marketplace.funding.models import Pledge, PledgeState
from marketplace.payments.gateway import StripeGateway
from marketplace.payments.models import Payment, PaymentState
from marketplace.projects.models import ProjectState
from tests.conftest import build_app
from tests.factories import ApiTokenFactory, PaymentSetupFactory
from tests.integration.funding_support import (
    AFTER_DEADLINE,
    assert_books_agree_with_stripe,
    buyer,
    listed_project,
    payment_intents,
    pledge_states,
    pledge_via_api,
    project_state,
    tick,
)
from tests.support.workers import pledge_worker, tick_worker

SPAWN = multiprocessing.get_context("spawn")


def buyers_with_saved_cards(count: int) -> list[tuple[str, str]]:
    """(API token, saved card) of ``count`` buyers: pledging needs no call to Stripe."""
    found = []
    for _ in range(count):
        user = buyer()
        setup = PaymentSetupFactory(organisation_id=user.organisation_id, user_id=user.id)
        found.append((ApiTokenFactory(user=user).secret, setup.payment_method_id))
    return found


def assert_sold_exactly(session, project, outcomes) -> None:
    accepted = [tokens for status, _code, tokens in outcomes if status == 201]
    refused = Counter((status, code) for status, code, _tokens in outcomes if status != 201)
    assert set(refused) <= {(409, "insufficient_tokens")}, refused
    fresh = project_state(session, project.id)
    live = session.scalar(
        select(func.coalesce(func.sum(Pledge.tokens), 0)).where(
            Pledge.project_id == project.id, Pledge.state == PledgeState.COMMITTED
        )
    )
    assert fresh.tokens_pledged == fresh.tokens_total == sum(accepted) == live
    assert session.scalar(select(func.count()).select_from(Pledge)) == len(accepted)


@pytest.mark.postgres_only
def test_64_buyers_at_once_never_oversell_on_postgresql(app, session, tmp_path):
    project = listed_project(tokens_total=1500, threshold_tokens=1200)
    settings = app.extensions["settings"]
    # An app of its own with a connection for each of the 64 threads, as a deployment
    # sizes DB_POOL_SIZE to its worker threads.
    wide = build_app(
        settings.database_url, tmp_path, stripe_api_base=settings.stripe_api_base, db_pool_size=64
    )
    buyers = buyers_with_saved_cards(64)
    attempts_each = 40  # 2,560 attempts for 1,500 tokens asked ~7,000 times
    start = threading.Barrier(64)

    def run(n: int) -> list[tuple]:
        client = wide.test_client()
        token, method = buyers[n]
        chance = random.Random(n)
        start.wait()
        results = []
        for _ in range(attempts_each):
            tokens = chance.choice((1, 1, 2, 3, 5))
            response = pledge_via_api(
                client, {"Authorization": f"Bearer {token}"}, project.id, tokens, method
            )
            results.append((response.status_code, response.json.get("code", ""), tokens))
        return results

    with ThreadPoolExecutor(max_workers=64) as pool:
        outcomes = [r for batch in pool.map(run, range(64)) for r in batch]

    wide.extensions["db"].engine.dispose()
    assert len(outcomes) == 2560
    assert_sold_exactly(session, project, outcomes)


def test_8_processes_at_once_never_oversell(app, session, backend, tmp_path):
    project = listed_project(tokens_total=400, threshold_tokens=300)
    buyers = buyers_with_saved_cards(16)
    settings = app.extensions["settings"]
    stripe_base = settings.stripe_api_base
    with ProcessPoolExecutor(max_workers=8, mp_context=SPAWN) as pool:
        futures = [
            pool.submit(
                pledge_worker,
                settings.database_url,
                str(tmp_path / str(n)),
                stripe_base,
                project.id,
                buyers,
                80,
                n,
            )
            for n in range(8)
        ]
        outcomes = [r for future in futures for r in future.result()]

    assert len(outcomes) == 640
    # A "database is locked" error would have been a 500.
    assert {status for status, _code, _tokens in outcomes} <= {201, 409}
    assert_sold_exactly(session, project, outcomes)


def test_two_schedulers_at_once_charge_every_pledge_exactly_once(
    app, client, session, auth_headers, tmp_path
):
    project = listed_project()
    for tokens in (20, 20, 20, 15, 10, 5):
        assert pledge_via_api(client, auth_headers(buyer()), project.id, tokens).status_code == 201
    settings = app.extensions["settings"]
    at = AFTER_DEADLINE.isoformat()

    with ProcessPoolExecutor(max_workers=2, mp_context=SPAWN) as pool:
        runs = [
            pool.submit(
                tick_worker,
                settings.database_url,
                str(tmp_path / str(n)),
                settings.stripe_api_base,
                at,
            )
            for n in range(2)
        ]
        reports = [future.result() for future in runs]
    # ... and once more, afterwards.
    reports.append(
        tick_worker(settings.database_url, str(tmp_path / "again"), settings.stripe_api_base, at)
    )

    assert all(ok for report in reports for _name, ok, _summary in report), reports
    assert project_state(session, project.id).state is ProjectState.FUNDED
    assert pledge_states(session, project.id) == ["paid"] * 6
    intents = payment_intents(app)
    assert len(intents) == 6
    assert sorted(i.amount for i in intents) == sorted(t * 1000 for t in (20, 20, 20, 15, 10, 5))
    assert session.scalar(select(func.count()).select_from(Payment)) == 6
    assert_books_agree_with_stripe(app, session, AFTER_DEADLINE)


class ProcessDied(BaseException):
    """Stands for the process being killed: nothing after it runs."""


class DiesAfterCharging(StripeGateway):
    """The real gateway, in a process that is killed right after Stripe answered."""

    def charge(self, **kwargs):
        self.answer = super().charge(**kwargs)
        raise ProcessDied


def test_a_charge_lost_in_a_crash_is_finished_with_the_same_key(app, client, session, auth_headers):
    """Stripe charged, but the process died before it recorded the answer: the next run,
    once the row is stale, repeats the call with the same key and Stripe answers with
    the first PaymentIntent."""
    project = listed_project()
    pledge_via_api(client, auth_headers(buyer()), project.id, 85)
    settings = app.extensions["settings"]
    dying = DiesAfterCharging(settings.stripe_api_key, settings.stripe_api_base, settings.currency)
    ctx = SweepContext(app.extensions["db"], dying, settings)
    sweeps.close_funding(ctx, AFTER_DEADLINE)
    with pytest.raises(ProcessDied):
        sweeps.charge_pledges(ctx, AFTER_DEADLINE)

    tick(app, AFTER_DEADLINE + timedelta(minutes=1))  # not stale yet: left alone
    session.rollback()
    assert session.scalars(select(Payment)).one().state is PaymentState.CREATED
    tick(app, AFTER_DEADLINE + timedelta(minutes=3))

    session.rollback()
    recorded = session.scalars(select(Payment)).one()
    assert recorded.state is PaymentState.SUCCEEDED
    assert recorded.payment_intent_id == dying.answer.payment_intent_id
    assert len(payment_intents(app)) == 1
    assert pledge_states(session, project.id) == ["paid"]
    assert_books_agree_with_stripe(app, session, AFTER_DEADLINE)
