"""A person's own account, as they use it: the address confirmed by an e-mailed link
before they submit or pledge, a forgotten password reset by a single-use link within
an hour, name, address and password changed (the other sessions end), e-mail choices
per kind of notice, and colleagues invited for 7 days and removed by the owner.

E-mail goes to a real SMTP server on 127.0.0.1 (aiosmtpd); links are read from it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select

from marketplace.accounts.models import AccountLink, Role, User
from marketplace.audit.models import AuditEvent
from marketplace.notifications.models import Notification
from marketplace.notifications.services import recipients
from tests.conftest import csrf_from
from tests.factories import DEFAULT_PASSWORD, OrganisationFactory, ProjectFactory, UserFactory
from tests.support.mail import inbox, letters_to, link_to, smtp  # noqa: F401 - fixtures

NEW_PASSWORD = "a brand new sentence for me"


def sign_in(client, email: str, password: str):
    """The log-in form posted from a browser of its own (``web.login`` is the fixture's)."""
    page = client.get("/login").get_data(as_text=True)
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_from(page)}
    )


def register(web, email="ana@buurtwerk.example", role="entrepreneur"):
    return web.submit(
        "/register",
        {
            "role": role,
            "name": "Ana Pereira",
            "organisation": "Buurtwerk Delfshaven",
            "email": email,
            "password": DEFAULT_PASSWORD,
        },
    )


def confirm(web, path: str):
    """Open an e-mailed link and press its button, as the person does."""
    page = web.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    return web.submit(path, {})


def test_a_new_account_confirms_its_address_before_it_submits(web, session, inbox):
    registered = register(web)
    assert registered.status_code == 302
    user = session.scalars(select(User).where(User.email == "ana@buurtwerk.example")).one()
    assert user.email_verified_at is None and user.is_owner
    letter = letters_to(inbox, "ana@buurtwerk.example")[-1]
    assert letter["Subject"] == "Confirm your e-mail address"
    path = link_to(inbox, "ana@buurtwerk.example")
    assert path.startswith("/account/verify/lnk_")
    # the secret is in the e-mail only: the table keeps its digest
    stored = session.scalars(select(AccountLink)).one()
    assert path.rsplit("/", 1)[1] not in (stored.token_hash, stored.email)

    dashboard = web.get("/dashboard").get_data(as_text=True)
    assert "Confirm your e-mail address: open the link we sent to ana@buurtwerk.example" in (
        dashboard
    )
    draft = ProjectFactory(created_by=user, organisation=user.organisation)
    session.commit()
    refused = web.submit(f"/projects/{draft.id}", {}, action=f"/projects/{draft.id}/submit")
    assert refused.status_code == 403
    assert "Confirm your e-mail address first" in refused.get_data(as_text=True)

    # a mail scanner's GET spends nothing; the person's click does
    assert web.get(path).status_code == 200
    done = web.submit(path, {})
    assert done.status_code == 302
    session.rollback()
    assert session.get(User, user.id).email_verified_at is not None
    assert "Confirm your e-mail address:" not in web.get("/dashboard").get_data(as_text=True)
    again = web.get(path)
    assert again.status_code == 410
    assert "This link has expired or was used already" in again.get_data(as_text=True)


def test_an_unconfirmed_buyer_may_not_pledge_through_the_api_either(client, session, inbox):
    answer = client.post(
        "/api/v1/auth/register",
        json={
            "email": "finance@havenstad.example",
            "password": DEFAULT_PASSWORD,
            "name": "Joost de Vries",
            "role": "buyer",
            "organisation": "Havenstad Bank",
        },
    )
    assert answer.status_code == 201 and answer.json["email_verified"] is False
    assert link_to(inbox, "finance@havenstad.example").startswith("/account/verify/")
    token = client.post(
        "/api/v1/auth/tokens",
        json={"email": "finance@havenstad.example", "password": DEFAULT_PASSWORD},
    ).json["token"]
    project = ProjectFactory()
    session.commit()

    refused = client.post(
        f"/api/v1/projects/{project.id}/pledges",
        headers={"Authorization": f"Bearer {token}"},
        json={"tokens": 10, "payment_method": "pm_card_visa"},
    )

    assert refused.status_code == 403
    assert refused.json["code"] == "email_unverified"
    assert refused.json["detail"] == (
        "Confirm your e-mail address first: open the link we sent to finance@havenstad.example."
    )


def test_asking_for_the_link_again_waits_a_minute_and_spends_the_first(web, session, inbox, clock):
    register(web)
    first = link_to(inbox, "ana@buurtwerk.example")

    too_soon = web.submit("/dashboard", {}, action="/account/verify")
    assert too_soon.status_code == 303 and int(too_soon.headers["Retry-After"]) <= 60
    assert len(letters_to(inbox, "ana@buurtwerk.example")) == 1
    clock.advance(minutes=1)
    web.submit("/dashboard", {}, action="/account/verify")
    second = link_to(inbox, "ana@buurtwerk.example")

    assert second != first
    assert web.get(first).status_code == 410
    assert confirm(web, second).status_code == 302


def test_a_forgotten_password_is_reset_once_within_the_hour(web, session, inbox, clock, app):
    user = UserFactory(email="joost@havenstad.example")
    session.commit()
    elsewhere = web.as_user("joost@havenstad.example")
    assert elsewhere.get("/account").status_code == 200

    for address in ("joost@havenstad.example", "nobody@havenstad.example"):
        asked = web.submit("/password/forgot", {"email": address})
        assert asked.status_code == 200
        # the same words whether or not the address has an account
        assert f"If {address} belongs to an account" in asked.get_data(as_text=True)
    assert letters_to(inbox, "nobody@havenstad.example") == []
    path = link_to(inbox, "joost@havenstad.example")
    assert path.startswith("/password/reset/")

    weak = web.submit(path, {"password": "short"})
    assert weak.status_code == 422
    assert "Password" in weak.get_data(as_text=True)
    done = web.submit(path, {"password": NEW_PASSWORD})
    assert done.status_code == 302
    assert web.get(path).status_code == 410  # once
    assert elsewhere.get("/account").status_code == 302  # the other session ended
    fresh = web.client.application.test_client()
    assert sign_in(fresh, "joost@havenstad.example", NEW_PASSWORD).status_code == 302
    events = session.scalars(select(AuditEvent.action).where(AuditEvent.kind == "account")).all()
    assert events == ["password reset by e-mail"]

    clock.advance(minutes=2)
    fresh.post(
        "/password/forgot",
        data={
            "email": "joost@havenstad.example",
            "csrf_token": csrf_from(fresh.get("/password/forgot").get_data(as_text=True)),
        },
    )
    late = link_to(inbox, "joost@havenstad.example")
    clock.advance(hours=1)
    assert web.client.application.test_client().get(late).status_code == 410
    assert session.get(User, user.id) is not None


def test_name_password_and_address_change_from_the_account_page(web, session, inbox, clock):
    user = UserFactory(email="ana@buurtwerk.example", name="Ana")
    session.commit()
    web.login("ana@buurtwerk.example")
    elsewhere = web.as_user("ana@buurtwerk.example")

    assert (
        web.submit("/account", {"name": "  Ana   Pereira "}, action="/account/name").status_code
        == 303
    )
    refused = web.submit("/account", {"name": "\x00"}, action="/account/name")
    assert refused.status_code == 422 and "Give your name" in refused.get_data(as_text=True)

    wrong = web.submit(
        "/account",
        {"current_password": "not it at all", "password": NEW_PASSWORD},
        action="/account/password",
    )
    assert wrong.status_code == 422
    assert "This is not your current password." in wrong.get_data(as_text=True)
    changed = web.submit(
        "/account",
        {"current_password": DEFAULT_PASSWORD, "password": NEW_PASSWORD},
        action="/account/password",
    )
    assert changed.status_code == 303
    assert web.get("/account").status_code == 200  # this session goes on
    assert elsewhere.get("/account").status_code == 302  # the other one ended

    UserFactory(email="taken@buurtwerk.example")
    session.commit()
    taken = web.submit(
        "/account",
        {"email": "taken@buurtwerk.example", "current_password": NEW_PASSWORD},
        action="/account/email",
    )
    assert taken.status_code == 409
    asked = web.submit(
        "/account",
        {"email": "Ana.Pereira@Buurtwerk.example", "current_password": NEW_PASSWORD},
        action="/account/email",
    )
    assert asked.status_code == 303
    session.rollback()
    assert session.get(User, user.id).email == "ana@buurtwerk.example"  # until opened
    path = link_to(inbox, "ana.pereira@buurtwerk.example")
    assert "Make ana.pereira@buurtwerk.example the address" in web.get(path).get_data(as_text=True)
    opened = web.submit(path, {})
    assert opened.status_code == 302, opened.get_data(as_text=True)
    session.rollback()
    stored = session.get(User, user.id)
    assert (stored.name, stored.email) == ("Ana Pereira", "ana.pereira@buurtwerk.example")
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.kind == "account").order_by(AuditEvent.id)
    ).all()
    assert actions == ["password changed", "e-mail address changed"]


def test_a_link_opened_twice_at_once_acts_once(app, session, inbox):
    from marketplace.accounts import profile
    from marketplace.accounts.models import LinkPurpose

    user = UserFactory(email_verified_at=None)
    session.commit()
    link, secret = profile.issue_link(
        session, LinkPurpose.VERIFY_EMAIL, user.email, now=user.created_at, user=user
    )
    session.commit()
    outcomes: list[str] = []

    def open_it():
        with app.extensions["db"].transaction() as other:
            try:
                profile.verify_email(other, secret, now=user.created_at)
                outcomes.append("verified")
            except profile.LinkClosed:
                outcomes.append("closed")

    threads = [threading.Thread(target=open_it) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["closed", "verified"]
    session.rollback()
    assert session.get(AccountLink, link.id).used_at is not None


def test_a_person_chooses_which_notices_come_by_email(web, session):
    user = UserFactory(email="ana@buurtwerk.example")
    colleague = UserFactory(organisation=user.organisation)
    session.commit()
    web.login("ana@buurtwerk.example")

    page = web.get("/account").get_data(as_text=True)
    assert 'value="payment_failed" checked' in page
    assert 'value="failed_logins"' not in page  # always sent
    saved = web.submit(
        "/account",
        {"email_on": ["project_listed", "payment_failed"]},
        action="/account/notifications",
    )
    assert saved.status_code == 303
    session.rollback()
    stored = session.get(User, user.id)
    assert "project_settled" in stored.email_off.split()
    assert "payment_failed" not in stored.email_off.split()

    def to_whom(kind: str) -> list[str]:
        notice = Notification(organisation_id=user.organisation_id, kind=kind)
        return sorted(a for group in recipients(session, notice).values() for a in group)

    assert to_whom("project_settled") == [colleague.email]
    assert to_whom("payment_failed") == sorted([user.email, colleague.email])
    assert to_whom("failed_logins") == sorted([user.email, colleague.email])


def test_the_owner_invites_a_colleague_who_joins_and_can_be_removed(web, session, inbox, clock):
    owner = UserFactory(
        email="ana@buurtwerk.example", role=Role.ENTREPRENEUR, is_owner=True, name="Ana Pereira"
    )
    member = UserFactory(role=Role.ENTREPRENEUR, organisation=owner.organisation)
    session.commit()
    web.login("ana@buurtwerk.example")

    not_owner = web.as_user(member.email)
    assert "Only the owner" in not_owner.get("/account/colleagues").get_data(as_text=True)
    refused = not_owner.submit(
        "/account/colleagues", {"email": "x@buurtwerk.example"}, action="/account/colleagues"
    )
    assert refused.status_code == 403
    bad = web.submit("/account/colleagues", {"email": "not an address"})
    assert bad.status_code == 422 and "Give a valid e-mail address." in bad.get_data(as_text=True)
    sent = web.submit("/account/colleagues", {"email": "Sam@Buurtwerk.example"})
    assert sent.status_code == 303
    letter = letters_to(inbox, "sam@buurtwerk.example")[-1]
    assert letter["Subject"] == f"Ana Pereira invites you to {owner.organisation.name}"
    path = link_to(inbox, "sam@buurtwerk.example")

    stranger = web.client.application.test_client()
    page = stranger.get(path).get_data(as_text=True)
    assert "Ana Pereira invites you" in page and "sam@buurtwerk.example" in page
    joined = stranger.post(
        path,
        data={"name": "Sam", "password": NEW_PASSWORD, "csrf_token": csrf_from(page)},
    )
    assert joined.status_code == 302
    sam = session.scalars(select(User).where(User.email == "sam@buurtwerk.example")).one()
    assert (sam.organisation_id, sam.role, sam.is_owner) == (
        owner.organisation_id,
        Role.ENTREPRENEUR,
        False,
    )
    assert sam.email_verified_at is not None  # the link proved the address
    assert stranger.get(path).status_code == 410

    # another organisation's member cannot be removed; the owner cannot remove themself
    outsider = UserFactory(organisation=OrganisationFactory())
    session.commit()
    assert (
        web.submit(
            "/account/colleagues", {}, action=f"/account/colleagues/{outsider.id}/remove"
        ).status_code
        == 404
    )
    myself = web.submit("/account/colleagues", {}, action=f"/account/colleagues/{owner.id}/remove")
    assert myself.status_code == 409
    assert "You cannot remove yourself" in myself.get_data(as_text=True)
    removed = web.submit("/account/colleagues", {}, action=f"/account/colleagues/{sam.id}/remove")
    assert removed.status_code == 303
    assert stranger.get("/account").status_code == 302  # signed out for good
    assert sign_in(stranger, "sam@buurtwerk.example", NEW_PASSWORD).status_code == 401

    # an invitation lasts 7 days
    web.submit("/account/colleagues", {"email": "late@buurtwerk.example"})
    late = link_to(inbox, "late@buurtwerk.example")
    clock.advance(days=7)
    assert stranger.get(late).status_code == 410
    count = session.scalar(select(func.count()).select_from(User).where(User.email.like("late%")))
    assert count == 0


def test_link_pages_refuse_odd_secrets_without_an_error(client):
    for secret in ("x", "lnk_" + "a" * 500, "lnk_%00", "lnk_é", "../../etc"):
        for prefix in ("/account/verify/", "/password/reset/", "/account/email/", "/invitations/"):
            answer = client.get(prefix + secret)
            assert answer.status_code in (404, 410), (prefix, secret, answer.status_code)


def test_an_address_changed_meanwhile_is_not_verified_by_an_old_link(session, clock):
    from marketplace.accounts import profile
    from marketplace.accounts.models import LinkPurpose

    user = UserFactory(email_verified_at=None)
    session.commit()
    _link, secret = profile.issue_link(
        session, LinkPurpose.VERIFY_EMAIL, user.email, now=clock.at, user=user
    )
    user.email = "other@example.org"
    session.commit()

    profile.verify_email(session, secret, now=clock.at + timedelta(minutes=1))

    assert session.get(User, user.id).email_verified_at is None


def test_the_owner_keeps_the_profile_and_each_bad_field_is_named(web, session):
    owner = UserFactory(email="ana@buurtwerk.example", role=Role.ENTREPRENEUR, is_owner=True)
    colleague = UserFactory(role=Role.ENTREPRENEUR, organisation=owner.organisation)
    session.commit()
    web.login("ana@buurtwerk.example")

    bad = web.submit(
        "/organisation",
        {
            "legal_name": "Buurtwerk\x00",
            "registry_id": "1234567",
            "vat_id": "NL12345",
            "website": "javascript:alert(1)",
            "description": "x" * 2001,
        },
    )
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    for words in (
        "Legal name: At most 200 characters, on one line.",
        "KvK number or other registry id: A KvK number has 8 digits.",
        "VAT id: A VAT id such as NL123456789B01.",
        "Website: A web address such as https://buurtwerk.nl.",
        "About the organisation: At most 2,000 characters.",
    ):
        assert words in page, words
    session.rollback()
    assert session.get(type(owner.organisation), owner.organisation_id).legal_name == ""

    saved = web.submit(
        "/organisation",
        {
            "legal_name": " Stichting  Buurtwerk Delfshaven ",
            "registry_id": "1234 5678",
            "address": "Schiedamseweg 1, 3026 AA Rotterdam",
            "vat_id": "nl 1234.56789.B01",
            "website": "buurtwerk.example",
            "description": "Werk voor wie het lang niet had.\nIn Delfshaven.",
        },
    )
    assert saved.status_code == 303
    session.rollback()
    organisation = session.get(type(owner.organisation), owner.organisation_id)
    assert (
        organisation.legal_name,
        organisation.registry_id,
        organisation.vat_id,
        organisation.website,
    ) == (
        "Stichting Buurtwerk Delfshaven",
        "12345678",
        "NL123456789B01",
        "https://buurtwerk.example",
    )
    foreign = web.submit("/organisation", {"registry_id": "de hrb 12345"})
    assert foreign.status_code == 303
    session.rollback()
    assert (
        session.get(type(owner.organisation), owner.organisation_id).registry_id == "DE HRB 12345"
    )

    colleague_page = web.as_user(colleague.email)
    assert "The owner of your organisation keeps its profile." in colleague_page.get(
        "/organisation"
    ).get_data(as_text=True)
    refused = colleague_page.submit("/organisation", {"legal_name": "Mine now"})
    assert refused.status_code == 403


def test_the_public_page_shows_the_track_record_of_settled_projects(client, session):
    from marketplace.projects.models import ProjectState
    from marketplace.settlement.models import Settlement
    from tests.factories import EvaluationFactory

    owner = UserFactory(role=Role.ENTREPRENEUR, is_owner=True)
    organisation = owner.organisation
    organisation.website = "https://buurtwerk.example"
    on_time = ProjectFactory(organisation=organisation, state=ProjectState.SETTLED, title="Op tijd")
    late = ProjectFactory(organisation=organisation, state=ProjectState.SETTLED, title="Te laat")
    ProjectFactory(organisation=organisation, title="Nog geheim")  # a draft: private
    session.flush()
    for project, verified, days in ((on_time, 90_000_00, 30), (late, 30_000_00, 61)):
        finished = datetime.combine(project.end_date + timedelta(days=days), time(12), UTC)
        session.add(
            Settlement(
                project_id=project.id,
                evaluation_id=EvaluationFactory(project_id=project.id).id,
                tokens_paid=100,
                raised_cents=0,
                cost_tranche_cents=0,
                cost_fee_cents=0,
                v_target_cents=100_000_00,
                v_verified_cents=verified,
                tokens_minted=90,
                premium_payout_cents=0,
                premium_fee_cents=0,
                refund_total_cents=0,
                computed_at=finished,
                finished_at=finished,
            )
        )
    session.commit()

    page = client.get(f"/organisations/{organisation.id}").get_data(as_text=True)

    assert "2 projects settled; together they verified 60% of the social value" in page
    assert "Op tijd" in page and "Te laat" in page and "Nog geheim" not in page
    assert page.count("late to verify") == 1
    assert "€90,000.00" in page and "90%" in page and "30%" in page
    assert 'href="https://buurtwerk.example" rel="nofollow noopener noreferrer"' in page
    assert client.get("/organisations/999999").status_code == 404
    dutch = client.get(
        f"/organisations/{organisation.id}", headers={"Accept-Language": "nl"}
    ).get_data(as_text=True)
    assert "Staat van dienst" in dutch and "2 projecten afgerekend" in dutch


def test_an_app_confirms_an_address_with_the_links_secret_over_the_api(client, session, inbox):
    answer = client.post(
        "/api/v1/auth/register",
        json={
            "email": "app@buurtwerk.example",
            "password": DEFAULT_PASSWORD,
            "name": "Ana",
            "role": "entrepreneur",
            "organisation": "Buurtwerk App",
        },
    )
    assert answer.json["email_verified"] is False
    secret = link_to(inbox, "app@buurtwerk.example").rsplit("/", 1)[1]

    for bad in ("", "lnk_nothing", "x" * 101):
        refused = client.post("/api/v1/auth/verify", json={"token": bad})
        assert refused.status_code in (409, 422), (bad, refused.json)
    done = client.post("/api/v1/auth/verify", json={"token": secret})
    again = client.post("/api/v1/auth/verify", json={"token": secret})

    assert (done.status_code, done.json["email_verified"]) == (200, True)
    assert (again.status_code, again.json["code"]) == (409, "link_closed")
