"""Organisations verified by an administrator (product.md "People and roles"): until then
an organisation submits no project and pledges at most UNVERIFIED_PLEDGE_LIMIT_CENTS in
all (1,000,000 cents), refused before anything reaches Stripe."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from marketplace.accounts.models import Organisation, Role
from marketplace.audit.models import AuditEvent
from marketplace.funding.models import Pledge
from tests.factories import OrganisationFactory, ProjectFactory, UserFactory
from tests.integration.funding_support import listed_project, pledge_via_api

LEGAL = {
    "legal_name": "Buurtwerk Delfshaven B.V.",
    "registry_id": "12345678",
    "address": "Schiedamseweg 1, 3026 AA Rotterdam",
}


def unverified(role: Role):
    organisation = OrganisationFactory(verified_at=None)
    return UserFactory(role=role, organisation=organisation, is_owner=True)


def setup_intents(app) -> int:
    client = app.extensions["stripe"].client
    return len(client.v1.setup_intents.list(params={"limit": 100}).data)


def test_an_unverified_organisation_submits_once_an_admin_verified_its_legal_details(
    client, session, auth_headers
):
    owner = unverified(Role.ENTREPRENEUR)
    admin = UserFactory(role=Role.ADMIN)
    draft = ProjectFactory(organisation=owner.organisation, created_by=owner)
    organisation_id = owner.organisation_id
    session.commit()
    mine, panel = auth_headers(owner), auth_headers(admin)

    refused = client.post(f"/api/v1/projects/{draft.id}/submit", headers=mine)
    assert refused.status_code == 403 and refused.json["code"] == "organisation_unverified"
    bare = OrganisationFactory(verified_at=None)
    missing = client.post(f"/api/v1/organisations/{bare.id}/verify", headers=panel)
    assert missing.status_code == 409 and missing.json["code"] == "legal_details_missing"

    path = f"/api/v1/organisations/{organisation_id}"
    bad = client.put(path, headers=mine, json={**LEGAL, "registry_id": "1234"})
    assert bad.status_code == 422 and "registry_id" in bad.json["errors"]
    other = OrganisationFactory()
    assert (
        client.put(f"/api/v1/organisations/{other.id}", headers=mine, json=LEGAL).status_code == 404
    )
    saved = client.put(path, headers=mine, json=LEGAL)
    assert saved.status_code == 200 and saved.json["verified"] is False
    assert client.post(f"{path}/verify", headers=mine).status_code == 403
    verified = client.post(f"{path}/verify", headers=panel)
    assert verified.status_code == 200 and verified.json["verified"] is True
    again = client.post(f"{path}/verify", headers=panel)
    assert again.json["verified_at"] == verified.json["verified_at"]  # once
    assert client.post(f"/api/v1/projects/{draft.id}/submit", headers=mine).status_code == 200

    renamed = client.put(path, headers=mine, json={**LEGAL, "legal_name": "Buurtwerk Holding B.V."})
    assert renamed.json["verified"] is False  # what was verified changed
    session.rollback()
    assert session.scalars(
        select(AuditEvent.action).where(AuditEvent.subject == f"organisation:{organisation_id}")
    ).all() == ["organisation verified"]
    page = client.get(f"/organisations/{organisation_id}").get_data(as_text=True)
    assert "Not verified yet" in page


def test_an_unverified_buyer_over_the_limit_is_403_with_nothing_saved_or_at_stripe(
    app, client, session, auth_headers
):
    buyer = unverified(Role.BUYER)
    project = listed_project(tokens_total=2000, token_price_cents=1000)  # 10.00 EUR a token
    session.commit()
    headers, project_id = auth_headers(buyer), project.id
    session.rollback()
    intents_before = setup_intents(app)

    over = pledge_via_api(client, headers, project_id, 1001)  # 10,010.00 EUR
    assert over.status_code == 403 and over.json["code"] == "organisation_unverified"
    assert "10,000.00" in over.json["detail"].replace("EUR ", "")
    assert setup_intents(app) == intents_before  # nothing at Stripe
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Pledge)) == 0

    assert pledge_via_api(client, headers, project_id, 600).status_code == 201
    crossing = pledge_via_api(client, headers, project_id, 401)  # 6,000 + 4,010 > 10,000
    assert crossing.status_code == 403
    assert pledge_via_api(client, headers, project_id, 400).status_code == 201  # exactly
    session.rollback()
    assert session.scalar(select(func.sum(Pledge.amount_cents))) == 1_000_000


def test_two_pledges_at_once_never_pass_the_limit_together(app, client, session, auth_headers):
    buyer = unverified(Role.BUYER)
    project = listed_project(tokens_total=2000, token_price_cents=1000)
    session.commit()
    headers, project_id = auth_headers(buyer), project.id
    assert (
        pledge_via_api(client, headers, project_id, 1, key="card").status_code == 201
    )  # card saved
    session.rollback()
    barrier = threading.Barrier(2, timeout=30)
    statuses: list[int] = []

    def pledge(n: int) -> None:
        mine = app.test_client()
        barrier.wait()
        statuses.append(pledge_via_api(mine, headers, project_id, 600, key=f"twin-{n}").status_code)

    threads = [threading.Thread(target=pledge, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201, 403]
    session.rollback()
    assert session.scalar(select(func.sum(Pledge.amount_cents))) == 601_000


def test_the_public_page_shows_the_badge_and_an_admin_verifies_from_it(web, session):
    organisation = OrganisationFactory(
        verified_at=None, legal_name="Havenstad Bank N.V.", registry_id="24412345"
    )
    admin = UserFactory(role=Role.ADMIN)
    session.commit()
    public = web.get(f"/organisations/{organisation.id}").get_data(as_text=True)
    assert "Not verified yet" in public and "Verify:" not in public
    browser = web.as_user(admin.email)
    done = browser.submit(
        f"/organisations/{organisation.id}",
        {},
        action=f"/organisations/{organisation.id}/verify",
        follow_redirects=True,
    )
    assert "The organisation is verified." in done.get_data(as_text=True)
    session.rollback()
    assert session.get(Organisation, organisation.id).verified_at is not None
    assert session.scalars(
        select(AuditEvent.actor).where(AuditEvent.subject == f"organisation:{organisation.id}")
    ).all() == [admin.email]
    dutch = web.get(f"/organisations/{organisation.id}", headers={"Accept-Language": "nl"})
    assert "geverifieerd" in dutch.get_data(as_text=True)
