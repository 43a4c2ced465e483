"""The audit log: every money movement, transition, refusal and admin change, who
and from where, and rows that cannot be changed or deleted."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from marketplace.audit.models import AuditEvent
from marketplace.funding.models import PledgeStateChange
from marketplace.ledger.models import JournalEntry, JournalLeg
from marketplace.projects.models import ProjectStateChange
from outcomes.evaluation import EvaluationStateChange
from tests.conftest import csrf_from
from tests.factories import UserFactory
from tests.integration.funding_support import buyer
from tests.integration.test_settlement import (  # noqa: F401 - the fixtures
    settled_example,
    worked_example,
)


def events(session, **where) -> list[AuditEvent]:
    session.rollback()
    query = select(AuditEvent).order_by(AuditEvent.id)
    for name, value in where.items():
        query = query.where(getattr(AuditEvent, name) == value)
    return list(session.scalars(query))


def test_every_money_movement_and_transition_of_a_settled_project_is_on_record(
    session, settled_example
):
    project, admin = settled_example.project, settled_example.admin

    # Money: one row per journal entry, with the entry's amount.
    amounts = dict(
        session.execute(
            select(JournalEntry.reference, func.sum(JournalLeg.amount_cents))
            .join(JournalLeg, JournalLeg.entry_id == JournalEntry.id)
            .group_by(JournalEntry.reference)
        ).all()
    )
    money = events(session, kind="money")
    assert len(amounts) >= 8
    assert {e.subject.removeprefix("journal:"): e.detail["amount_cents"] for e in money} == amounts
    assert len(money) == len(amounts)
    charges = [e for e in money if e.action == "charge"]
    assert charges and {e.via for e in charges} == {"scheduler"}
    assert {e.actor for e in charges} == {"scheduler"}

    # Transitions: one row per history row of every state machine.
    transitions = Counter(e.subject.split(":")[0] for e in events(session, kind="transition"))
    assert transitions == {
        "project": session.scalar(select(func.count()).select_from(ProjectStateChange)),
        "pledge": session.scalar(select(func.count()).select_from(PledgeStateChange)),
        "evaluation": session.scalar(select(func.count()).select_from(EvaluationStateChange)),
    }
    settled = events(
        session, subject=f"project:{project.id}", action="project evaluating -> settled"
    )
    assert len(settled) == 1 and settled[0].via == "scheduler"
    # A pledge made over the API names its buyer, the address and the request.
    pledged = events(session, kind="transition", action="pledge new -> committed")
    assert len(pledged) == 2
    assert all(e.via == "api" and e.remote_addr == "127.0.0.1" and e.request_id for e in pledged)
    assert all(e.actor.endswith("@example.org") and e.actor_id for e in pledged)
    # The panel's approval is an admin change, recorded with the transition it made.
    approvals = events(session, kind="admin", action="POST evaluations_api.Approve")
    assert [e.actor for e in approvals] == [admin.email]
    assert approvals[0].request_id == next(
        e.request_id
        for e in events(session, kind="transition")
        if e.action == "evaluation submitted -> approved"
    )


def test_refusals_are_recorded_although_the_request_is_rolled_back(
    app, client, session, auth_headers
):
    someone = buyer()
    session.commit()
    headers = {**auth_headers(someone), "X-Request-ID": "refused-request-0001"}

    assert client.get("/api/v1/users", headers=headers).status_code == 403
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    page = client.get("/login")
    client.post(
        "/login",
        data={
            "email": someone.email,
            "password": "not the password",
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )
    assert (
        client.post(
            "/api/v1/auth/tokens", json={"email": someone.email, "password": "wrong password!"}
        ).status_code
        == 401
    )

    refused = events(session, kind="refused")
    assert [(e.action, e.subject, e.actor, e.via) for e in refused] == [
        ("403 GET accounts_api.Users", "/api/v1/users", someone.email, "api"),
        ("401 GET accounts_api.Me", "/api/v1/me", "anonymous", "api"),
        ("sign-in failed", f"email:{someone.email}", "anonymous", "web"),
        ("sign-in failed", f"email:{someone.email}", "anonymous", "api"),
    ]
    assert refused[0].request_id == "refused-request-0001"
    assert refused[0].detail == {"status": 403}
    # No password is ever written down.
    assert all("password" not in repr(e.detail) for e in refused)


def test_the_log_refuses_changes_and_deletions(app, client, session, auth_headers):
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    event = events(session)[0]
    for statement in (
        "UPDATE audit_events SET actor = 'someone else'",
        "DELETE FROM audit_events",
    ):
        with pytest.raises(DatabaseError, match="append-only"):
            session.execute(text(statement))
        session.rollback()
    assert events(session)[0].actor == event.actor == "anonymous"


def test_administrators_read_and_filter_the_log(app, client, web, session, auth_headers):
    admin = UserFactory(admin=True)
    someone = buyer()
    session.commit()
    for _ in range(3):
        client.get("/api/v1/users", headers=auth_headers(someone))

    listed = client.get(
        "/api/v1/audit-events?kind=refused&per_page=2", headers=auth_headers(admin)
    ).json
    assert listed["total"] == 3 and len(listed["items"]) == 2
    assert {i["actor"] for i in listed["items"]} == {someone.email}
    assert client.get("/api/v1/audit-events?kind=nonsense", headers=auth_headers(admin)).json[
        "errors"
    ] == {"kind": ["Must be one of: money, transition, refused, admin, account."]}
    later = client.get("/api/v1/audit-events?from=2030-01-01", headers=auth_headers(admin)).json
    assert later["total"] == 0

    panel = web.as_user(admin.email)
    page = panel.get(f"/admin/audit?kind=refused&actor={someone.email}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count("403 GET accounts_api.Users") == 3
    assert "3 events" in html
    # Signing in changes nothing of the platform's: it is no administrator's change.
    assert events(session, kind="admin") == []


def test_what_a_command_does_is_recorded_as_the_command_line(app, session):
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output

    made = events(session, kind="transition")
    # the demo's projects are made by the command; its lived year (demo_history) acts
    # through the API as its people and through the scheduler's sweeps, and says so
    assert {e.via for e in made} == {"cli", "api", "scheduler"}
    assert len([e for e in made if e.via == "cli"]) >= 12 * 2
    # The person the demo acts as is named by e-mail, not by a number.
    assert all("@" in e.actor for e in made if e.actor_id is not None)
    # Outside the command, nothing is recorded as the command line any more.
    from marketplace.audit.services import current_actor

    assert current_actor().via == "system"


def test_a_failed_sign_in_with_an_odd_body_is_still_recorded(app, client, session):
    refused = client.post("/api/v1/auth/tokens", json={"email": ["a", "list"], "password": "x"})
    assert refused.status_code == 422
    page = client.get("/login")
    client.post(
        "/login",
        data={"password": "x", "csrf_token": csrf_from(page.get_data(as_text=True))},
    )
    assert [e.subject for e in events(session, kind="refused")] == ["email:"]
