"""The funding pages, used as each person would: pledge, cancel, pay, see funding, pay out."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from marketplace.funding.models import Pledge
from marketplace.payments.models import ReconciliationRun
from marketplace.projects.models import ProjectState
from tests.factories import UserFactory
from tests.integration.funding_support import (
    AFTER_DEADLINE,
    listed_project,
    pledge_states,
    tick,
)


def html(response):
    return response.get_data(as_text=True)


@pytest.fixture
def project(app, clock):
    return listed_project(title="Werkplaats Delfshaven")


@pytest.fixture
def buyer_user(web):
    user = UserFactory(email="inkoop@gemeente.example")
    web.login(user.email)
    return user


def pledge_count(session) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(Pledge))


def test_a_buyer_pledges_from_the_project_page(web, session, project, buyer_user):
    page = html(web.client.get(f"/projects/{project.id}"))
    assert "Buy outcomes" in page
    assert "100 tokens remain" in page
    assert "pm_card_visa" in page

    review = web.submit(
        f"/projects/{project.id}",
        {"tokens": "12", "payment_method": "pm_card_visa"},
        action=f"/projects/{project.id}/pledge",
    )
    assert review.status_code == 200
    shown = " ".join(html(review).split())
    assert "12 tokens at €10.00 = €120.00." in shown
    assert "Visa 4242 is saved now and charged €120.00 only if funding reaches" in shown
    assert pledge_count(session) == 0  # nothing is saved before the buyer confirms

    response = web.confirm(
        f"/projects/{project.id}",
        {"tokens": "12", "payment_method": "pm_card_visa"},
        action=f"/projects/{project.id}/pledge",
        follow_redirects=True,
    )

    assert response.status_code == 200
    text = html(response)
    assert "Pledged 12 tokens" in text
    assert "Werkplaats Delfshaven" in text
    assert "Visa •••• 4242" in text
    assert pledge_count(session) == 1


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ("0", "Must be greater than or equal to 1"),
        ("1.5", "Must be a whole number"),
        ("101", "Only 100 tokens remain"),
    ],
)
def test_a_bad_pledge_shows_why_and_pledges_nothing(
    web, session, project, buyer_user, tokens, message
):
    response = web.submit(
        f"/projects/{project.id}",
        {"tokens": tokens, "payment_method": "pm_card_visa"},
        action=f"/projects/{project.id}/pledge",
    )

    assert response.status_code in (409, 422)
    assert message in html(response)
    assert pledge_count(session) == 0


def test_a_declined_card_is_402_on_the_page(web, session, project, buyer_user):
    response = web.confirm(
        f"/projects/{project.id}",
        {"tokens": "3", "payment_method": "pm_card_visa_chargeDeclined"},
        action=f"/projects/{project.id}/pledge",
    )

    assert response.status_code == 402
    assert "declined" in html(response)
    assert pledge_count(session) == 0


def test_the_buyer_cancels_from_the_pledges_page(web, session, project, buyer_user):
    web.confirm(
        f"/projects/{project.id}",
        {"tokens": "5", "payment_method": "pm_card_visa"},
        action=f"/projects/{project.id}/pledge",
    )
    pledge = session.scalars(select(Pledge)).one()

    response = web.confirm(
        "/pledges", {}, action=f"/pledges/{pledge.id}/cancel", follow_redirects=True
    )

    assert "The pledge is cancelled" in html(response)
    assert pledge_states(session, project.id) == ["cancelled"]


def test_the_buyer_pays_a_failed_charge_from_the_pledges_page(
    app, web, session, project, buyer_user, auth_headers, client
):
    other = UserFactory()
    client.post(
        f"/api/v1/projects/{project.id}/pledges",
        json={"tokens": 80, "payment_method": "pm_card_visa"},
        headers=auth_headers(other),
    )
    web.confirm(
        f"/projects/{project.id}",
        {"tokens": "5", "payment_method": "pm_card_chargeCustomerFail"},
        action=f"/projects/{project.id}/pledge",
    )
    tick(app, AFTER_DEADLINE)
    session.rollback()
    mine = session.scalars(
        select(Pledge).where(Pledge.organisation_id == buyer_user.organisation_id)
    ).one()

    page = html(web.client.get("/pledges"))
    assert "payment failed" in page
    assert "Payment needed for Werkplaats Delfshaven" in page
    assert "Pay €50.00 now" in page

    response = web.submit(
        "/pledges",
        {"payment_method": "pm_card_visa"},
        action=f"/pledges/{mine.id}/pay",
        follow_redirects=True,
    )

    assert "Paid. Thank you" in html(response)
    assert pledge_states(session, project.id) == ["paid", "paid"]


def test_the_entrepreneur_sees_who_pledged(web, session, project, auth_headers, client):
    client.post(
        f"/api/v1/projects/{project.id}/pledges",
        json={"tokens": 7, "payment_method": "pm_card_visa"},
        headers=auth_headers(UserFactory(organisation__name="Havenbedrijf")),
    )
    owner = project.created_by
    owner.email = "samira@buurtwerk.example"
    session.commit()
    web.login(owner.email)

    page = html(web.client.get(f"/projects/{project.id}/funding"))

    assert "Havenbedrijf" in page
    assert "€70.00" in page
    assert "Set up your payout account" in page


def test_a_buyer_cannot_see_another_projects_funding(web, project, buyer_user):
    assert web.client.get(f"/projects/{project.id}/funding").status_code == 403


def test_payout_set_up_sends_the_entrepreneur_to_stripe(web, session, project):
    owner = project.created_by
    web.login(owner.email)
    assert "Set up payouts with Stripe" in html(web.client.get("/payouts"))

    response = web.submit("/payouts", {}, action="/payouts")

    assert response.status_code == 303
    assert "/_config/onboarding/acct_" in response.headers["Location"]


def test_the_owner_closes_funding_early_from_the_project_page(
    web, session, project, auth_headers, client
):
    client.post(
        f"/api/v1/projects/{project.id}/pledges",
        json={"tokens": 85, "payment_method": "pm_card_visa"},
        headers=auth_headers(UserFactory()),
    )
    web.login(project.created_by.email)
    assert "Close funding now" in html(web.client.get(f"/projects/{project.id}"))

    response = web.confirm(
        f"/projects/{project.id}",
        {},
        action=f"/projects/{project.id}/close-funding",
        follow_redirects=True,
    )

    assert "Funding is closed" in html(response)
    session.rollback()
    assert project.state is ProjectState.FUNDED


def test_the_admin_sees_the_books_and_reconciles(app, web, session, project, auth_headers, client):
    client.post(
        f"/api/v1/projects/{project.id}/pledges",
        json={"tokens": 85, "payment_method": "pm_card_visa"},
        headers=auth_headers(UserFactory()),
    )
    tick(app, AFTER_DEADLINE)
    admin = UserFactory(admin=True)
    web.login(admin.email)

    page = html(web.client.get("/admin/ledger"))
    assert f"escrow:project:{project.id}" in page
    assert "€850.00" in page

    response = web.submit(
        "/admin/ledger", {}, action="/admin/ledger/reconcile", follow_redirects=True
    )
    assert "the books agree with Stripe" in html(response)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ReconciliationRun)) >= 1


def test_only_admins_see_the_ledger(web, buyer_user):
    response = web.client.get("/admin/ledger")
    assert response.status_code == 403
    assert "escrow:" not in html(response)


def test_the_pledge_form_sent_twice_makes_one_pledge(web, session, project, buyer_user):
    """A double click (or a reload of the answer) sends the same form again: the form's
    key makes it one pledge, and the second answer shows that pledge."""
    import re

    from tests.conftest import csrf_from

    page = html(web.client.get(f"/projects/{project.id}"))
    form_key = re.search(r'name="form_key" value="([^"]+)"', page).group(1)
    data = {
        "tokens": "7",
        "payment_method": "pm_card_visa",
        "form_key": form_key,
        "csrf_token": csrf_from(page),
        "confirmed": "yes",  # the review step's button, clicked twice
    }

    first = web.client.post(f"/projects/{project.id}/pledge", data=data)
    second = web.client.post(f"/projects/{project.id}/pledge", data=data)

    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert pledge_count(session) == 1
    again = web.client.post(f"/projects/{project.id}/pledge", data={**data, "tokens": "8"})
    assert again.status_code == 409  # the same form with other figures: refused
    assert pledge_count(session) == 1
    fresh = html(web.client.get(f"/projects/{project.id}"))
    assert form_key not in fresh  # each page gives a new key for the next pledge


def test_withdrawing_a_project_in_funding_releases_its_pledges_and_tells_the_buyers(
    app, web, session, project, buyer_user, client, auth_headers
):
    from marketplace.notifications.models import Notification
    from tests.integration.funding_support import buyer, pledge_via_api

    headers = auth_headers(buyer())
    pledge = pledge_via_api(client, headers, project.id, 30).json
    owner = auth_headers(project.created_by)

    withdrawn = client.post(
        f"/api/v1/projects/{project.id}/withdraw", headers=owner, json={"reason": "No venue."}
    )

    assert withdrawn.status_code == 200, withdrawn.json
    assert pledge_states(session, project.id) == ["released"]
    session.rollback()
    assert session.get(type(project), project.id).tokens_pledged == 0
    told = session.scalars(
        select(Notification).where(Notification.kind == "project_withdrawn")
    ).all()
    assert [n.organisation_id for n in told] == [session.get(Pledge, pledge["id"]).organisation_id]
    cancel = client.post(f"/api/v1/pledges/{pledge['id']}/cancel", headers=headers)
    assert cancel.status_code == 409  # nothing left to cancel: it was released
    assert cancel.json["code"] == "invalid_transition"
