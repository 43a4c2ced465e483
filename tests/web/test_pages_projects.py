"""The project pages, used as each person would."""

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from marketplace.projects.models import Project, ProjectState
from tests.factories import ProjectFactory, UserFactory

S = ProjectState
SOON = date.today() + timedelta(days=40)


def html(response):
    return response.get_data(as_text=True)


def form(**overrides):
    values = {
        "action": "save",
        "rows": "3",
        "title": "Werkplaats Delfshaven",
        "summary": "Twenty people from social assistance into paid work.",
        "city": "Rotterdam",
        "theme": "work",
        "budget": "60000",
        "premium": "25",
        "funding_deadline": SOON.isoformat(),
        "start_date": (SOON + timedelta(days=1)).isoformat(),
        "end_date": (SOON + timedelta(days=366)).isoformat(),
        "outcomes-0-outcome_type": "EMP_BIJSTAND_TO_WORK",
        "outcomes-0-target_quantity": "20",
        "outcomes-0-evidence_grade": "C",
        "outcomes-1-evidence_grade": "C",
        "outcomes-2-evidence_grade": "C",
    }
    values.update(overrides)
    return values


@pytest.fixture
def entrepreneur(web):
    user = UserFactory(entrepreneur=True, email="samira@buurtwerk.example")
    web.login(user.email)
    return user


@pytest.fixture
def admin(web):
    user = UserFactory(admin=True, email="anouk@panel.example")
    web.login(user.email)
    return user


def test_the_marketplace_lists_public_projects_with_their_progress(client):
    ProjectFactory(state=S.FUNDING, title="Thuis op Zuid")
    ProjectFactory(state=S.DRAFT, title="Secret draft")

    page = html(client.get("/projects"))

    assert "Thuis op Zuid" in page
    assert "Secret draft" not in page
    assert "1 project" in page
    assert "0 of 2,540 tokens pledged" in page
    assert "€29.53 a token" in page


def test_a_project_no_longer_funding_does_not_invite_pledges(client):
    ProjectFactory(state=S.WITHDRAWN, title="Koppelkansen")
    ProjectFactory(state=S.FUNDING, title="Werkplaats Zuid")

    first = html(client.get("/projects"))  # open for funding first, the rest a filter away
    page = html(client.get("/projects?state="))

    assert "Werkplaats Zuid" in first and "Koppelkansen" not in first
    assert 'value="funding" selected' in first
    assert "Koppelkansen" in page
    assert page.count("a token · funding until") == 1


def test_the_marketplace_filters_and_pages(client):
    for n in range(14):
        ProjectFactory(
            state=S.FUNDING, title=f"Project {n:02d}", city="Schiedam" if n < 3 else "Rotterdam"
        )

    first = html(client.get("/projects?sort=title"))
    second = html(client.get("/projects?sort=title&page=2"))
    schiedam = html(client.get("/projects?city=Schiedam"))

    assert "Project 00" in first and "Project 12" not in first
    assert "Project 12" in second and "Page 2 of 2" in second
    assert "3 projects" in schiedam


def test_bad_filters_are_named_and_the_rest_still_lists(client):
    ProjectFactory(state=S.FUNDING, title="Thuis op Zuid")

    response = client.get("/projects?state=dreaming&sort=random&page=-3")

    assert response.status_code == 422
    page = html(response)
    assert "Thuis op Zuid" in page  # listed without the filters it could not read
    for name in ("state", "sort", "page"):
        assert f'href="#{name}"' in page


def test_a_public_project_page_shows_its_figures_and_history(client):
    project = ProjectFactory(state=S.FUNDING, title="Thuis op Zuid")

    page = html(client.get(f"/projects/{project.id}"))

    assert "Thuis op Zuid" in page
    assert "€60,000.00" in page
    assert "Person on social assistance (bijstand) into paid work" in page
    assert 'class="funding"' in page


def test_a_draft_page_is_hidden_from_everyone_but_its_organisation(client, web):
    project = ProjectFactory(state=S.DRAFT)
    owner = UserFactory(entrepreneur=True, organisation=project.organisation)

    assert client.get(f"/projects/{project.id}").status_code == 404
    web.login(owner.email)
    assert web.get(f"/projects/{project.id}").status_code == 200


def test_an_entrepreneur_creates_a_draft_with_the_form(web, entrepreneur, session):
    response = web.submit("/projects/new", form())

    assert response.status_code == 302
    session.rollback()
    project = session.scalars(select(Project)).one()
    assert (project.state, project.budget_cents, project.organisation_id) == (
        S.DRAFT,
        6_000_000,
        entrepreneur.organisation_id,
    )
    assert [c.target_quantity for c in project.outcomes] == [20]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"budget": "60.000.00"}, "budget"),  # one separator for groups and cents
        ({"budget": ""}, "budget"),
        ({"premium": "lots"}, "premium"),
        ({"end_date": SOON.isoformat()}, "end_date"),
        ({"funding_deadline": "not a date"}, "funding_deadline"),
        ({"outcomes-0-target_quantity": "0"}, "outcomes-0-target_quantity"),
        (
            {
                "outcomes-0-outcome_type": "",
                "outcomes-0-target_quantity": "",
                "outcomes-2-outcome_type": "WELLBY",
                "outcomes-2-target_quantity": "2.5",
            },
            "outcomes-2-target_quantity",
        ),
        ({"title": ""}, "title"),
    ],
)
def test_a_bad_project_form_shows_the_error_by_its_field(
    web, entrepreneur, session, overrides, field
):
    response = web.submit("/projects/new", form(**overrides))

    assert response.status_code == 422
    assert f'id="{field}-error"' in html(response) or f'id="{field}"' in html(response)
    assert 'class="error-summary"' in html(response)
    session.rollback()
    assert session.scalars(select(Project)).all() == []


def test_adding_an_outcome_row_keeps_the_form(web, entrepreneur):
    response = web.submit("/projects/new", form(action="add_line"))

    assert response.status_code == 200
    page = html(response)
    assert 'id="outcomes-3-outcome_type"' in page
    assert 'value="Werkplaats Delfshaven"' in page


def test_the_owner_edits_submits_and_withdraws(web, entrepreneur, session):
    project = ProjectFactory(state=S.DRAFT, organisation=entrepreneur.organisation)

    edit = web.get(f"/projects/{project.id}/edit")
    assert 'value="60000"' in html(edit)
    saved = web.submit(f"/projects/{project.id}/edit", form(title="Werkplaats Zuid"))
    assert saved.status_code == 302
    submitted = web.submit(f"/projects/{project.id}", {}, action=f"/projects/{project.id}/submit")
    assert submitted.status_code == 302
    assert web.get(f"/projects/{project.id}/edit").status_code == 302  # no longer a draft
    unexplained = web.submit(
        f"/projects/{project.id}", {"reason": "  "}, action=f"/projects/{project.id}/withdraw"
    )
    assert unexplained.status_code == 422
    assert "Say why the project is withdrawn" in html(unexplained)
    review = web.submit(
        f"/projects/{project.id}",
        {"reason": "Funded elsewhere."},
        action=f"/projects/{project.id}/withdraw",
    )
    assert "leaves the marketplace for good" in html(review)
    session.rollback()
    assert session.get(Project, project.id).state is S.SUBMITTED  # not before confirming
    session.rollback()
    withdrawn = web.confirm(
        f"/projects/{project.id}",
        {"reason": "Funded elsewhere."},
        action=f"/projects/{project.id}/withdraw",
    )

    assert withdrawn.status_code == 302
    session.rollback()
    stored = session.get(Project, project.id)
    assert (stored.title, stored.state) == ("Werkplaats Zuid", S.WITHDRAWN)
    history = html(web.get(f"/projects/{project.id}"))
    assert "Funded elsewhere." in history


def test_submitting_twice_shows_a_409_on_the_page(web, entrepreneur):
    project = ProjectFactory(state=S.SUBMITTED, organisation=entrepreneur.organisation)

    response = web.submit(f"/projects/{project.id}", {}, action=f"/projects/{project.id}/submit")

    assert response.status_code == 409
    assert "cannot become submitted" in html(response)


def test_another_organisation_cannot_use_the_owner_forms(web, entrepreneur):
    project = ProjectFactory(state=S.FUNDING)

    assert web.get(f"/projects/{project.id}/edit").status_code == 403
    response = web.submit(f"/projects/{project.id}", {}, action=f"/projects/{project.id}/withdraw")
    assert response.status_code == 403


def test_the_panel_values_with_an_override_lists_and_the_reason_is_public(
    web, admin, client, session
):
    project = ProjectFactory(state=S.SUBMITTED)
    queue = html(web.get("/review"))
    assert project.title in queue
    page = f"/projects/{project.id}"

    refused = web.submit(
        page,
        {"overrides-0-outcome_type": "EMP_BIJSTAND_TO_WORK", "overrides-0-deadweight": "0.4"},
        action=f"/projects/{project.id}/valuation",
    )
    assert refused.status_code == 422
    assert "overrides-0-reason" in html(refused)

    valued = web.submit(
        page,
        {
            "overrides-0-outcome_type": "EMP_BIJSTAND_TO_WORK",
            "overrides-0-deadweight": "40 %",  # a fraction, written as the page prints it
            "overrides-0-reason": "Rotterdam data: 40% find work anyway.",
            "premium": "20%",
        },
        action=f"/projects/{project.id}/valuation",
    )
    assert valued.status_code == 302
    listed = web.submit(page, {}, action=f"/projects/{project.id}/list")
    assert listed.status_code == 302

    public = html(client.get(page))
    assert "Rotterdam data: 40% find work anyway." in public
    assert "funding" in public
    session.rollback()
    assert session.get(Project, project.id).premium_rate * 100 == 20


def test_the_panel_rejects_with_a_reason(web, admin):
    project = ProjectFactory(state=S.SUBMITTED)

    missing = web.submit(
        f"/projects/{project.id}", {"reason": "no"}, action=f"/projects/{project.id}/reject"
    )
    done = web.submit(
        f"/projects/{project.id}",
        {"reason": "The outcomes cannot be measured."},
        action=f"/projects/{project.id}/reject",
    )

    assert missing.status_code == 422
    assert done.status_code == 302
    assert "The outcomes cannot be measured." in html(web.get(f"/projects/{project.id}"))


@pytest.mark.parametrize("role", ["entrepreneur", "buyer", "evaluator"])
def test_only_the_panel_values_lists_and_rejects(web, role):
    project = ProjectFactory(state=S.SUBMITTED)
    user = (
        UserFactory(
            role=role, organisation=project.organisation if role == "entrepreneur" else None
        )
        if role == "entrepreneur"
        else UserFactory(role=role)
    )
    web.login(user.email)

    for action in ("valuation", "list", "reject"):
        response = web.submit(
            "/",
            {"reason": "Not convincing enough here."},
            action=f"/projects/{project.id}/{action}",
        )
        assert response.status_code in (403, 404), action


def test_my_projects_and_the_review_queue_belong_to_their_roles(web):
    buyer = UserFactory(buyer=True)
    web.login(buyer.email)

    assert web.get("/my/projects").status_code == 403
    assert web.get("/review").status_code == 403


def test_money_and_percentages_are_read_as_printed_and_each_error_names_its_field(
    web, entrepreneur, session
):
    bad = web.submit(
        "/projects/new",
        form(
            funding_deadline="31-02-2027",
            start_date="soon",
            end_date="",
            **{"outcomes-0-target_quantity": "lots"},
        ),
    )
    assert bad.status_code == 422
    summary = " ".join(html(bad).split("error-summary", 1)[1].split("</div>", 1)[0].split())
    for named in ("Funding deadline:", "Start date:", "End date:", "Line 1, target:"):
        assert named in summary, summary

    made = web.submit("/projects/new", form(budget="€ 45.000,50", premium="20 %"))
    assert made.status_code == 302
    session.rollback()
    project = session.scalars(select(Project).order_by(Project.id.desc())).first()
    assert (project.budget_cents, str(project.premium_rate.normalize())) == (4_500_050, "0.2")


@pytest.mark.parametrize(
    ("state", "says"),
    [
        (S.FUNDED, "the cost tranche is paid out to you"),
        (S.RUNNING, "Tell the buyers how it goes with a progress report"),
        (S.EVALUATING, "An independent evaluator is checking the results"),
        (S.SETTLED, "you were paid for what was verified"),
        (S.UNFUNDED, "every buyer was refunded in full"),
    ],
)
def test_the_owners_card_says_what_happens_next_in_every_stage(web, entrepreneur, state, says):
    project = ProjectFactory(state=state, organisation=entrepreneur.organisation)

    page = html(web.get(f"/projects/{project.id}"))

    assert "Your project" in page and says in page
