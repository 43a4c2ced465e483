"""Projects through the JSON API: drafts, valuation, listing, browsing, authorisation."""

import urllib.parse
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from marketplace.projects.models import Project, ProjectState, ValuationSnapshot
from outcomes.commitments import OutcomeCommitment
from tests.factories import OutcomeTypeFactory, ProjectFactory, Session, UserFactory
from valuation import EvidenceGrade, Per

S = ProjectState
SOON = date.today() + timedelta(days=40)


def body(**overrides):
    values = {
        "title": "Werkplaats Delfshaven",
        "summary": "Twenty people from social assistance into paid work.",
        "city": "Rotterdam",
        "theme": "work",
        "budget_cents": 6_000_000,
        "funding_deadline": SOON.isoformat(),
        "start_date": (SOON + timedelta(days=1)).isoformat(),
        "end_date": (SOON + timedelta(days=366)).isoformat(),
        "outcomes": [
            {"outcome_type": "EMP_BIJSTAND_TO_WORK", "target_quantity": 20},
            {"outcome_type": "YOUTH_NEET_TO_EET", "target_quantity": 10, "evidence_grade": "B"},
        ],
    }
    values.update(overrides)
    return values


@pytest.fixture
def owner():
    return UserFactory(entrepreneur=True)


def projects_in(session):
    session.rollback()
    return session.scalar(select(func.count()).select_from(Project))


def test_an_entrepreneur_creates_a_draft_with_its_commitments(client, auth_headers, owner):
    response = client.post("/api/v1/projects", json=body(), headers=auth_headers(owner))

    assert response.status_code == 201
    project = response.get_json()
    assert (project["state"], project["organisation"], project["premium_rate"]) == (
        "draft",
        owner.organisation.name,
        "0.25",
    )
    assert [
        (o["outcome_type"], o["target_quantity"], o["evidence_grade"]) for o in project["outcomes"]
    ] == [("EMP_BIJSTAND_TO_WORK", 20, "C"), ("YOUTH_NEET_TO_EET", 10, "B")]
    assert project["valuation"] is None and project["flags"] == []
    history = client.get(
        f"/api/v1/projects/{project['id']}/history", headers=auth_headers(owner)
    ).get_json()
    assert [(h["from_state"], h["to_state"]) for h in history] == [(None, "draft")]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"funding_deadline": date.today().isoformat()}, "funding_deadline"),
        ({"start_date": SOON.isoformat()}, "start_date"),
        ({"end_date": (SOON + timedelta(days=1)).isoformat()}, "end_date"),
        ({"end_date": "2027-02-30"}, "end_date"),
        ({"budget_cents": 0}, "budget_cents"),
        ({"budget_cents": -500}, "budget_cents"),
        ({"budget_cents": 12.5}, "budget_cents"),
        ({"premium_rate": "1.5"}, "premium_rate"),
        ({"premium_rate": -0.1}, "premium_rate"),
        ({"title": "x" * 121}, "title"),
        ({"title": ""}, "title"),
        ({"theme": "space"}, "theme"),
        ({"outcomes": []}, "outcomes"),
        ({"outcomes": [{"outcome_type": "NOPE", "target_quantity": 1}]}, "outcomes.0.outcome_type"),
        (
            {"outcomes": [{"outcome_type": "WELLBY", "target_quantity": 0}]},
            "outcomes.0.target_quantity",
        ),
        (
            {"outcomes": [{"outcome_type": "WELLBY", "target_quantity": -4}]},
            "outcomes.0.target_quantity",
        ),
        (
            {
                "outcomes": [
                    {"outcome_type": "WELLBY", "target_quantity": 3},
                    {"outcome_type": "wellby", "target_quantity": 2},
                ]
            },
            "outcomes.1.outcome_type",
        ),
    ],
)
def test_bad_project_input_is_422_naming_the_field_and_saves_nothing(
    client, auth_headers, session, owner, overrides, field
):
    response = client.post("/api/v1/projects", json=body(**overrides), headers=auth_headers(owner))

    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    assert projects_in(session) == 0


def test_a_retired_outcome_type_cannot_be_chosen(client, auth_headers, owner):
    client.post(
        "/api/v1/outcome-types/WELLBY/retire", headers=auth_headers(UserFactory(admin=True))
    )

    response = client.post(
        "/api/v1/projects",
        json=body(outcomes=[{"outcome_type": "WELLBY", "target_quantity": 3}]),
        headers=auth_headers(owner),
    )

    assert response.status_code == 422
    assert "retired" in response.get_json()["errors"]["outcomes.0.outcome_type"][0]


def test_a_draft_is_edited_and_its_lines_replaced(client, auth_headers, owner):
    headers = auth_headers(owner)
    project = client.post("/api/v1/projects", json=body(), headers=headers).get_json()

    response = client.patch(
        f"/api/v1/projects/{project['id']}",
        headers=headers,
        json={
            "title": "Werkplaats Delfshaven-Zuid",
            "outcomes": [{"outcome_type": "WELLBY", "target_quantity": 40}],
        },
    )

    assert response.status_code == 200
    edited = response.get_json()
    assert edited["title"] == "Werkplaats Delfshaven-Zuid"
    assert [o["outcome_type"] for o in edited["outcomes"]] == ["WELLBY"]
    assert edited["budget_cents"] == 6_000_000


def test_a_bad_edit_changes_nothing(client, auth_headers, owner, session):
    headers = auth_headers(owner)
    project = client.post("/api/v1/projects", json=body(), headers=headers).get_json()

    response = client.patch(
        f"/api/v1/projects/{project['id']}",
        headers=headers,
        json={"title": "Renamed", "end_date": body()["start_date"]},
    )

    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["end_date"]
    session.rollback()
    assert session.get(Project, project["id"]).title == "Werkplaats Delfshaven"


def test_a_submitted_project_can_no_longer_be_edited(client, auth_headers, owner):
    headers = auth_headers(owner)
    project = client.post("/api/v1/projects", json=body(), headers=headers).get_json()
    assert (
        client.post(f"/api/v1/projects/{project['id']}/submit", headers=headers).get_json()["state"]
        == "submitted"
    )

    response = client.patch(
        f"/api/v1/projects/{project['id']}", headers=headers, json={"title": "Too late"}
    )

    assert (response.status_code, response.get_json()["code"]) == (409, "invalid_transition")


def test_the_worked_example_money_figures_come_from_the_valuation(client, auth_headers, session):
    # One line worth exactly EUR 254,000 conservatively: 2,540 tokens of EUR 100.
    OutcomeTypeFactory(
        code="EXACT_254K",
        proxy_value=Decimal("259715"),
        per=Per.ONCE,
        price_year=SOON.year + 1,
        haircut=Decimal(1),
        deadweight=Decimal(0),
        displacement=Decimal(0),
        attribution=Decimal(0),
        drop_off=Decimal(0),
        duration_years=1,
    )
    owner = UserFactory(entrepreneur=True)
    headers = auth_headers(owner)
    project = client.post(
        "/api/v1/projects",
        headers=headers,
        json=body(
            funding_deadline=date(SOON.year, 12, 1).isoformat(),
            start_date=date(SOON.year + 1, 1, 4).isoformat(),
            end_date=date(SOON.year + 1, 12, 31).isoformat(),
            outcomes=[{"outcome_type": "EXACT_254K", "target_quantity": 1, "evidence_grade": "A"}],
        ),
    ).get_json()
    client.post(f"/api/v1/projects/{project['id']}/submit", headers=headers)

    valued = client.post(
        f"/api/v1/projects/{project['id']}/valuation",
        json={},
        headers=auth_headers(UserFactory(admin=True)),
    ).get_json()

    assert valued["state"] == "valued"
    assert valued["valuation"]["total_conservative_value_cents"] == 25_400_000
    assert (valued["tokens_total"], valued["token_price_cents"], valued["threshold_tokens"]) == (
        2540,
        2953,
        2032,
    )
    assert valued["valuation"]["lines"][0]["source"] == "Test source"
    # social value per euro, expected: 25,400,000 / (6,000,000 x 1.25) = 3.38666... -> 3.3867
    assert (valued["value_per_euro"], valued["value_per_euro_basis"]) == ("3.3867", "expected")


def submitted_project():
    project = ProjectFactory(state=S.SUBMITTED)
    return project


def test_an_override_needs_its_reason_and_is_kept_in_the_snapshot(client, auth_headers, session):
    project = submitted_project()
    admin = auth_headers(UserFactory(admin=True))
    url = f"/api/v1/projects/{project.id}/valuation"

    missing = client.post(
        url,
        headers=admin,
        json={"overrides": [{"outcome_type": "EMP_BIJSTAND_TO_WORK", "deadweight": "0.4"}]},
    )
    not_a_line = client.post(
        url,
        headers=admin,
        json={
            "overrides": [
                {
                    "outcome_type": "WELLBY",
                    "deadweight": "0.4",
                    "reason": "Panel judgement on data.",
                }
            ]
        },
    )
    assert (missing.status_code, list(missing.get_json()["errors"])) == (
        422,
        ["overrides.0.reason"],
    )
    assert "overrides.0.outcome_type" in not_a_line.get_json()["errors"]

    response = client.post(
        url,
        headers=admin,
        json={
            "premium_rate": "0.2",
            "overrides": [
                {
                    "outcome_type": "EMP_BIJSTAND_TO_WORK",
                    "deadweight": "0.4",
                    "reason": "Rotterdam's own figures show 40% would find work anyway.",
                }
            ],
        },
    )

    assert response.status_code == 200
    line = response.get_json()["valuation"]["lines"][0]
    assert line["overrides"] == {"deadweight": "0.4"}
    assert line["reason"].startswith("Rotterdam's own figures")
    session.rollback()
    snapshot = session.scalars(select(ValuationSnapshot)).one()
    assert snapshot.inputs["lines"][0]["proxy"]["proxy_value"] == "16428.72"
    assert snapshot.premium_rate == Decimal("0.2")


def test_revaluing_adds_a_snapshot_and_keeps_the_old_one(client, auth_headers, session):
    project = submitted_project()
    admin = auth_headers(UserFactory(admin=True))
    url = f"/api/v1/projects/{project.id}/valuation"
    first = client.post(url, headers=admin, json={}).get_json()

    second = client.post(url, headers=admin, json={"premium_rate": "0.1"}).get_json()

    assert second["valuation"]["id"] != first["valuation"]["id"]
    assert second["token_price_cents"] < first["token_price_cents"]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ValuationSnapshot)) == 2


def test_a_valuation_without_tokens_cannot_be_listed(client, auth_headers):
    project = ProjectFactory(state=S.SUBMITTED, outcomes=[])
    tiny = OutcomeTypeFactory(
        proxy_value=Decimal("1"), per=Per.ONCE, drop_off=Decimal(0), duration_years=1
    )
    Session.add(
        OutcomeCommitment(
            project_id=project.id,
            position=0,
            outcome_type=tiny,
            target_quantity=1,
            evidence_grade=EvidenceGrade.D,
        )
    )
    Session.commit()
    admin = auth_headers(UserFactory(admin=True))

    valued = client.post(f"/api/v1/projects/{project.id}/valuation", headers=admin, json={})
    listed = client.post(f"/api/v1/projects/{project.id}/list", headers=admin)

    assert valued.get_json()["tokens_total"] == 0
    assert valued.get_json()["token_price_cents"] is None
    assert (listed.status_code, listed.get_json()["code"]) == (409, "not_listable")


def test_rejection_needs_a_reason(client, auth_headers):
    project = submitted_project()
    admin = auth_headers(UserFactory(admin=True))

    refused = client.post(f"/api/v1/projects/{project.id}/reject", headers=admin, json={})
    done = client.post(
        f"/api/v1/projects/{project.id}/reject",
        headers=admin,
        json={"reason": "The outcomes are not measurable as planned."},
    )

    assert refused.status_code == 422
    assert done.get_json()["state"] == "rejected"
    history = client.get(f"/api/v1/projects/{project.id}/history", headers=admin).get_json()
    assert history[-1]["reason"] == "The outcomes are not measurable as planned."


def test_the_public_sees_listed_projects_only(client, auth_headers):
    listed = ProjectFactory(state=S.FUNDING, title="Listed one")
    ProjectFactory(state=S.DRAFT, organisation=listed.organisation)
    ProjectFactory(state=S.SUBMITTED)
    ProjectFactory(state=S.SETTLED, title="Done one")

    page = client.get("/api/v1/projects").get_json()

    assert {p["title"] for p in page["items"]} == {"Listed one", "Done one"}
    assert page["total"] == 2


def test_an_organisation_sees_its_own_drafts_and_admins_see_all(client, auth_headers):
    mine = ProjectFactory(state=S.DRAFT)
    ProjectFactory(state=S.DRAFT)
    ProjectFactory(state=S.FUNDING)
    owner = UserFactory(entrepreneur=True, organisation=mine.organisation)

    own = client.get("/api/v1/projects", headers=auth_headers(owner)).get_json()
    only_mine = client.get("/api/v1/projects?mine=true", headers=auth_headers(owner)).get_json()
    everything = client.get(
        "/api/v1/projects", headers=auth_headers(UserFactory(admin=True))
    ).get_json()

    assert own["total"] == 2
    assert only_mine["total"] == 1
    assert everything["total"] == 3


def test_filters_search_sort_and_pages(client):
    ProjectFactory(state=S.FUNDING, title="Groene daken", city="Schiedam", theme="wellbeing")
    ProjectFactory(state=S.FUNDING, title="Huis op orde", city="Rotterdam", theme="housing")
    ProjectFactory(state=S.FUNDING, title="Aan het werk", city="Rotterdam", theme="work")

    def titles(query):
        return [p["title"] for p in client.get(f"/api/v1/projects?{query}").get_json()["items"]]

    assert titles("city=rotterdam&sort=title") == ["Aan het werk", "Huis op orde"]
    assert titles("theme=wellbeing") == ["Groene daken"]
    assert titles("q=DAKEN") == ["Groene daken"]
    assert titles("outcome_type=EMP_BIJSTAND_TO_WORK&sort=title") == [
        "Aan het werk",
        "Groene daken",
        "Huis op orde",
    ]
    assert titles("outcome_type=WELLBY") == []
    assert titles("sort=title&per_page=2&page=2") == ["Huis op orde"]
    assert titles("state=draft") == []


def test_text_search_finds_parts_of_words_follows_edits_and_takes_any_character(client, session):
    roofs = ProjectFactory(state=S.FUNDING, title="Groene daken", summary="Sedum op 40 daken.")
    ProjectFactory(state=S.FUNDING, title="Huis op orde", summary='Schulden "eerst" weg.')

    def titles(q):
        query = urllib.parse.urlencode({"q": q, "sort": "title"})
        return [p["title"] for p in client.get(f"/api/v1/projects?{query}").get_json()["items"]]

    assert titles("aken") == ["Groene daken"]  # inside a word
    assert titles("SEDUM") == ["Groene daken"]  # the summary, any case
    assert titles("op") == ["Groene daken", "Huis op orde"]  # two letters
    assert titles('"eerst"') == ["Huis op orde"]  # quotes are searched for, not syntax
    assert titles("daken huis") == []  # a phrase, not two words
    roofs.title = "Blauwe daken"
    roofs.summary = "Water vasthouden."
    session.commit()
    assert titles("sedum") == []
    assert titles("blauwe") == ["Blauwe daken"]
    session.delete(roofs)
    session.commit()
    assert titles("daken") == []


def test_text_search_pages_sorts_and_shows_each_reader_what_they_may_see(
    client, session, auth_headers
):
    """A search's page, order, filters and total are taken among the matches; an owner
    finds its own draft, nobody else does."""
    budgets = [5, 3, 9, 1, 7]
    for n, budget in enumerate(budgets):
        ProjectFactory(
            state=S.FUNDING,
            title=f"Tuin {n}",
            summary="Een moestuin in de wijk.",
            budget_cents=budget * 100_000,
            city="Schiedam" if n % 2 else "Delft",
        )
    draft = ProjectFactory(state=S.DRAFT, title="Tuin concept", summary="Nog een moestuin.")
    ProjectFactory(state=S.FUNDING, title="Dak", summary="Groen dak.")
    session.commit()
    owner = UserFactory(entrepreneur=True, organisation=draft.organisation)

    def page(query, headers=None):
        return client.get(f"/api/v1/projects?q=moestuin&{query}", headers=headers).get_json()

    first, second = page("sort=budget&per_page=2"), page("sort=budget&per_page=2&page=2")
    assert [p["title"] for p in first["items"]] == ["Tuin 2", "Tuin 4"]
    assert [p["title"] for p in second["items"]] == ["Tuin 0", "Tuin 1"]
    assert first["total"] == second["total"] == 5
    assert [p["title"] for p in page("sort=budget&per_page=2&page=3")["items"]] == ["Tuin 3"]
    assert [p["title"] for p in page("city=schiedam&sort=title")["items"]] == ["Tuin 1", "Tuin 3"]
    assert page("city=schiedam")["total"] == 2
    mine = page("sort=title", auth_headers(owner))
    assert mine["total"] == 6 and mine["items"][0]["title"] == "Tuin 0"
    assert "Tuin concept" in [p["title"] for p in mine["items"]]
    assert "Tuin concept" not in [p["title"] for p in page("sort=title&per_page=50")["items"]]
    assert all(p["organisation"] for p in first["items"])  # each row whole, with its maker


@pytest.mark.parametrize(
    "query",
    ["state=dreaming", "theme=space", "sort=random", "per_page=500", "page=0", "mine=maybe"],
)
def test_bad_list_parameters_are_422_naming_them(client, query):
    response = client.get(f"/api/v1/projects?{query}")

    assert response.status_code == 422
    assert query.split("=")[0] in response.get_json()["errors"]


def test_a_bad_token_on_a_public_endpoint_is_401_not_silently_public(client):
    response = client.get("/api/v1/projects", headers={"Authorization": "Bearer som_wrong"})

    assert response.status_code == 401


# ---------------------------------------------------------------- authorisation matrix

ACTORS = ("anonymous", "owner", "other_entrepreneur", "buyer", "evaluator", "admin")
OBJECTS = ("draft", "submitted", "listed")
STATE_OF = {"draft": S.DRAFT, "submitted": S.SUBMITTED, "listed": S.FUNDING}

ENDPOINTS = {
    "read": ("GET", "/api/v1/projects/{id}", None),
    "history": ("GET", "/api/v1/projects/{id}/history", None),
    "edit": ("PATCH", "/api/v1/projects/{id}", {"title": "A new title"}),
    "submit": ("POST", "/api/v1/projects/{id}/submit", None),
    "withdraw": ("POST", "/api/v1/projects/{id}/withdraw", {}),
    "value": ("POST", "/api/v1/projects/{id}/valuation", {}),
    "list": ("POST", "/api/v1/projects/{id}/list", None),
    "reject": ("POST", "/api/v1/projects/{id}/reject", {"reason": "Not measurable as planned."}),
}

# Who may succeed, on which project: everything else must not be a 2xx.
ALLOWED = {
    "read": {("owner", o) for o in OBJECTS}
    | {("admin", o) for o in OBJECTS}
    | {(a, "listed") for a in ACTORS},
    "edit": {("owner", "draft")},
    "submit": {("owner", "draft")},
    "withdraw": {("owner", o) for o in OBJECTS},
    "value": {("admin", "submitted")},
    "list": set(),  # needs a valued project
    "reject": {("admin", "submitted")},
}
ALLOWED["history"] = ALLOWED["read"]


@pytest.mark.parametrize("obj", OBJECTS)
@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_authorisation_matrix(client, auth_headers, endpoint, actor, obj):
    project = ProjectFactory(state=STATE_OF[obj])
    users = {
        "owner": UserFactory(entrepreneur=True, organisation=project.organisation),
        "other_entrepreneur": UserFactory(entrepreneur=True),
        "buyer": UserFactory(buyer=True),
        "evaluator": UserFactory(evaluator=True),
        "admin": UserFactory(admin=True),
    }
    headers = auth_headers(users[actor]) if actor != "anonymous" else {}
    method, path, payload = ENDPOINTS[endpoint]

    response = client.open(path.format(id=project.id), method=method, json=payload, headers=headers)

    if (actor, obj) in ALLOWED[endpoint]:
        assert response.status_code == 200, response.get_json()
    else:
        assert response.status_code in (401, 403, 404, 409), response.get_json()
        if actor == "anonymous" and method != "GET":
            assert response.status_code == 401
        can_know = obj == "listed" or actor in ("owner", "admin")
        if method == "GET" and not can_know:
            assert response.status_code == 404  # no hint that the project exists


@pytest.mark.parametrize("actor", ACTORS)
def test_only_entrepreneurs_create_projects(client, auth_headers, actor):
    users = {
        "owner": UserFactory(entrepreneur=True),
        "other_entrepreneur": UserFactory(entrepreneur=True),
        "buyer": UserFactory(buyer=True),
        "evaluator": UserFactory(evaluator=True),
        "admin": UserFactory(admin=True),
    }
    headers = auth_headers(users[actor]) if actor != "anonymous" else {}

    response = client.post("/api/v1/projects", json=body(), headers=headers)

    expected = {"anonymous": 401, "owner": 201, "other_entrepreneur": 201}.get(actor, 403)
    assert response.status_code == expected


def test_list_totals_follow_every_listing_change(client, auth_headers):
    ProjectFactory(state=S.FUNDING)
    valued = ProjectFactory(state=S.VALUED)
    admin = auth_headers(UserFactory(admin=True))
    assert client.get("/api/v1/projects").get_json()["total"] == 1
    assert client.get("/api/v1/projects").get_json()["total"] == 1  # from the cache

    client.post(f"/api/v1/projects/{valued.id}/list", headers=admin)

    assert client.get("/api/v1/projects").get_json()["total"] == 2


def test_the_marketplace_sorts_by_social_value_per_euro_highest_first_unvalued_last(client):
    ProjectFactory(state=S.FUNDING, title="Twee", value_per_euro_bp=20_000)
    ProjectFactory(state=S.FUNDING, title="Geen", value_per_euro_bp=None)
    ProjectFactory(state=S.FUNDING, title="Drie", value_per_euro_bp=31_234)
    ProjectFactory(state=S.FUNDING, title="Half", value_per_euro_bp=5_000)

    page = client.get("/api/v1/projects?sort=value").get_json()["items"]

    assert [p["title"] for p in page] == ["Drie", "Twee", "Half", "Geen"]
    assert [p["value_per_euro"] for p in page] == ["3.1234", "2.0000", "0.5000", None]
    html = client.get("/projects?sort=value").get_data(as_text=True)
    assert html.index("Drie") < html.index("Twee") < html.index("Half") < html.index("Geen")
    assert "€3.12 of social value expected per euro" in html
