"""Funding end to end through the API and the sweeps, against localstripe, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from marketplace.funding.models import Pledge, PledgeStateChange
from marketplace.ledger.models import LedgerAccount
from marketplace.notifications.models import Notification
from marketplace.payments.models import PaymentSetup, Transfer
from marketplace.projects.models import ProjectState
from tests.integration.funding_support import (
    AFTER_DEADLINE,
    AT_START,
    DEADLINE,
    assert_books_agree_with_stripe,
    buyer,
    listed_project,
    payment_intents,
    pledge_states,
    pledge_via_api,
    project_state,
    refunds,
    tick,
    visit,
)


@pytest.fixture
def project(app, clock):
    return listed_project()


def counts(session, project_id):
    session.rollback()
    project = project_state(session, project_id)
    pledges = session.scalar(select(func.count()).select_from(Pledge))
    return project.tokens_pledged, pledges


# ---------------------------------------------------------------- pledging


def test_a_pledge_saves_the_card_and_charges_nothing(client, session, auth_headers, project, app):
    response = pledge_via_api(client, auth_headers(buyer()), project.id, 30)

    assert response.status_code == 201, response.json
    body = response.json
    assert body["tokens"] == 30
    assert body["amount_cents"] == 30_000
    assert body["state"] == "committed"
    assert body["payment_method"].startswith("pm_") and body["payment_method"] != "pm_card_visa"
    assert body["card"] == "Visa •••• 4242"
    assert counts(session, project.id) == (30, 1)
    assert payment_intents(app) == []
    history = session.scalars(select(PledgeStateChange)).all()
    assert [(h.from_state, h.to_state.value) for h in history] == [(None, "committed")]


def test_a_saved_card_is_reused_without_stripe(client, session, auth_headers, project, app):
    headers = auth_headers(buyer())
    first = pledge_via_api(client, headers, project.id, 5).json
    second = pledge_via_api(client, headers, project.id, 7, first["payment_method"])

    assert second.status_code == 201
    assert second.json["payment_method"] == first["payment_method"]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(PaymentSetup)) == 1


def test_the_same_request_ten_times_with_one_key_makes_one_pledge(
    client, session, auth_headers, project
):
    headers = auth_headers(buyer())
    responses = [pledge_via_api(client, headers, project.id, 3, key="order-17") for _ in range(10)]

    assert [r.status_code for r in responses] == [201] * 10
    assert all(r.json == responses[0].json for r in responses)
    assert all(r.headers.get("Idempotent-Replayed") == "true" for r in responses[1:])
    assert counts(session, project.id) == (3, 1)

    other = pledge_via_api(client, headers, project.id, 4, key="order-17")
    assert other.status_code == 409
    assert other.json["code"] == "idempotency_conflict"
    assert counts(session, project.id) == (3, 1)


def test_a_key_belongs_to_its_user(client, session, auth_headers, project):
    first = pledge_via_api(client, auth_headers(buyer()), project.id, 3, key="k")
    second = pledge_via_api(client, auth_headers(buyer()), project.id, 3, key="k")

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json["id"] != second.json["id"]


@pytest.mark.parametrize(
    ("tokens", "field"),
    [
        (0, "tokens"),
        (-3, "tokens"),
        (2.5, "tokens"),
        ("ten", "tokens"),
        (True, "tokens"),
        (None, "tokens"),
    ],
)
def test_bad_token_counts_are_refused_naming_the_field(
    client, session, auth_headers, project, tokens, field
):
    response = pledge_via_api(client, auth_headers(buyer()), project.id, tokens)

    assert response.status_code == 422
    assert field in response.json["errors"]
    assert counts(session, project.id) == (0, 0)


def test_an_unknown_payment_method_is_refused_and_nothing_is_pledged(
    client, session, auth_headers, project
):
    response = pledge_via_api(client, auth_headers(buyer()), project.id, 5, "pm_does_not_exist")

    assert response.status_code == 422
    assert "payment_method" in response.json["errors"]
    assert counts(session, project.id) == (0, 0)


def test_a_card_declined_at_saving_is_402(client, session, auth_headers, project):
    response = pledge_via_api(
        client, auth_headers(buyer()), project.id, 5, "pm_card_visa_chargeDeclined"
    )

    assert response.status_code == 402
    assert response.json["code"] == "payment_method_declined"
    assert counts(session, project.id) == (0, 0)


def test_more_tokens_than_remain_is_409_insufficient_tokens(client, session, auth_headers, project):
    headers = auth_headers(buyer())
    assert pledge_via_api(client, headers, project.id, 95).status_code == 201

    response = pledge_via_api(client, headers, project.id, 6)

    assert response.status_code == 409
    assert response.json["code"] == "insufficient_tokens"
    assert "5" in response.json["detail"]
    assert counts(session, project.id) == (95, 1)


@pytest.mark.parametrize("state", [ProjectState.VALUED, ProjectState.FUNDED, ProjectState.UNFUNDED])
def test_a_project_not_in_funding_refuses_pledges(client, session, auth_headers, state):
    project = listed_project(state=state)
    response = pledge_via_api(client, auth_headers(buyer()), project.id, 5)

    # A valued project is not public: the buyer may not know it exists.
    assert response.status_code == (404 if state is ProjectState.VALUED else 409)
    if state is not ProjectState.VALUED:
        assert response.json["code"] == "funding_closed"
    assert counts(session, project.id) == (0, 0)


def test_funding_closes_at_midnight_after_the_deadline(
    client, session, auth_headers, project, clock
):
    clock.at = AFTER_DEADLINE - timedelta(minutes=1)  # 23:59 on the deadline in Amsterdam
    assert pledge_via_api(client, auth_headers(buyer()), project.id, 1).status_code == 201
    clock.at = AFTER_DEADLINE

    response = pledge_via_api(client, auth_headers(buyer()), project.id, 1)

    assert response.status_code == 409
    assert response.json["code"] == "funding_closed"


def test_only_buyers_pledge(client, auth_headers, project):
    response = pledge_via_api(client, auth_headers(project.created_by), project.id, 1)
    assert response.status_code == 403
    assert (
        client.post(
            f"/api/v1/projects/{project.id}/pledges",
            json={"tokens": 1, "payment_method": "pm_card_visa"},
        ).status_code
        == 401
    )


def test_cancel_while_funding_releases_the_tokens(client, session, auth_headers, project):
    headers = auth_headers(buyer())
    pledge = pledge_via_api(client, headers, project.id, 20).json

    response = client.post(f"/api/v1/pledges/{pledge['id']}/cancel", headers=headers)

    assert response.status_code == 200
    assert response.json["state"] == "cancelled"
    assert counts(session, project.id) == (0, 1)
    again = client.post(f"/api/v1/pledges/{pledge['id']}/cancel", headers=headers)
    assert again.status_code == 409
    assert again.json["code"] == "invalid_transition"


def test_pledges_of_other_buyers_are_not_found(client, auth_headers, project):
    pledge = pledge_via_api(client, auth_headers(buyer()), project.id, 2).json
    stranger = auth_headers(buyer())

    assert (
        client.post(f"/api/v1/pledges/{pledge['id']}/cancel", headers=stranger).status_code == 404
    )
    assert client.get(f"/api/v1/pledges/{pledge['id']}", headers=stranger).status_code == 404
    assert client.get("/api/v1/pledges", headers=stranger).json["total"] == 0


def test_the_buyer_lists_its_own_pledges(client, auth_headers, project):
    headers = auth_headers(buyer())
    for tokens in (1, 2, 3):
        pledge_via_api(client, headers, project.id, tokens)

    page = client.get("/api/v1/pledges?per_page=2", headers=headers).json

    assert page["total"] == 3
    assert [p["tokens"] for p in page["items"]] == [3, 2]


# ---------------------------------------------------------------- closing and charging


def test_threshold_met_charges_every_pledge_once(app, client, session, auth_headers, project):
    for tokens in (40, 30, 15):
        assert pledge_via_api(client, auth_headers(buyer()), project.id, tokens).status_code == 201

    tick(app, AFTER_DEADLINE)
    tick(app, AFTER_DEADLINE + timedelta(minutes=1))

    assert project_state(session, project.id).state is ProjectState.FUNDED
    assert pledge_states(session, project.id) == ["paid"] * 3
    intents = payment_intents(app)
    assert sorted(i.amount for i in intents) == [15_000, 30_000, 40_000]
    assert {i.status for i in intents} == {"succeeded"}
    assert {i.transfer_group for i in intents} == {f"project-{project.id}"}
    assert project_state(session, project.id).tokens_paid == 85
    assert_books_agree_with_stripe(app, session, AFTER_DEADLINE)


def test_threshold_not_met_charges_nothing(app, client, session, auth_headers, project):
    pledge_via_api(client, auth_headers(buyer()), project.id, 50)

    summary = tick(app, AFTER_DEADLINE)

    assert "1 unfunded" in summary["close_funding"]
    assert project_state(session, project.id).state is ProjectState.UNFUNDED
    assert pledge_states(session, project.id) == ["released"]
    assert project_state(session, project.id).tokens_pledged == 0
    assert payment_intents(app) == []
    assert_books_agree_with_stripe(app, session, AFTER_DEADLINE)


def test_sold_out_closes_before_the_deadline(app, client, session, auth_headers, project, clock):
    pledge_via_api(client, auth_headers(buyer()), project.id, 100)

    tick(app, clock.at)

    assert project_state(session, project.id).state is ProjectState.FUNDED
    assert pledge_states(session, project.id) == ["paid"]


def test_a_declined_buyer_pays_on_session_within_grace(app, client, session, auth_headers, project):
    good = auth_headers(buyer())
    pledge_via_api(client, good, project.id, 60)
    late = auth_headers(buyer())
    failing = pledge_via_api(client, late, project.id, 30, "pm_card_chargeCustomerFail").json

    tick(app, AFTER_DEADLINE)

    assert pledge_states(session, project.id) == ["paid", "payment_failed"]
    mine = client.get(f"/api/v1/pledges/{failing['id']}", headers=late).json
    assert mine["state"] == "payment_failed"
    assert mine["grace_until"].startswith("2026-12-04T23:00")

    paid = client.post(
        f"/api/v1/pledges/{failing['id']}/pay",
        headers=late,
        json={"payment_method": "pm_card_visa"},
    )

    assert paid.status_code == 200, paid.json
    assert paid.json["state"] == "paid"
    tick(app, AFTER_DEADLINE + timedelta(days=4))
    tick(app, AT_START)
    project_now = project_state(session, project.id)
    assert project_now.state is ProjectState.RUNNING
    assert project_now.tokens_paid == 90
    assert_books_agree_with_stripe(app, session, AT_START)


def test_declined_and_never_paid_falls_below_threshold_and_refunds_everyone(
    app, client, session, auth_headers, project
):
    pledge_via_api(client, auth_headers(buyer()), project.id, 60)
    pledge_via_api(client, auth_headers(buyer()), project.id, 30, "pm_card_chargeCustomerFail")
    tick(app, AFTER_DEADLINE)
    assert project_state(session, project.id).state is ProjectState.FUNDED

    tick(app, AFTER_DEADLINE + timedelta(hours=71))
    assert project_state(session, project.id).state is ProjectState.FUNDED
    summary = tick(app, AFTER_DEADLINE + timedelta(hours=72))

    assert "1 projects unfunded" in summary["end_grace_periods"]
    assert project_state(session, project.id).state is ProjectState.UNFUNDED
    assert pledge_states(session, project.id) == ["refunded", "cancelled"]
    assert [r.amount for r in refunds(app)] == [60_000]
    assert project_state(session, project.id).tokens_paid == 0
    escrow = session.scalar(
        select(LedgerAccount).where(LedgerAccount.code == f"escrow:project:{project.id}")
    )
    assert escrow.balance_cents == 0
    assert_books_agree_with_stripe(app, session, AFTER_DEADLINE + timedelta(hours=72))


def test_three_d_secure_off_session_is_a_failed_charge_then_paid(
    app, client, session, auth_headers, project
):
    headers = auth_headers(buyer())
    pledge = pledge_via_api(client, headers, project.id, 85, "pm_card_authenticationRequired").json
    tick(app, AFTER_DEADLINE)
    assert pledge_states(session, project.id) == ["payment_failed"]
    assert payment_intents(app)[0].status == "requires_payment_method"

    paid = client.post(
        f"/api/v1/pledges/{pledge['id']}/pay",
        headers=headers,
        json={"payment_method": "pm_card_visa"},
    )

    assert paid.json["state"] == "paid"
    assert_books_agree_with_stripe(app, session, AFTER_DEADLINE)


def test_a_cancelled_pledge_cannot_be_paid(app, client, session, auth_headers, project):
    headers = auth_headers(buyer())
    pledge_via_api(client, auth_headers(buyer()), project.id, 80)
    failing = pledge_via_api(client, headers, project.id, 5, "pm_card_chargeCustomerFail").json
    tick(app, AFTER_DEADLINE)
    tick(app, AFTER_DEADLINE + timedelta(hours=72))
    assert pledge_states(session, project.id) == ["paid", "cancelled"]
    before = len(payment_intents(app))

    response = client.post(
        f"/api/v1/pledges/{failing['id']}/pay",
        headers=headers,
        json={"payment_method": "pm_card_visa"},
    )

    assert response.status_code == 409
    assert response.json["code"] == "invalid_transition"
    assert len(payment_intents(app)) == before
    assert pledge_states(session, project.id) == ["paid", "cancelled"]


def test_a_declined_on_session_payment_is_402_and_the_pledge_waits(
    app, client, session, auth_headers, project
):
    headers = auth_headers(buyer())
    pledge_via_api(client, auth_headers(buyer()), project.id, 80)
    failing = pledge_via_api(client, headers, project.id, 5, "pm_card_chargeCustomerFail").json
    tick(app, AFTER_DEADLINE)

    response = client.post(
        f"/api/v1/pledges/{failing['id']}/pay",
        headers=headers,
        json={"payment_method": "pm_card_chargeCustomerFail"},
    )

    assert response.status_code == 402
    assert pledge_states(session, project.id) == ["paid", "payment_failed"]
    assert_books_agree_with_stripe(app, session, AFTER_DEADLINE)


def test_the_entrepreneur_closes_early_once_the_threshold_is_met(
    app, client, session, auth_headers, project
):
    owner = auth_headers(project.created_by)
    pledge_via_api(client, auth_headers(buyer()), project.id, 50)
    early = client.post(f"/api/v1/projects/{project.id}/close-funding", headers=owner)
    assert early.status_code == 409
    assert early.json["code"] == "threshold_not_met"

    pledge_via_api(client, auth_headers(buyer()), project.id, 30)
    response = client.post(f"/api/v1/projects/{project.id}/close-funding", headers=owner)

    assert response.status_code == 200
    assert response.json["state"] == "funded"
    tick(app, AFTER_DEADLINE - timedelta(days=5))
    assert pledge_states(session, project.id) == ["paid", "paid"]
    # Both buyers and the owner hear that funding closed, once each.
    told = session.scalars(
        select(Notification.organisation_id).where(Notification.kind == "funding_closed")
    ).all()
    buyers = session.scalars(select(Pledge.organisation_id).where(Pledge.project_id == project.id))
    assert sorted(told) == sorted([*buyers, project.organisation_id])


# ---------------------------------------------------------------- start and payouts


def test_the_start_releases_the_cost_tranche_less_the_fee_and_pays_out(
    app, client, session, auth_headers, project
):
    for tokens in (50, 40):
        pledge_via_api(client, auth_headers(buyer()), project.id, tokens)
    tick(app, AFTER_DEADLINE)
    tick(app, AT_START - timedelta(minutes=1))
    assert project_state(session, project.id).state is ProjectState.FUNDED

    summary = tick(app, AT_START)

    assert summary["start_projects"] == "started 1 projects"
    assert "wait for their payout account" in summary["execute_transfers"]
    session.rollback()
    transfer = session.scalars(select(Transfer)).one()
    # C = 80 tokens x 1000 = 80,000; fee 5% = 4,000; released 76,000; escrow keeps 10,000.
    assert (transfer.amount_cents, transfer.fee_cents, transfer.state.value) == (
        76_000,
        4_000,
        "created",
    )

    onboarding = client.post(
        "/api/v1/payouts/account",
        headers=auth_headers(project.created_by),
        json={"return_url": "http://localhost/payouts"},
    )
    assert onboarding.status_code == 200
    assert onboarding.json["payouts_enabled"] is False
    # The user completes onboarding at Stripe, which sends them back to us.
    assert visit(onboarding.json["onboarding_url"]) == (302, "http://localhost/payouts")
    status = client.get("/api/v1/payouts/account", headers=auth_headers(project.created_by))
    assert status.json["payouts_enabled"] is True

    tick(app, AT_START + timedelta(minutes=1))
    session.rollback()
    transfer = session.scalars(select(Transfer)).one()
    assert transfer.state.value == "succeeded"
    stripe_transfer = app.extensions["stripe"].client.v1.transfers.retrieve(transfer.transfer_id)
    assert (stripe_transfer.amount, stripe_transfer.transfer_group) == (
        76_000,
        f"project-{project.id}",
    )
    balances = {a.code: a.balance_cents for a in session.scalars(select(LedgerAccount))}
    assert balances[f"escrow:project:{project.id}"] == 10_000
    assert balances["platform:fees"] == 4_000
    assert balances[f"payable:organisation:{project.organisation_id}"] == 0
    assert_books_agree_with_stripe(app, session, AT_START)


def test_a_start_waits_for_open_grace_periods(app, client, session, auth_headers):
    project = listed_project(start_date=DEADLINE + timedelta(days=1))
    pledge_via_api(client, auth_headers(buyer()), project.id, 80)
    pledge_via_api(client, auth_headers(buyer()), project.id, 5, "pm_card_chargeCustomerFail")

    tick(app, AFTER_DEADLINE)  # 00:00 on the start date: closed, charged, one failed
    tick(app, AFTER_DEADLINE + timedelta(hours=1))

    assert project_state(session, project.id).state is ProjectState.FUNDED
    tick(app, AFTER_DEADLINE + timedelta(hours=72))
    assert pledge_states(session, project.id) == ["paid", "cancelled"]
    assert project_state(session, project.id).state is ProjectState.RUNNING
