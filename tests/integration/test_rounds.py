"""Funding rounds (issue 19): admins open, edit and close them; entrepreneurs submit into an
open round within its window, themes and cities; the public page's totals equal the API's."""

from __future__ import annotations

import dataclasses
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from marketplace.projects.models import Project, ProjectState
from marketplace.rounds.models import RoundStateChange
from marketplace.web.review import CONFIRMED
from tests.factories import ProjectFactory, UserFactory
from tests.integration.test_settlement import (  # noqa: F401 - the fixtures
    settled_example,
    worked_example,
)

TODAY = date.today()


def round_body(**overrides) -> dict:
    values = {
        "name": "Rotterdam Zuid werkt 2027",
        "description": "Work and youth projects on the south bank.",
        "themes": ["work", "youth"],
        "cities": ["Rotterdam"],
        "submissions_open": (TODAY - timedelta(days=1)).isoformat(),
        "submissions_close": (TODAY + timedelta(days=30)).isoformat(),
        "funding_deadline": (TODAY + timedelta(days=90)).isoformat(),
    }
    return {**values, **overrides}


def project_body(**overrides) -> dict:
    values = {
        "title": "Werkplaats Delfshaven",
        "summary": "Twenty people from social assistance into paid work.",
        "city": "rotterdam",
        "theme": "work",
        "budget_cents": 6_000_000,
        "funding_deadline": (TODAY + timedelta(days=40)).isoformat(),
        "start_date": (TODAY + timedelta(days=120)).isoformat(),
        "end_date": (TODAY + timedelta(days=500)).isoformat(),
        "outcomes": [{"outcome_type": "EMP_BIJSTAND_TO_WORK", "target_quantity": 20}],
    }
    return {**values, **overrides}


@pytest.fixture
def admin(auth_headers):
    return auth_headers(UserFactory(admin=True))


@pytest.fixture
def opened(client, admin) -> dict:
    made = client.post("/api/v1/rounds", json=round_body(), headers=admin)
    assert made.status_code == 201, made.json
    return made.json


def test_an_admin_opens_a_round_everyone_sees_it_with_a_history_row(client, session, opened):
    assert opened["state"] == "open"
    assert opened["figures"]["projects"] == 0
    listed = client.get("/api/v1/rounds").json
    assert [r["name"] for r in listed] == ["Rotterdam Zuid werkt 2027"]
    session.rollback()
    [change] = session.scalars(select(RoundStateChange)).all()
    assert (change.from_state, change.to_state.value) == (None, "open")
    page = client.get(f"/rounds/{opened['id']}").get_data(as_text=True)
    assert "Rotterdam Zuid werkt 2027" in page


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"submissions_close": (TODAY - timedelta(days=5)).isoformat()}, "submissions_close"),
        ({"funding_deadline": (TODAY + timedelta(days=10)).isoformat()}, "funding_deadline"),
        ({"themes": ["cooking"]}, "themes"),
        ({"name": "x"}, "name"),
        ({"funding_deadline": "20270-01-01"}, "funding_deadline"),
    ],
)
def test_a_bad_round_is_422_naming_the_field(client, admin, overrides, field):
    response = client.post("/api/v1/rounds", json=round_body(**overrides), headers=admin)

    assert response.status_code == 422
    assert field in str(response.json["errors"])
    assert client.get("/api/v1/rounds").json == []


def test_only_admins_open_rounds_and_a_name_is_taken_once(client, auth_headers, admin, opened):
    for role in ("entrepreneur", "buyer", "evaluator", "authority"):
        headers = auth_headers(UserFactory(role=role))
        assert (
            client.post(
                "/api/v1/rounds", json=round_body(name="Ander"), headers=headers
            ).status_code
            == 403
        )
    again = client.post("/api/v1/rounds", json=round_body(), headers=admin)
    assert (again.status_code, again.json["code"]) == (409, "round_exists")


def test_a_project_in_a_round_shares_its_deadline_and_is_submitted_in_its_window(
    client, auth_headers, opened
):
    owner = auth_headers(UserFactory(entrepreneur=True))
    draft = client.post(
        "/api/v1/projects", json=project_body(round_id=opened["id"]), headers=owner
    ).json
    assert draft["round_id"] == opened["id"]
    assert draft["funding_deadline"] == opened["funding_deadline"]

    submitted = client.post(f"/api/v1/projects/{draft['id']}/submit", headers=owner)

    assert submitted.status_code == 200, submitted.json
    assert submitted.json["state"] == "submitted"
    assert client.get(f"/api/v1/projects?round_id={opened['id']}", headers=owner).json["total"] == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"theme": "housing"}, "theme"), ({"city": "Schiedam"}, "city")],
)
def test_a_round_takes_only_its_themes_and_cities(client, auth_headers, opened, overrides, field):
    owner = auth_headers(UserFactory(entrepreneur=True))
    draft = client.post(
        "/api/v1/projects", json=project_body(round_id=opened["id"], **overrides), headers=owner
    ).json

    refused = client.post(f"/api/v1/projects/{draft['id']}/submit", headers=owner)

    assert refused.status_code == 422 and field in refused.json["errors"]
    assert client.get(f"/api/v1/projects/{draft['id']}", headers=owner).json["state"] == "draft"


def test_a_closed_round_takes_nothing_more_and_is_not_changed(client, auth_headers, admin, opened):
    owner = auth_headers(UserFactory(entrepreneur=True))
    draft = client.post(
        "/api/v1/projects", json=project_body(round_id=opened["id"]), headers=owner
    ).json
    closed = client.post(f"/api/v1/rounds/{opened['id']}/close", json={}, headers=admin)
    assert closed.json["state"] == "closed"

    late = client.post(f"/api/v1/projects/{draft['id']}/submit", headers=owner)
    assert late.status_code == 422 and "round_id" in late.json["errors"]
    again = client.post("/api/v1/projects", json=project_body(round_id=opened["id"]), headers=owner)
    assert again.status_code == 422 and "round_id" in again.json["errors"]
    twice = client.post(f"/api/v1/rounds/{opened['id']}/close", json={}, headers=admin)
    assert twice.status_code == 409
    edit = client.patch(f"/api/v1/rounds/{opened['id']}", json={"name": "Nieuw"}, headers=admin)
    assert (edit.status_code, edit.json["code"]) == (409, "round_closed")


def test_an_admin_edits_a_round_and_its_deadline_only_before_a_project_is_listed(
    client, admin, opened, session
):
    renamed = client.patch(
        f"/api/v1/rounds/{opened['id']}", json={"description": "Zuid."}, headers=admin
    )
    assert renamed.status_code == 200
    assert (renamed.json["description"], renamed.json["themes"]) == ("Zuid.", ["work", "youth"])
    later = (TODAY + timedelta(days=100)).isoformat()
    moved = client.patch(
        f"/api/v1/rounds/{opened['id']}", json={"funding_deadline": later}, headers=admin
    )
    assert moved.json["funding_deadline"] == later
    ProjectFactory(state=ProjectState.FUNDING, round_id=opened["id"])
    session.commit()
    stuck = client.patch(
        f"/api/v1/rounds/{opened['id']}",
        json={"funding_deadline": (TODAY + timedelta(days=110)).isoformat()},
        headers=admin,
    )
    assert (stuck.status_code, stuck.json["code"]) == (409, "round_closed")


def test_without_rolling_submissions_a_project_comes_in_through_a_round(
    app, client, auth_headers, monkeypatch
):
    settings = app.extensions["settings"]
    monkeypatch.setitem(
        app.extensions, "settings", dataclasses.replace(settings, rolling_submissions=False)
    )
    owner = auth_headers(UserFactory(entrepreneur=True))
    draft = client.post("/api/v1/projects", json=project_body(), headers=owner).json

    refused = client.post(f"/api/v1/projects/{draft['id']}/submit", headers=owner)

    assert refused.status_code == 422 and "round_id" in refused.json["errors"]


def _euros(cents: int) -> str:
    return f"€{cents // 100:,}.{cents % 100:02d}"


def test_a_rounds_public_totals_equal_the_sums_from_the_api(
    app, client, session, auth_headers, admin, settled_example
):
    """Three projects in one round: one in funding, one unfunded, one settled (the worked
    example, 70% verified). The page and the round's API figures equal what the projects'
    own API answers add up to."""
    made = client.post(
        "/api/v1/rounds",
        json=round_body(name="Ronde 2026", submissions_open="2026-01-01"),
        headers=admin,
    ).json
    settled = settled_example.project
    session.rollback()  # let go of the fixture's read before the factories write (SQLite)
    ProjectFactory(
        state=ProjectState.FUNDING, round_id=made["id"], tokens_pledged=300, title="In funding"
    )
    ProjectFactory(state=ProjectState.UNFUNDED, round_id=made["id"], title="Not funded")
    session.execute(
        Project.__table__.update().where(Project.id == settled.id).values(round_id=made["id"])
    )
    session.commit()

    figures = client.get(f"/api/v1/rounds/{made['id']}").json["figures"]
    items = client.get(f"/api/v1/projects?round_id={made['id']}&per_page=100").json["items"]
    owner = auth_headers(settled.created_by)
    verified = client.get(f"/api/v1/projects/{settled.id}/settlement", headers=owner).json

    assert len(items) == figures["projects"] == 3
    assert figures["tokens_total"] == sum(p["tokens_total"] for p in items)
    assert figures["tokens_pledged"] == sum(p["tokens_pledged"] for p in items)
    assert figures["tokens_paid"] == sum(p["tokens_paid"] for p in items) == 2400
    assert figures["raised_cents"] == sum(p["tokens_paid"] * p["token_price_cents"] for p in items)
    assert figures["raised_cents"] == verified["raised_cents"] == 7_087_200
    assert figures["verified_value_cents"] == verified["v_verified_cents"]
    assert figures["by_state"] == {"funding": 1, "unfunded": 1, "settled": 1}
    page = client.get(f"/rounds/{made['id']}").get_data(as_text=True)
    for shown in (
        _euros(figures["raised_cents"]),
        _euros(figures["verified_value_cents"]),
        f"{figures['tokens_total']:,}",
        "In funding",
        "Not funded",
        settled.title,
    ):
        assert shown in page, shown
    assert re.search(r"3\s+projects", page)


def test_a_round_takes_the_projects_own_themes():
    from marketplace.projects.models import Theme
    from marketplace.rounds.models import THEMES

    assert set(THEMES) == {t.value for t in Theme}


def test_an_admin_opens_and_closes_a_round_on_its_pages(web, session):
    admin = UserFactory(admin=True)
    page = web.as_user(admin.email)
    form = {
        "name": "Zuid werkt",
        "description": "Werk op Zuid.",
        "themes": "work",
        "cities": "Rotterdam, Schiedam",
        "submissions_open": (TODAY - timedelta(days=1)).isoformat(),
        "submissions_close": (TODAY + timedelta(days=20)).isoformat(),
        "funding_deadline": (TODAY + timedelta(days=10)).isoformat(),  # before the close
    }

    refused = page.submit("/rounds/new", form)
    assert refused.status_code == 422
    assert "Funding ends after submissions close." in refused.get_data(as_text=True)

    made = page.submit(
        "/rounds/new", {**form, "funding_deadline": (TODAY + timedelta(days=60)).isoformat()}
    )
    assert made.status_code == 302
    shown = page.get(made.headers["Location"]).get_data(as_text=True)
    assert "Zuid werkt" in shown and "Rotterdam, Schiedam" in shown
    round_path = made.headers["Location"]
    review = page.submit(round_path, {}, action=f"{round_path}/close")
    assert review.status_code == 200 and "Close the round" in review.get_data(as_text=True)
    closed = page.submit(round_path, {"confirmed": CONFIRMED}, action=f"{round_path}/close")
    assert closed.status_code == 302
    session.rollback()
    states = [c.to_state.value for c in session.scalars(select(RoundStateChange))]
    assert states == ["open", "closed"]
