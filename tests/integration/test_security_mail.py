"""Finding 10 of issue 15: no header injection in e-mail, and a bad notice fails alone."""

from __future__ import annotations

from email import message_from_bytes

from sqlalchemy import select

from marketplace.notifications.messages import GRACE_ENDING
from marketplace.notifications.models import MailState, Notification
from marketplace.notifications.services import notify
from marketplace.notifications.sweeps import deliver_notifications
from tests.factories import OrganisationFactory, UserFactory
from tests.integration.test_notifications import (  # noqa: F401 - the fixture
    NOW,
    mailing,
    smtp,
)
from tests.web.test_api_projects import body


def test_a_title_with_a_line_break_is_refused_at_input(client, auth_headers):
    owner = UserFactory(entrepreneur=True)
    for title in ("Jobs\r\nBcc: everyone@example.org", "Jobs\nX", "Jobs\x00"):
        answer = client.post(
            "/api/v1/projects", json=body(title=title), headers=auth_headers(owner)
        )
        assert answer.status_code == 422
        assert "title" in answer.json["errors"]


def test_a_notice_with_a_line_break_in_its_subject_goes_out_as_one_line(app, session, smtp):
    port, inbox = smtp
    organisation = OrganisationFactory()
    UserFactory(organisation=organisation)
    notify(
        session,
        key="test:injection",
        organisation_id=organisation.id,
        kind="grace_ending",
        message=GRACE_ENDING,
        # A title stored before titles were checked at input.
        params={
            "project": "Jobs\r\nBcc: everyone@example.org",
            "tokens": 5,
            "until_at": "2027-01-13T00:00:00+00:00",
        },
        link="/pledges",
        now=NOW,
    )
    session.commit()

    assert deliver_notifications(mailing(app, port), NOW).startswith("1 sent")

    [mail] = inbox.messages
    read = message_from_bytes(mail.content)
    assert read["Bcc"] is None
    assert "Jobs Bcc: everyone@example.org" in str(read["Subject"])
    assert not [to for to in mail.rcpt_tos if "everyone" in to]


def test_a_notice_that_cannot_be_written_fails_alone(app, session, smtp):
    port, inbox = smtp
    organisation = OrganisationFactory()
    UserFactory(organisation=organisation)
    broken_then_good = []
    for key, params in (
        ("test:broken", {"project": "Jobs"}),  # its template needs tokens and until_at
        ("test:good", {"project": "Jobs", "tokens": 5, "until_at": "2027-01-13T00:00:00+00:00"}),
    ):
        notify(
            session,
            key=key,
            organisation_id=organisation.id,
            kind="grace_ending",
            message=GRACE_ENDING,
            params=params,
            link="/pledges",
            now=NOW,
        )
        broken_then_good.append(key)
    session.commit()

    summary = deliver_notifications(mailing(app, port), NOW)

    assert summary.startswith("1 sent, 0 logged, 1 failed")
    session.rollback()
    states = {
        n.key: (n.mail_state, n.mail_error)
        for n in session.scalars(select(Notification).where(Notification.key.in_(broken_then_good)))
    }
    assert states["test:good"][0] is MailState.SENT
    assert states["test:broken"][0] is MailState.FAILED
    assert states["test:broken"][1].startswith("cannot be written")
    assert len(inbox.messages) == 1
