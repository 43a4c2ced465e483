"""A year of the demo's past, so every page has something real to show on the first run:
a project that was funded, ran, was evaluated and settled, and whose tokens were retired.

It is lived, not written: the application's clock is set back to each moment in turn, the
demo people act through the public JSON API (with API tokens made for the purpose and
revoked at the end), and the scheduler's sweeps run as of each date, against the fake
Stripe that ``make run`` starts. With a real Stripe account nothing is done: onboarding a
payout account needs a person there.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.accounts.services import issue_api_token, revoke_api_token
from marketplace.core.sweeps import sweep_context
from marketplace.projects import services as projects
from marketplace.projects.models import Project, Theme
from marketplace.scheduler import run_sweeps
from valuation import EvidenceGrade

TITLE = "Leerwerkplaats Feijenoord"
# (code, target, grade, verified)
OUTCOMES = (("EMP_BIJSTAND_TO_WORK", 12, "C", 9), ("YOUTH_NEET_TO_EET", 8, "C", 8))
SUMMARY = (
    "A training kitchen where people on social assistance cooked for the neighbourhood's "
    "community centres and moved into paid work in hospitality. Finished and verified."
)
# Who pledged (shares of the threshold, the second also half of what is left above it),
# and how many of its tokens the bank retired.
BUYERS = ("buyer@som.example", "municipality@som.example")
RETIRED = 120


class DemoHistoryFailed(RuntimeError):
    """A step of the demo's past was refused: the answer is in the message."""


def is_fake_stripe(app: Flask) -> bool:
    base = app.extensions["settings"].stripe_api_base or ""
    return base.startswith(("http://127.0.0.1", "http://localhost"))


@contextmanager
def _at(app: Flask, instant: datetime) -> Iterator[None]:
    """The application's clock stands at ``instant`` while the block runs."""
    before = app.extensions["clock"]
    app.extensions["clock"] = lambda: instant
    try:
        yield
    finally:
        app.extensions["clock"] = before


def _checked(answer, *expected: int) -> dict[str, Any]:
    if answer.status_code not in expected:
        raise DemoHistoryFailed(
            f"{answer.request.path}: {answer.status_code} {answer.get_data(True)}"
        )
    return answer.get_json(silent=True) or {}


class _Person:
    """A demo person acting through the API with a token of their own."""

    def __init__(self, app: Flask, client: FlaskClient, email: str, at: datetime) -> None:
        db = app.extensions["db"]
        with db.transaction() as session:
            user = session.scalars(select(User).where(User.email == email)).one()
            token, self.secret = issue_api_token(session, user, "demo history", now=at)
            self.user_id, self.token_id = user.id, token.id
        self.app, self.client = app, client

    def call(self, method: str, path: str, *expected: int, **kwargs) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.secret}", **kwargs.pop("headers", {})}
        return _checked(self.client.open(path, method=method, headers=headers, **kwargs), *expected)

    def done(self, at: datetime) -> None:
        with self.app.extensions["db"].transaction() as session:
            revoke_api_token(session, session.get_one(User, self.user_id), self.token_id, now=at)


def _morning(day: date) -> datetime:
    return datetime.combine(day, time(9), UTC)


def load_demo_history(app: Flask, today: date) -> bool:
    """Live the settled demo project's year, ending a month before ``today``. False when
    it is there already or Stripe is not the local fake."""
    db = app.extensions["db"]
    with db.transaction() as session:
        if session.scalar(select(Project.id).where(Project.title == TITLE)) is not None:
            return False
    if not is_fake_stripe(app):
        return False
    deadline = today - timedelta(days=400)
    start, end = deadline + timedelta(days=14), deadline + timedelta(days=14 + 350)
    opened = _morning(deadline - timedelta(days=30))
    client = app.test_client()

    with db.transaction() as session:
        owner = session.scalars(select(User).where(User.email == "entrepreneur@som.example")).one()
        admin = session.scalars(select(User).where(User.email == "admin@som.example")).one()
        project = projects.create_draft(
            session,
            owner,
            projects.ProjectInput(
                title=TITLE,
                summary=SUMMARY,
                city="Rotterdam",
                theme=Theme.WORK,
                budget_cents=52_000_00,
                funding_deadline=deadline,
                start_date=start,
                end_date=end,
                outcomes=[
                    projects.CommitmentInput(code, target, EvidenceGrade(grade))
                    for code, target, grade, _verified in OUTCOMES
                ],
            ),
            now=opened,
            today=opened.date(),
        )
        projects.submit(session, owner, project, now=opened, today=opened.date())
        projects.value_project(session, admin, project, overrides=[], premium_rate=None, now=opened)
        projects.list_for_funding(session, admin, project, now=opened, today=opened.date())
        project_id = project.id
        outcome_ids = [o.id for o in project.outcomes]
        threshold, total = project.threshold_tokens or 0, project.tokens_total or 0
    first = threshold // 2
    pledges = zip(BUYERS, (first, threshold - first + (total - threshold) // 2), strict=True)

    people: list[_Person] = []
    with _at(app, opened + timedelta(days=2)):
        for email, tokens in pledges:
            buyer = _Person(app, client, email, opened)
            people.append(buyer)
            buyer.call(
                "POST",
                f"/api/v1/projects/{project_id}/pledges",
                201,
                json={"tokens": tokens, "payment_method": "pm_card_visa"},
            )
        entrepreneur = _Person(app, client, "entrepreneur@som.example", opened)
        people.append(entrepreneur)
        link = entrepreneur.call(
            "POST", "/api/v1/payouts/account", 200, 201, json={"return_url": "http://localhost/"}
        )["onboarding_url"]
        _open(link)  # the fake Stripe's onboarding page, as the owner's browser would
        entrepreneur.call("GET", "/api/v1/payouts/account", 200)

    context = sweep_context(app)
    for day in (deadline + timedelta(days=1), start, end):
        run_sweeps(context, _morning(day))

    evaluated = _morning(end + timedelta(days=10))
    with _at(app, evaluated):
        panel = _Person(app, client, "admin@som.example", evaluated)
        evaluator = _Person(app, client, "evaluator@som.example", evaluated)
        people += [panel, evaluator]
        evaluation = panel.call(
            "POST",
            f"/api/v1/projects/{project_id}/evaluator",
            200,
            json={"evaluator_id": evaluator.user_id},
        )
        evaluator.call(
            "POST",
            f"/api/v1/evaluations/{evaluation['id']}/declaration",
            200,
            json={"text": "Maasstad Impact Evaluatie has no ties to this project or its buyers."},
        )
        evaluator.call(
            "PUT",
            f"/api/v1/evaluations/{evaluation['id']}/results",
            200,
            json={
                "results": [
                    {
                        "outcome_id": outcome_id,
                        "verified_quantity": verified,
                        "evidence_note": "Payroll and enrolment records checked with UWV.",
                    }
                    for outcome_id, (_code, _target, _grade, verified) in zip(
                        outcome_ids, OUTCOMES, strict=True
                    )
                ]
            },
        )
        evaluator.call("POST", f"/api/v1/evaluations/{evaluation['id']}/submit", 200)
        panel.call("POST", f"/api/v1/evaluations/{evaluation['id']}/approve", 200)

    for day in (end + timedelta(days=11), end + timedelta(days=12)):
        run_sweeps(context, _morning(day))

    retired = _morning(end + timedelta(days=20))
    with _at(app, retired):
        bank = people[0]
        bank.call(
            "POST",
            "/api/v1/retirements",
            201,
            headers={"Idempotency-Key": f"demo-history-{project_id}"},
            json={
                "project_id": project_id,
                "quantity": min(RETIRED, first),
                "beneficiary": "Havenstad Bank, annual report 2026",
                "purpose": "csr_voluntary",
                "claim": "contribution",
            },
        )
    for person in people:
        person.done(retired)
    return True


def _open(url: str) -> None:
    """GET a page of the fake Stripe without following its redirect (to the app)."""

    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_args, **_kwargs):
            return None

    opener = urllib.request.build_opener(Stay)
    try:
        opener.open(url, timeout=10).close()
    except urllib.error.HTTPError as answer:
        if answer.code >= 400:
            raise DemoHistoryFailed(f"onboarding page: {answer.code}") from None
