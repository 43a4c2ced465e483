"""Shared set-up for the funding tests: a listed project, buyers, ticks, Stripe counts."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, date, datetime

from sqlalchemy import select

from marketplace.accounts.models import Role
from marketplace.core.sweeps import sweep_context
from marketplace.funding.models import Pledge
from marketplace.projects.models import Project, ProjectState
from marketplace.reconciliation.checks import reconcile
from marketplace.scheduler import run_sweeps
from tests.factories import OrganisationFactory, ProjectFactory, UserFactory

DEADLINE = date(2026, 12, 1)
START = date(2026, 12, 10)
# Instants in UTC; Amsterdam is UTC+1 in winter.
AFTER_DEADLINE = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)  # 00:00 on 2 December locally
AT_START = datetime(2026, 12, 9, 23, 0, tzinfo=UTC)  # 00:00 on 10 December locally


def listed_project(**overrides) -> Project:
    """A project in funding: 100 tokens at 10.00 EUR, threshold 80."""
    values = {
        "state": ProjectState.FUNDING,
        "budget_cents": 80_000,
        "tokens_total": 100,
        "token_price_cents": 1000,
        "threshold_tokens": 80,
        "funding_deadline": DEADLINE,
        "start_date": START,
        "end_date": date(2027, 12, 10),
    }
    return ProjectFactory(**{**values, **overrides})


def buyer(name: str | None = None):
    organisation = OrganisationFactory(**({"name": name} if name else {}))
    return UserFactory(role=Role.BUYER, organisation=organisation)


def pledge_via_api(client, headers, project_id, tokens, payment_method="pm_card_visa", key=None):
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(
        f"/api/v1/projects/{project_id}/pledges",
        json={"tokens": tokens, "payment_method": payment_method},
        headers={**headers, **extra},
    )


def tick(app, at: datetime):
    reports = run_sweeps(sweep_context(app), at)
    failed = [r for r in reports if not r.ok]
    assert not failed, failed
    return {r.name: r.summary for r in reports}


def payment_intents(app) -> list:
    client = app.extensions["stripe"].client
    return list(client.v1.payment_intents.list(params={"limit": 100}).data)


def refunds(app) -> list:
    client = app.extensions["stripe"].client
    return list(client.v1.refunds.list(params={"limit": 100}).data)


def project_state(session, project_id) -> Project:
    session.rollback()
    return session.get(Project, project_id, populate_existing=True)


def pledge_states(session, project_id) -> list[str]:
    session.rollback()
    return [
        p.state.value
        for p in session.scalars(
            select(Pledge).where(Pledge.project_id == project_id).order_by(Pledge.id)
        )
    ]


def assert_books_agree_with_stripe(app, session, at: datetime) -> None:
    """The ledger balances and agrees with Stripe's objects.

    Each leg debits one account and credits another by the same amount, so every
    entry balances by construction; ``reconcile`` runs ``verify`` (stored balances
    equal the journal's sums, debit-normal equals credit-normal) and compares every
    payment, refund and transfer, and the clearing balance, with Stripe.
    """
    session.rollback()
    run = reconcile(session, app.extensions["stripe"], at)
    session.commit()
    assert run.differences == [], run.differences[:10]


class _Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def visit(url: str) -> tuple[int, str]:
    """GET ``url`` as a browser would, without following a redirect: (status, Location)."""
    opener = urllib.request.build_opener(_Stay)
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, ""
    except urllib.error.HTTPError as redirect:
        return redirect.code, redirect.headers.get("Location", "")
