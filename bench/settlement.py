"""Benchmark: settle 100 and then 1,000 projects of 100 pledges each on PostgreSQL.

For each size it starts from an empty database on a private PostgreSQL server
and a private localstripe, and seeds the projects as they stand on the day
after their end date: valued by the real valuation service (worked example:
budget 60,000.00 EUR, 20 people into work), 100 buyers with a saved card each,
one paid pledge per buyer per project (95% of the tokens; the threshold is
80%), each pledge's PaymentIntent confirmed at localstripe, the escrow holding
what is left after the cost tranche, and an approved evaluation that verified
14 of the 20 people (70% of the value, as product.md's worked example).

Seeding takes shortcuts the product never takes: rows are inserted in bulk,
the PaymentIntents are made by localstripe's bulk route, the money reaches
escrow by one journal entry per project, and the projects' earlier state
history is not written. Nothing measured depends on them.

Measured: the scheduler's settlement sweeps as the scheduler runs them, in
order: ``settle_projects`` (claim, compute, shares, refund rows, serial blocks,
premium entry), ``execute_refunds`` (one Stripe refund and one journal entry
per pledge), ``execute_transfers`` (the premium of each project) and
``finish_settlements``. Afterwards every project must be settled with its
escrow at zero; the bench checks that before it prints.

Aim (issue 6): at least 500 pledges settled per second, scaling linearly from
100 to 1,000 projects.

``--limited N`` (issue 22) settles N refunds (N / 100 projects of 100 pledges)
against the development Stripe holding Stripe's sandbox limits (25 requests a second
over the API and to each endpoint) with the app pacing itself as it does against a
sandbox key: aim, done within 1.10 x N / 25 seconds with at most a handful of 429s,
and the achieved calls a second printed against the limit.

    .venv/bin/python -m bench.settlement [--sizes 100,1000] [--pledges 100] [--limited 2000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import flask_migrate
import stripe
from sqlalchemy import func, insert, select, update

from config import testing_settings
from marketplace import create_app
from marketplace.accounts.models import Organisation, Role, User
from marketplace.core.sweeps import sweep_context
from marketplace.funding.models import Pledge, PledgeState
from marketplace.funding.sweeps import execute_refunds, execute_transfers
from marketplace.ledger.models import AccountKind, LedgerAccount
from marketplace.ledger.services import Leg, get_account, post
from marketplace.payments.models import (
    ConnectedAccount,
    Payment,
    PaymentKind,
    PaymentSetup,
    PaymentState,
    SetupState,
    StripeCustomer,
)
from marketplace.projects import services as projects
from marketplace.projects.models import Project, ProjectState, Theme
from marketplace.settlement.models import Settlement
from marketplace.settlement.sweeps import finish_settlements, settle_projects
from outcomes.catalogue import OutcomeType
from outcomes.commitments import OutcomeCommitment
from outcomes.evaluation import Evaluation, EvaluationResult, EvaluationState
from tests.support.postgres import PostgresServer, create_database, durability, find_bindir
from tests.support.stripe_process import StripeServer
from valuation import EvidenceGrade

AIM_RATE = 500
AIM_LINEARITY = 0.8  # the larger run keeps at least 80% of the smaller run's rate
NO_LOG_IN = "!"
SEEDED_AT = datetime(2026, 11, 1, 9, tzinfo=UTC)
SETTLE_AT = datetime(2027, 12, 12, 9, tzinfo=UTC)  # the day after the end date has passed
OWNERS = 20  # organisations owning the projects (each with a payout account)


def _users(conn, count: int, role: Role, label: str, now: datetime) -> list[tuple[int, int]]:
    """``count`` organisations with one user each: [(organisation id, user id)]."""
    orgs = conn.execute(
        insert(Organisation).returning(Organisation.id),
        [
            {"name": f"{label} {n}", "name_key": f"{label} {n}".lower(), "created_at": now}
            for n in range(count)
        ],
    ).scalars()
    orgs = list(orgs)
    users = conn.execute(
        insert(User).returning(User.id),
        [
            {
                "email": f"{label.lower()}{n}@bench.example",
                "name": f"{label} {n}",
                "role": role,
                "organisation_id": org,
                "password_hash": NO_LOG_IN,
                "created_at": now,
                "email_verified_at": now,
            }
            for n, org in enumerate(orgs)
        ],
    ).scalars()
    return list(zip(orgs, users, strict=True))


def _bulk_intents(base: str, customer: str, method: str, amounts: list[int]) -> list[str]:
    body = json.dumps(
        {"customer": customer, "payment_method": method, "currency": "eur", "amounts": amounts}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - our own localstripe on 127.0.0.1
        base + "/_config/bulk_payment_intents",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310
        return json.load(response)["ids"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _complete_onboarding(url: str) -> None:
    """Visit the onboarding link as the entrepreneur would; it answers with a redirect."""
    try:
        urllib.request.build_opener(_NoRedirect).open(url, timeout=10).close()
    except urllib.error.HTTPError as redirect:
        if redirect.code != 302:
            raise


@dataclass(frozen=True)
class Valued:
    """What ``seed_valued`` made: valued projects and the buyers who will pledge."""

    project_ids: list[int]
    # buyer organisation -> (user id, payment setup id, Stripe customer, payment method)
    cards: dict[int, tuple[int, int, str, str]]
    admin_id: int
    evaluator_id: int
    size: int  # tokens a pledge (together 95% of a project's tokens)
    price: int  # cents a token
    threshold: int


def seed_valued(app, stripe_base: str, n_projects: int, n_pledges: int) -> Valued:
    """Owners with payout accounts, buyers with a saved card each (at localstripe), and
    ``n_projects`` projects valued by the real valuation service."""
    engine = app.extensions["db"].engine
    client = stripe.StripeClient("sk_test_bench", base_addresses={"api": stripe_base})
    now = SEEDED_AT
    with engine.begin() as conn:
        owners = _users(conn, OWNERS, Role.ENTREPRENEUR, "Owner", now)
        buyers = _users(conn, n_pledges, Role.BUYER, "Buyer", now)
        [(_org, admin_id)] = _users(conn, 1, Role.ADMIN, "Panel", now)
        [(_org, evaluator_id)] = _users(conn, 1, Role.EVALUATOR, "Evaluator", now)
        for org, _user in owners:
            account = client.v1.accounts.create(params={"type": "express", "country": "NL"})
            _complete_onboarding(f"{stripe_base}/_config/onboarding/{account.id}")
            conn.execute(
                insert(ConnectedAccount).values(
                    organisation_id=org,
                    account_id=account.id,
                    details_submitted=True,
                    payouts_enabled=True,
                    created_at=now,
                    updated_at=now,
                )
            )
        cards = {}
        for org, user in buyers:
            customer = client.v1.customers.create(params={"name": f"Buyer {org}"})
            method = client.v1.payment_methods.create(
                params={
                    "type": "card",
                    "card": {
                        "number": "4242424242424242",
                        "exp_month": 12,
                        "exp_year": 2034,
                        "cvc": "123",
                    },
                }
            )
            client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
            conn.execute(
                insert(StripeCustomer).values(
                    organisation_id=org, customer_id=customer.id, created_at=now
                )
            )
            setup = conn.execute(
                insert(PaymentSetup)
                .values(
                    organisation_id=org,
                    user_id=user,
                    requested_method=method.id,
                    state=SetupState.SUCCEEDED,
                    setup_intent_id=None,
                    payment_method_id=method.id,
                    brand="visa",
                    last4="4242",
                    created_at=now,
                )
                .returning(PaymentSetup.id)
            ).scalar_one()
            cards[org] = (user, setup, customer.id, method.id)
        emp = conn.execute(
            select(OutcomeType.id).where(OutcomeType.code == "EMP_BIJSTAND_TO_WORK")
        ).scalar_one()
        project_ids = list(
            conn.execute(
                insert(Project).returning(Project.id),
                [
                    {
                        "organisation_id": owners[n % OWNERS][0],
                        "created_by_id": owners[n % OWNERS][1],
                        "title": f"Bench project {n}",
                        "summary": "Twenty people from social assistance into work.",
                        "city": "Rotterdam",
                        "city_key": "rotterdam",
                        "theme": Theme.WORK,
                        "budget_cents": 6_000_000,
                        "premium_rate": Decimal("0.25"),
                        "funding_deadline": date(2026, 12, 1),
                        "start_date": date(2026, 12, 10),
                        "end_date": date(2027, 12, 10),
                        "state": ProjectState.SUBMITTED,
                        "tokens_pledged": 0,
                        "tokens_paid": 0,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(n_projects)
                ],
            ).scalars()
        )
        conn.execute(
            insert(OutcomeCommitment),
            [
                {
                    "project_id": pid,
                    "position": 0,
                    "outcome_type_id": emp,
                    "target_quantity": 20,
                    "evidence_grade": EvidenceGrade.C,
                }
                for pid in project_ids
            ],
        )

    factory = app.extensions["db"].session_factory
    with factory() as session:
        admin = session.get(User, admin_id)
        for pid in project_ids:
            project = session.get(Project, pid)
            projects.value_project(
                session, admin, project, overrides=[], premium_rate=None, now=now
            )
        session.commit()

    with engine.begin() as conn:
        total, price, threshold = conn.execute(
            select(Project.tokens_total, Project.token_price_cents, Project.threshold_tokens).where(
                Project.id == project_ids[0]
            )
        ).one()
    size = total * 95 // 100 // n_pledges
    if size * n_pledges < threshold:
        sys.exit(f"{n_pledges} pledges of {size} tokens do not reach the threshold")
    return Valued(project_ids, cards, admin_id, evaluator_id, size, price, threshold)


def seed(app, stripe_base: str, n_projects: int, n_pledges: int) -> None:
    """Valued projects as on the day after their end: paid pledges, an approved evaluation."""
    valued = seed_valued(app, stripe_base, n_projects, n_pledges)
    project_ids, cards, size, price = valued.project_ids, valued.cards, valued.size, valued.price
    admin_id, evaluator_id, threshold = valued.admin_id, valued.evaluator_id, valued.threshold
    engine = app.extensions["db"].engine
    factory = app.extensions["db"].session_factory
    now = SEEDED_AT
    with engine.begin() as conn:
        paid = size * n_pledges
        conn.execute(
            update(Project)
            .where(Project.id.in_(project_ids))
            .values(
                state=ProjectState.EVALUATING,
                listed_at=now,
                tokens_pledged=paid,
                tokens_paid=paid,
            )
        )
        rows = [
            {
                "project_id": pid,
                "organisation_id": org,
                "user_id": cards[org][0],
                "payment_setup_id": cards[org][1],
                "tokens": size,
                "amount_cents": size * price,
                "state": PledgeState.PAID,
                "created_at": now,
                "updated_at": now,
            }
            for pid in project_ids
            for org in cards
        ]
        pledge_ids = list(conn.execute(insert(Pledge).returning(Pledge.id), rows).scalars())
        # One bulk request per buyer: its PaymentIntent in every project, in project order.
        intents = {
            org: iter(
                _bulk_intents(
                    stripe_base, cards[org][2], cards[org][3], [size * price] * n_projects
                )
            )
            for org in cards
        }
        conn.execute(
            insert(Payment),
            [
                {
                    "pledge_id": pledge_id,
                    "attempt": 1,
                    "kind": PaymentKind.OFF_SESSION,
                    "amount_cents": row["amount_cents"],
                    "payment_method_id": cards[row["organisation_id"]][3],
                    "state": PaymentState.SUCCEEDED,
                    "payment_intent_id": next(intents[row["organisation_id"]]),
                    "created_at": now,
                    "updated_at": now,
                }
                for pledge_id, row in zip(pledge_ids, rows, strict=True)
            ],
        )
        evaluation_ids = list(
            conn.execute(
                insert(Evaluation).returning(Evaluation.id),
                [
                    {
                        "project_id": pid,
                        "evaluator_id": evaluator_id,
                        "state": EvaluationState.APPROVED,
                        "assigned_by_id": admin_id,
                        "assigned_at": now,
                        "submitted_at": now,
                        "approved_by_id": admin_id,
                        "approved_at": now,
                        "return_reason": "",
                    }
                    for pid in project_ids
                ],
            ).scalars()
        )
        commitments = dict(
            conn.execute(
                select(OutcomeCommitment.project_id, OutcomeCommitment.id).where(
                    OutcomeCommitment.project_id.in_(project_ids)
                )
            ).all()
        )
        conn.execute(
            insert(EvaluationResult),
            [
                {
                    "evaluation_id": eid,
                    "commitment_id": commitments[pid],
                    "verified_quantity": 14,
                    "met_grade": EvidenceGrade.C,  # as planned
                    "evidence_note": "Payroll records checked against UWV data.",
                }
                for eid, pid in zip(evaluation_ids, project_ids, strict=True)
            ],
        )

    with factory() as session:
        clearing = get_account(session, AccountKind.STRIPE_CLEARING)
        held = paid * price - threshold * price
        for pid in project_ids:
            escrow = get_account(session, AccountKind.ESCROW, project_id=pid)
            post(
                session,
                reference=f"bench:project:{pid}:escrow",
                kind="charge",
                now=now,
                legs=[Leg(debit=clearing, credit=escrow, amount_cents=held)],
                memo="bench seed: charges less the released cost tranche",
            )
        session.commit()


def run(
    bindir, server: PostgresServer, n_projects: int, n_pledges: int, *, limited: bool = False
) -> dict:
    localstripe = StripeServer().start()
    try:
        name = f"bench_settle_{n_projects}" + ("_limited" if limited else "")
        url = create_database(server.url(), name)
        settings = testing_settings(
            url,
            Path(tempfile.mkdtemp()),
            stripe_api_base=localstripe.url,
            # paced as against a sandbox key (Stripe's figures less the margin), or not at all
            stripe_rate_limit="" if limited else "off",
        )
        app = create_app(settings)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        with app.app_context():
            flask_migrate.upgrade()
        began = time.perf_counter()
        seed(app, localstripe.url, n_projects, n_pledges)
        seeded = time.perf_counter() - began
        if limited:
            localstripe.limit(per_second=SANDBOX_LIMIT, per_endpoint=SANDBOX_LIMIT)
        ctx = sweep_context(app)
        timings = {}
        total_began = time.perf_counter()
        for name, sweep in (
            ("settle_projects", settle_projects),
            ("execute_refunds", execute_refunds),
            ("execute_transfers", execute_transfers),
            ("finish_settlements", finish_settlements),
        ):
            started = time.perf_counter()
            summary = sweep(ctx, SETTLE_AT)
            timings[name] = (time.perf_counter() - started, summary)
        elapsed = time.perf_counter() - total_began
        refused = localstripe.refused() if limited else 0
        check(app, n_projects)
        app.extensions["db"].engine.dispose()
        return {"seconds": elapsed, "seeded": seeded, "timings": timings, "refused": refused}
    finally:
        localstripe.stop()


def check(app, n_projects: int) -> None:
    with app.extensions["db"].session_factory() as session:
        settled = session.scalar(select(func.count()).where(Project.state == ProjectState.SETTLED))
        finished = session.scalar(select(func.count()).where(Settlement.finished_at.is_not(None)))
        left = session.scalar(
            select(func.coalesce(func.sum(LedgerAccount.balance_cents), 0)).where(
                LedgerAccount.kind == AccountKind.ESCROW
            )
        )
    if (settled, finished, left) != (n_projects, n_projects, 0):
        sys.exit(f"not settled: {settled} projects, {finished} settlements, escrow {left}")


SANDBOX_LIMIT = 25


def limited_case(refunds: int) -> None:
    """Settle ``refunds`` pledges against the fake Stripe keeping the sandbox's limits."""
    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL is not installed (make test installs it)")
    server = PostgresServer(bindir, durable=True).start()
    try:
        n_projects = max(1, refunds // 100)
        result = run(bindir, server, n_projects, 100, limited=True)
        calls = n_projects * 100 + n_projects  # a refund a pledge, a premium a project
        ceiling = 1.10 * calls / SANDBOX_LIMIT
        seconds = result["seconds"]
        print(
            f"{n_projects * 100} refunds and {n_projects} transfers against the development "
            f"Stripe limited to {SANDBOX_LIMIT} requests/s (global and per endpoint), the app "
            f"pacing itself to Stripe's sandbox figures less 5%:"
        )
        parts = " / ".join(f"{t:.1f}" for t, _s in result["timings"].values())
        print(f"  {seconds:.1f} s (settle / refunds / transfers / finish: {parts} s)")
        print(
            f"  {calls / seconds:.1f} calls/s achieved = {calls / seconds / SANDBOX_LIMIT:.0%} "
            f"of the limit; {result['refused']} answered 429"
        )
        ok = seconds <= ceiling and result["refused"] <= 5
        print(f"aim: within {ceiling:.0f} s, at most 5 429s -> {'met' if ok else 'MISSED'}")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000", help="project counts, comma-separated")
    parser.add_argument("--pledges", type=int, default=100, help="pledges per project")
    parser.add_argument(
        "--limited",
        type=int,
        default=0,
        metavar="REFUNDS",
        help="only the case against Stripe's sandbox limits, with this many refunds",
    )
    args = parser.parse_args()
    if args.limited:
        limited_case(args.limited)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL is not installed (make test installs it)")
    server = PostgresServer(bindir, durable=True).start()
    try:
        print(
            f"PostgreSQL {bindir.parent.name}, {os.cpu_count()} cores; against the development "
            f"Stripe (localstripe, no rate limits: Stripe allows 25 refunds/s in a sandbox); "
            f"{args.pledges} pledges a project, one Stripe refund each"
        )
        print(durability(server.url()))
        print(
            f"{'projects':>8} {'pledges':>8} {'seconds':>8} {'pledges/s':>10}  "
            "settle / refunds / transfers / finish (s)"
        )
        rates = []
        for n in sizes:
            result = run(bindir, server, n, args.pledges)
            pledges = n * args.pledges
            rate = pledges / result["seconds"]
            rates.append(rate)
            parts = " / ".join(f"{t:.1f}" for t, _s in result["timings"].values())
            print(f"{n:>8} {pledges:>8} {result['seconds']:>8.1f} {rate:>10.0f}  {parts}")
        linear = rates[-1] / rates[0] if len(rates) > 1 else 1.0
        print(
            f"scaling {sizes[0]} -> {sizes[-1]} projects: the rate keeps {linear:.0%} "
            f"(aim: at least {AIM_LINEARITY:.0%})"
        )
        ok = min(rates) >= AIM_RATE and linear >= AIM_LINEARITY
        print(
            f"aim: >= {AIM_RATE} pledges settled/s, linear scaling -> {'met' if ok else 'MISSED'}"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
