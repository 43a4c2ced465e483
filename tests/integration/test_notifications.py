"""Notices: written with their cause, once per event and recipient, e-mailed once after commit.

E-mail goes to a real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes
from email.header import decode_header, make_header

from sqlalchemy import func, select

from marketplace.accounts.models import Role
from marketplace.core.sweeps import SweepContext
from marketplace.notifications.messages import GRACE_ENDING, render
from marketplace.notifications.models import MailState, Notification
from marketplace.notifications.services import Mailer, deliver, notify
from marketplace.notifications.sweeps import deliver_notifications
from marketplace.projects import services as projects
from marketplace.projects.models import ProjectState
from marketplace.scheduler import run_sweeps
from tests.factories import OrganisationFactory, ProjectFactory, UserFactory
from tests.integration.funding_support import (
    AFTER_DEADLINE,
    buyer,
    listed_project,
    pledge_via_api,
    tick,
)
from tests.integration.test_settlement import (  # noqa: F401 - the fixture
    ENDED,
    NOW,
    evaluate,
    worked_example,
)
from tests.support.mail import smtp  # noqa: F401 - the fixture
from tests.support.postgres import _free_port


def mailing(app, port: int) -> SweepContext:
    settings = replace(
        app.extensions["settings"], smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False
    )
    return SweepContext(app.extensions["db"], app.extensions["stripe"], settings)


def kinds(session) -> dict[str, int]:
    session.rollback()
    return dict(
        session.execute(select(Notification.kind, func.count()).group_by(Notification.kind)).all()
    )


def test_each_event_of_a_project_notifies_its_people_once(
    app, client, session, auth_headers, worked_example
):
    project, admin = worked_example
    evaluation_id, evaluator = evaluate(client, auth_headers, project, admin, verified=14)
    for _ in range(2):  # the scheduler runs twice: nobody hears twice
        tick(app, ENDED + timedelta(days=1))
        tick(app, ENDED + timedelta(days=2))

    assert kinds(session) == {
        "submission_decided": 1,  # valued, to the owner
        "project_listed": 1,
        "threshold_reached": 1,
        "funding_closed": 3,  # two buyers and the owner
        "declaration_needed": 1,  # to the evaluator, with its assignment
        "project_started": 3,
        "evaluation_assigned": 1,
        "project_settled": 3,
    }
    assigned = session.scalars(
        select(Notification).where(Notification.kind == "evaluation_assigned")
    ).one()
    assert (assigned.user_id, assigned.link) == (evaluator.id, f"/evaluations/{evaluation_id}")
    settled = session.scalars(
        select(Notification).where(Notification.kind == "project_settled").order_by(Notification.id)
    ).all()
    assert render(settled[0].body, settled[0].params) == (
        f"The evaluator verified the outcomes of {project.title}. You receive 665 of your "
        "1,000 tokens and a refund of €1,358.38."
    )
    # No SMTP server is configured here: every notice was written to the log, once.
    assert {n.mail_state for n in session.scalars(select(Notification))} == {MailState.LOGGED}


def test_a_failed_charge_tells_the_buyer_and_the_last_day_is_reminded_once(
    app, client, session, auth_headers, smtp
):
    port, inbox = smtp
    project = listed_project()
    declined = buyer("Havenstad Bank")
    session.commit()
    assert (
        pledge_via_api(
            client, auth_headers(declined), project.id, 80, "pm_card_chargeCustomerFail"
        ).status_code
        == 201
    )
    ctx = mailing(app, port)
    run_sweeps(ctx, AFTER_DEADLINE)
    last_day = AFTER_DEADLINE + timedelta(hours=72 - 12)
    run_sweeps(ctx, last_day)
    run_sweeps(ctx, last_day + timedelta(minutes=1))

    counts = kinds(session)
    assert counts["payment_failed"] == 1
    assert counts["grace_ending"] == 1
    to_buyer = [m for m in inbox.messages if declined.email in m.rcpt_tos]
    subjects = sorted(m.content.decode().split("Subject: ")[1].split("\r\n")[0] for m in to_buyer)
    assert subjects == [
        f"Funding closed: {project.title} is funded",
        f"Last day to pay for {project.title}",
        f"Payment needed for {project.title}",
    ]
    assert any("/pledges#pledge-" in m.content.decode() for m in to_buyer)


def test_each_reader_gets_the_e_mail_in_the_language_of_their_pages(app, web, session, smtp):
    port, inbox = smtp
    organisation = OrganisationFactory()
    dutch = UserFactory(organisation=organisation, language="nl")
    english = UserFactory(organisation=organisation, language="en")
    unknown = UserFactory(organisation=organisation, language=None)
    project = ProjectFactory(title="Werkplaats Delfshaven")
    notify(
        session,
        key="test:languages",
        organisation_id=organisation.id,
        kind="grace_ending",
        message=GRACE_ENDING,
        params={
            "project": project.title,
            "tokens": 1200,
            "until_at": "2027-01-13T00:00:00+00:00",
        },
        link="/pledges",
        now=NOW,
    )
    session.commit()

    assert deliver_notifications(mailing(app, port), NOW).startswith("1 sent")

    read = {tuple(m.rcpt_tos): message_from_bytes(m.content) for m in inbox.messages}
    assert set(read) == {(dutch.email,), (english.email, unknown.email)}
    in_dutch, in_english = read[(dutch.email,)], read[(english.email, unknown.email)]
    assert str(make_header(decode_header(in_dutch["Subject"]))) == (
        "Laatste dag om te betalen voor Werkplaats Delfshaven"
    )
    assert in_english["Subject"] == "Last day to pay for Werkplaats Delfshaven"
    dutch_text = in_dutch.get_payload(decode=True).decode()
    english_text = in_english.get_payload(decode=True).decode()
    assert "1.200 tokens" in dutch_text and "13 januari 2027, 01:00" in dutch_text
    assert "1,200 tokens" in english_text and "13 January 2027, 01:00" in english_text
    assert all(text.rstrip().endswith("/pledges") for text in (dutch_text, english_text))


def test_the_language_chosen_or_signed_in_with_is_remembered(app, web, session):
    person = UserFactory(language=None)
    session.commit()
    web.client.set_cookie("som_lang", "nl")
    web.login(person.email)
    session.rollback()
    assert session.get(UserFactory._meta.model, person.id).language == "nl"

    web.submit("/", {"lang": "en", "next": "/account"}, action="/language")
    session.rollback()
    assert session.get(UserFactory._meta.model, person.id).language == "en"


def test_a_rolled_back_change_notifies_nobody(app, session, smtp):
    port, inbox = smtp
    project = ProjectFactory(state=ProjectState.SUBMITTED)
    admin = UserFactory(role=Role.ADMIN)
    session.commit()

    projects.reject(session, admin, project, reason="The outcomes cannot be measured.", now=NOW)
    session.flush()
    assert session.scalar(select(func.count()).select_from(Notification)) == 1
    session.rollback()  # the request failed after the notice was written

    deliver_notifications(mailing(app, port), NOW)
    assert session.scalar(select(func.count()).select_from(Notification)) == 0
    assert inbox.messages == []


def test_two_deliveries_at_once_send_each_notice_once(app, session, smtp):
    port, inbox = smtp
    organisation = OrganisationFactory()
    people = [UserFactory(organisation=organisation) for _ in range(2)]
    for n in range(6):
        notify(
            session,
            key=f"test:{n}",
            organisation_id=organisation.id,
            kind="test",
            message=("Notice %(n)s", "Hello."),
            params={"n": n},
            link="/notices",
            now=NOW,
        )
    assert not notify(
        session,
        key="test:0",
        organisation_id=organisation.id,
        kind="test",
        message=("Again", "Hello."),
        params={},
        link="",
        now=NOW,
    )
    session.commit()
    ctx = mailing(app, port)
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        deliver(ctx.db.session_factory, Mailer(ctx.settings), now=NOW)

    both = [threading.Thread(target=run) for _ in range(2)]
    for thread in both:
        thread.start()
    for thread in both:
        thread.join()
    deliver_notifications(ctx, NOW)

    assert len(inbox.messages) == 6
    assert all(sorted(m.rcpt_tos) == sorted(p.email for p in people) for m in inbox.messages)
    session.rollback()
    assert {n.mail_state for n in session.scalars(select(Notification))} == {MailState.SENT}


def a_notice_to_one_person(session, key: str) -> None:
    """A plain notice, committed, to an organisation of one person."""
    organisation = OrganisationFactory()
    UserFactory(organisation=organisation)
    notify(
        session,
        key=key,
        organisation_id=organisation.id,
        kind="test",
        message=("Notice", "Hello."),
        params={},
        link="",
        now=NOW,
    )
    session.commit()


def test_a_refused_e_mail_is_recorded_and_not_sent_again(app, session, smtp):
    a_notice_to_one_person(session, "test:refused")
    closed = mailing(app, _free_port())  # nothing listens there

    assert deliver_notifications(closed, NOW).startswith("0 sent, 0 logged, 1 failed")
    assert deliver_notifications(closed, NOW).startswith("0 sent, 0 logged, 0 failed")
    session.rollback()
    notice = session.scalars(select(Notification)).one()
    assert notice.mail_state is MailState.FAILED
    assert notice.mail_error


def test_a_delivery_killed_after_its_claim_is_marked_interrupted_not_sent_twice(app, session, smtp):
    a_notice_to_one_person(session, "test:interrupted")
    # What a process killed between claiming and recording leaves behind.
    notice = session.scalars(select(Notification)).one()
    notice.mail_state, notice.mailed_at = MailState.SENDING, NOW
    session.commit()
    port, inbox = smtp
    ctx = mailing(app, port)

    assert deliver_notifications(ctx, NOW + timedelta(minutes=9)).endswith("0 interrupted")
    assert deliver_notifications(ctx, NOW + timedelta(minutes=11)).endswith("1 interrupted")
    session.rollback()
    assert notice.mail_state is MailState.FAILED
    assert "interrupted" in notice.mail_error
    assert inbox.messages == []


def test_people_see_their_notices_and_admins_the_outbox(app, web, session):
    organisation = OrganisationFactory()
    person = UserFactory(role=Role.BUYER, organisation=organisation)
    colleague = UserFactory(role=Role.BUYER, organisation=organisation)
    for key, user_id in (("all", None), ("mine", person.id), ("theirs", colleague.id)):
        notify(
            session,
            key=f"test:{key}",
            organisation_id=organisation.id,
            user_id=user_id,
            kind="test",
            message=("Notice for %(key)s", "Hello."),
            params={"key": key},
            link="/holdings",
            now=NOW,
        )
    session.commit()

    web.login(person.email)
    page = web.get("/notices").get_data(as_text=True)
    assert "Notice for all" in page and "Notice for mine" in page
    assert "Notice for theirs" not in page
    assert 'class="badge badge-ok">2' in web.get("/projects").get_data(as_text=True)
    web.submit("/notices", {}, action="/notices/read")
    assert 'class="badge badge-ok">2' not in web.get("/projects").get_data(as_text=True)
    assert web.get("/admin/outbox").status_code == 403
    admin = web.as_user(UserFactory(role=Role.ADMIN).email)
    outbox = admin.get("/admin/outbox?state=pending").get_data(as_text=True)
    assert "Notice for theirs" in outbox
