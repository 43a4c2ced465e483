"""Matchfunding pools (issue 19): a pledge on an eligible project brings the pool's match in
the same transaction, as far as its budget, its cap on the project and the project's tokens
allow; cancelling releases it; under concurrency the pool never commits past its budget."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from marketplace.funding.models import LIVE_STATES, Pledge
from marketplace.pools.models import Pool, PoolProject
from marketplace.pools.services import match_tokens
from tests.factories import ApiTokenFactory, OrganisationFactory, PaymentSetupFactory, UserFactory
from tests.integration.funding_support import (
    buyer,
    listed_project,
    pledge_via_api,
    project_state,
    tick,
)
from tests.integration.test_settlement import (
    CLOSED,
    ENDED,
    STARTED,
    evaluate,
    listed_worked_example,
    onboard_owner,
)
from tests.support.races import at_once

PRICE = 1000  # listed_project: 100 tokens at 10.00 EUR


def funder(name: str = "Rotterdam Jobs Fund"):
    organisation = OrganisationFactory(name=name)  # verified, as the factory makes them
    return UserFactory(role="buyer", organisation=organisation)


def open_pool(client, auth_headers, person, **overrides):
    body = {
        "name": "Rotterdam Jobs Fund",
        "budget_cents": 100_000,
        "match_ratio": "1.0",
        "cap_per_project_cents": 50_000,
        "payment_method": "pm_card_visa",
        **overrides,
    }
    return client.post("/api/v1/pools", json=body, headers=auth_headers(person))


def live_pool_cents(session, pool_id: int) -> int:
    """What the pool's live pledges hold, summed; its running totals (in all and on each
    project) must say the same."""
    session.rollback()
    by_project = dict(
        session.execute(
            select(Pledge.project_id, func.sum(Pledge.amount_cents))
            .where(Pledge.pool_id == pool_id, Pledge.state.in_(LIVE_STATES))
            .group_by(Pledge.project_id)
        ).all()
    )
    kept = dict(
        session.execute(
            select(PoolProject.project_id, PoolProject.committed_cents).where(
                PoolProject.pool_id == pool_id, PoolProject.committed_cents != 0
            )
        ).all()
    )
    assert kept == by_project
    total = sum(by_project.values())
    assert session.scalar(select(Pool.committed_cents).where(Pool.id == pool_id)) == total
    return total


@pytest.mark.parametrize(
    ("tokens", "ratio", "budget", "cap", "left", "expected"),
    [
        (10, "1.0", 100_000, 100_000, 100, 10),  # floor(10 x 1.0)
        (7, "0.5", 100_000, 100_000, 100, 3),  # floor(3.5)
        (10, "1.0", 4_500, 100_000, 100, 4),  # what the budget pays: 4 tokens
        (10, "1.0", 100_000, 2_999, 100, 2),  # the cap on the project
        (10, "2.0", 100_000, 100_000, 5, 5),  # the project's tokens left
        (10, "1.0", 999, 100_000, 100, 0),  # not one token's worth left
    ],
)
def test_a_match_is_the_ratio_as_far_as_budget_cap_and_tokens_allow(
    tokens, ratio, budget, cap, left, expected
):
    assert (
        match_tokens(
            tokens,
            Decimal(ratio),
            price_cents=PRICE,
            budget_left_cents=budget,
            cap_left_cents=cap,
            tokens_left=left,
        )
        == expected
    )


def test_a_pledge_brings_the_pools_match_and_cancelling_it_releases_the_match(
    client, session, auth_headers, clock
):
    project = listed_project()
    fund = funder()
    pool = open_pool(client, auth_headers, fund)
    assert pool.status_code == 201, pool.json
    mine = auth_headers(buyer())

    made = pledge_via_api(client, mine, project.id, 10)

    assert made.status_code == 201, made.json
    matched = made.json["matched"]
    assert (matched["pool_id"], matched["tokens"]) == (pool.json["id"], 10)
    assert project_state(session, project.id).tokens_pledged == 20
    shown = client.get(f"/api/v1/pools/{pool.json['id']}", headers=auth_headers(fund)).json
    assert (shown["committed_cents"], shown["left_cents"]) == (10 * PRICE, 90_000)
    assert shown["projects"][0]["tokens"] == 10
    match = session.get(Pledge, matched["pledge_id"])
    assert (match.organisation_id, match.matched_pledge_id) == (
        fund.organisation_id,
        made.json["id"],
    )

    cancelled = client.post(f"/api/v1/pledges/{made.json['id']}/cancel", headers=mine)

    assert cancelled.status_code == 200, cancelled.json
    assert project_state(session, project.id).tokens_pledged == 0
    assert live_pool_cents(session, pool.json["id"]) == 0
    session.rollback()
    assert session.get(Pledge, matched["pledge_id"]).state.value == "cancelled"


def test_a_withdrawn_project_gives_the_pool_its_money_back(client, session, auth_headers, clock):
    """Released pledges leave the live states: the pool's running totals (in all and on the
    project) lose what its match held, and another project can have it."""
    project = listed_project()
    fund = funder()
    pool = open_pool(client, auth_headers, fund).json
    assert pledge_via_api(client, auth_headers(buyer()), project.id, 10).json["matched"]
    assert live_pool_cents(session, pool["id"]) == 10 * PRICE

    owner = auth_headers(project.created_by)
    withdrawn = client.post(
        f"/api/v1/projects/{project.id}/withdraw", json={"reason": "Stopped"}, headers=owner
    )

    assert withdrawn.status_code == 200, withdrawn.json
    assert live_pool_cents(session, pool["id"]) == 0
    shown = client.get(f"/api/v1/pools/{pool['id']}", headers=auth_headers(fund)).json
    assert shown["committed_cents"] == 0


def test_a_pool_matches_only_what_it_takes_and_never_its_own_pledges(
    client, session, auth_headers, clock
):
    project = listed_project(theme="housing")
    fund = funder()
    assert open_pool(client, auth_headers, fund, themes=["work"]).status_code == 201

    other_theme = pledge_via_api(client, auth_headers(buyer()), project.id, 10)
    own = pledge_via_api(client, auth_headers(fund), project.id, 10)

    assert other_theme.json["matched"] is None and own.json["matched"] is None
    assert project_state(session, project.id).tokens_pledged == 20


def test_only_a_buyer_of_a_verified_organisation_opens_a_pool(client, session, auth_headers):
    unverified = UserFactory(role="buyer", organisation=OrganisationFactory(verified_at=None))
    refused = open_pool(client, auth_headers, unverified)
    assert (refused.status_code, refused.json["code"]) == (403, "organisation_unverified")
    assert open_pool(client, auth_headers, UserFactory(role="entrepreneur")).status_code == 403
    bad = open_pool(client, auth_headers, funder(), match_ratio="0", cap_per_project_cents=5)
    assert bad.status_code == 422 and {"match_ratio", "cap_per_project_cents"} <= set(
        bad.json["errors"]
    )
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Pledge)) == 0


def test_32_buyers_on_4_projects_never_take_a_pool_past_its_budget(
    app, client, session, auth_headers, clock
):
    """Each of 32 buyers pledges 5 tokens, 8 on each of 4 projects, all at once, against one
    pool matching 1:1 with a budget of 16.5 matches (82 tokens): 16 matches of 5 tokens and
    one of what was left (2), the rest none; no project past its tokens."""
    projects = [listed_project() for _ in range(4)]
    fund = funder()
    pool = open_pool(
        client, auth_headers, fund, budget_cents=82 * PRICE, cap_per_project_cents=82 * PRICE
    ).json
    people = []
    for _ in range(32):
        person = buyer()
        setup = PaymentSetupFactory(organisation_id=person.organisation_id, user_id=person.id)
        people.append((ApiTokenFactory(user=person).secret, setup.payment_method_id))
    session.commit()

    def attempt(n: int):
        token, method = people[n]
        answer = pledge_via_api(
            app.test_client(),
            {"Authorization": f"Bearer {token}"},
            projects[n % 4].id,
            5,
            method,
            key=f"pool-race-{n}",
        )
        return answer.status_code, (answer.json.get("matched") or {}).get("tokens", 0)

    answers = at_once(32, attempt)

    assert {status for status, _ in answers} == {201}, answers
    matches = Counter(tokens for _, tokens in answers)
    assert matches == Counter({5: 16, 2: 1, 0: 15}), matches
    assert live_pool_cents(session, pool["id"]) == 82 * PRICE
    for project in projects:
        fresh = project_state(session, project.id)
        pledged = session.scalar(
            select(func.sum(Pledge.tokens)).where(
                Pledge.project_id == project.id, Pledge.state.in_(LIVE_STATES)
            )
        )
        assert fresh.tokens_pledged == pledged <= fresh.tokens_total


def test_a_pooled_project_settled_at_70_percent_pays_the_pool_like_every_buyer(
    client, session, auth_headers, clock
):
    """product.md's worked example (price 2,953; V_verified 70% of V_target; buffer 5%) with
    a pool matching 1:1 and money for exactly 1,000 tokens: buyer A pledges 1,000 (the pool
    adds 1,000), buyer B 400 (nothing left to match). S = 2,400. By hand:
    tokens to share 1,596 (1,680 minted less 84 to the buffer): 1,596 x n / 2,400 =
    665, 665, 266 (no remainder). refund_total 326,012: 326,012 x n / 2,400 =
    135,838.33, 135,838.33, 54,335.33 -> 135,838 + 135,838 + 54,335 = 326,011; the cent
    left goes to the largest remainder, all equal, so to the earliest pledge: A."""
    project, admin = listed_worked_example(session)
    fund = funder()
    pool = open_pool(
        client,
        auth_headers,
        fund,
        budget_cents=1000 * 2953,
        cap_per_project_cents=1000 * 2953,
    ).json
    a, b = auth_headers(buyer()), auth_headers(buyer())
    first = pledge_via_api(client, a, project.id, 1000).json
    assert first["matched"]["tokens"] == 1000
    assert pledge_via_api(client, b, project.id, 400).json["matched"] is None
    onboard_owner(client, auth_headers, project)
    tick(client.application, CLOSED)
    tick(client.application, STARTED)
    tick(client.application, ENDED)
    evaluate(client, auth_headers, project, admin, verified=14)
    tick(client.application, ENDED + timedelta(days=1))

    settled = client.get(
        f"/api/v1/projects/{project.id}/settlement", headers=auth_headers(project.created_by)
    ).json
    assert settled["raised_cents"] == 2400 * 2953 and settled["refund_total_cents"] == 326_012
    assert [
        (s["tokens_paid"], s["tokens_minted"], s["refund_cents"]) for s in settled["buyers"]
    ] == [
        (1000, 665, 135_839),
        (1000, 665, 135_838),
        (400, 266, 54_335),
    ]
    shown = client.get(f"/api/v1/pools/{pool['id']}", headers=auth_headers(fund)).json
    assert (shown["charged_cents"], shown["refunded_cents"]) == (2_953_000, 135_838)
    assert shown["tokens_minted"] == 665
    assert shown["verified_value_cents"] == settled["v_verified_cents"] * 665 // 1680


def test_the_project_page_says_what_a_pledge_brings_and_who_matches_it(
    client, session, auth_headers, web, clock
):
    project = listed_project()
    fund = funder("Zuid Fonds")
    made = open_pool(client, auth_headers, fund, match_ratio="0.5", name="Zuid Fonds")
    assert made.status_code == 201
    person = buyer()
    page = web.as_user(person.email).get(f"/projects/{project.id}").get_data(as_text=True)
    assert "Zuid Fonds matches every token you pledge with 0.5 of its own, up to" in page
    assert "Matched by" not in page

    pledge_via_api(client, auth_headers(person), project.id, 10)

    page = web.as_user(person.email).get(f"/projects/{project.id}").get_data(as_text=True)
    assert "Matched by Zuid Fonds." in page


def test_a_funder_opens_a_pool_on_its_page_and_a_bad_amount_is_named(web, session):
    fund = funder("Zuid Fonds")
    page = web.as_user(fund.email)

    bad = page.submit(
        "/pools",
        {
            "budget": "lots",
            "match_ratio": "1",
            "cap_per_project": "10000",
            "payment_method": "pm_card_visa",
        },
    )
    assert bad.status_code == 422 and "Give an amount in euros" in bad.get_data(as_text=True)
    made = page.submit(
        "/pools",
        {
            "name": "Zuid Fonds",
            "budget": "50,000.00",
            "match_ratio": "0,5",
            "cap_per_project": "10000",
            "themes": "work",
            "payment_method": "pm_card_visa",
        },
    )

    assert made.status_code == 302, made.get_data(as_text=True)[:500]
    shown = page.get(made.headers["Location"]).get_data(as_text=True)
    assert "Zuid Fonds" in shown and "€50,000.00" in shown
    session.rollback()
    [pool] = session.scalars(select(Pool)).all()
    assert (pool.budget_cents, pool.match_ratio, pool.themes) == (
        5_000_000,
        Decimal("0.5"),
        ["work"],
    )
