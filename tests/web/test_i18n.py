"""Every page in Dutch and in English, with no string left untranslated.

The page list is the application's own: every GET route that answers HTML,
visited by the people it is for, with the ids of a settled worked example (a
retirement, a progress report, an evaluation, notices) filled in. A Dutch page
must not show any English sentence of the catalogue whose Dutch differs.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from sqlalchemy import select

from marketplace.accounts.models import Role
from marketplace.disputes import services as disputes
from marketplace.funding.models import Pledge
from marketplace.projects.models import Project
from tests.factories import (
    EvaluationFactory,
    OrganisationFactory,
    PoolFactory,
    ProgressReportFactory,
    ProjectFactory,
    RoundFactory,
    UserFactory,
)
from tests.integration.test_settlement import (  # noqa: F401 - the fixtures
    ENDED,
    retire,
    settled_example,
    worked_example,
)
from tests.support.links import open_links, secret_ids
from tests.support.obligations import accepted_obligation, obligation

TRANSLATIONS = Path(__file__).resolve().parents[2] / "marketplace" / "translations"
NOT_PAGES = {"evaluations.download", "dashboards.impact_csv", "dashboards.impact_pdf"}
NOT_PAGES |= {"registry.registry_csv", "registry.certificate", "web.health"}
NOT_PAGES |= {"obligations.export", "receipts.pdf", "funding.invoice"}


def catalogue() -> dict[str, str]:
    with (TRANSLATIONS / "nl" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return {
            m.id: m.string
            for m in read_po(handle)
            if m.id and isinstance(m.id, str) and not m.fuzzy
        }


def english_that_must_not_show(messages: dict[str, str]) -> list[str]:
    """Catalogue sentences (three words or more, placeholders cut off) that Dutch changes."""
    found = []
    for english, dutch in messages.items():
        if english == dutch:
            continue
        for piece in re.split(r"%\(\w+\)[sd]|%%", english):
            piece = piece.strip(" .,:;()")
            if len(piece.split()) >= 3:
                found.append(piece)
    return found


# An enum code or a database key where a word belongs ("project_listed", "sroi_obligation").
CODE = re.compile(r"\b[a-z]{2,}(?:_[a-z]{2,})+\b")


def words_not_for_people(html: str) -> list[str]:
    """Codes and cents on a page, outside <code> (an auditor's key, shown as such), form
    values and links."""
    html = re.sub(r"(?s)<code\b.*?</code>", " ", html)
    text = visible_text(html)
    return sorted(set(CODE.findall(text))) + re.findall(r"\b\d+ cents\b", text)


def visible_text(html: str) -> str:
    html = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", html)
    html = re.sub(r"(?s)<[^>]+>", " ", html)
    return " ".join(unescape(html).split())


def _plain(value):
    return tuple(value) if isinstance(value, list | tuple) else value


def test_the_catalogue_is_complete_and_compiled():
    with (TRANSLATIONS / "messages.pot").open("rb") as handle:
        wanted = {_plain(m.id) for m in read_po(handle) if m.id}
    with (TRANSLATIONS / "nl" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        dutch = read_po(handle)
    assert not dutch.fuzzy
    translated = {
        _plain(m.id)
        for m in dutch
        if m.id and not m.fuzzy and all(_plain(m.string) if m.pluralizable else [m.string])
    }
    assert wanted <= translated, sorted(map(str, wanted - translated))[:20]
    with (TRANSLATIONS / "nl" / "LC_MESSAGES" / "messages.mo").open("rb") as handle:
        compiled = {_plain(m.id): _plain(m.string) for m in read_mo(handle) if m.id}
    assert compiled == {_plain(m.id): _plain(m.string) for m in dutch if m.id}, (
        "the compiled catalogue is stale: run make translations"
    )


@pytest.fixture
def everything(client, session, auth_headers, settled_example):
    """A settled project with a retirement, a running one with a report, an open evaluation."""
    project, admin, bank = settled_example.project, settled_example.admin, settled_example.bank
    retirement = retire(client, auth_headers(bank), project.id, 10, "i18n").json
    owner = project.created_by
    report = ProgressReportFactory(project_id=ProjectFactory(state="running").id)
    open_evaluation = EvaluationFactory(declared_at=None, declaration="")  # to be signed
    session.commit()
    # A concern upheld with a correction (the project page and the buffer page show its
    # finding) and one still to triage.
    concern = disputes.file_concern(
        session,
        bank,
        project.id,
        text="The payroll records do not match the employers' own.",
        now=LATER,
    )
    disputes.open_dispute(
        session, admin, concern.id, reason="Payroll records contested by an employer.", now=LATER
    )
    outcome = session.get(Project, project.id).outcomes[0]
    disputes.uphold(
        session,
        admin,
        concern.id,
        finding="Two of the jobs ended within the first month.",
        corrections=[disputes.Correction(outcome.id, 12)],
        now=LATER,
    )
    to_triage = disputes.file_concern(
        session,
        bank,
        project.id,
        text="A second look at the evidence of the jobs, please.",
        now=LATER,
    )
    # A social-return obligation accepted by its authority, one retirement credited to it,
    # and one still pending for the authority to decide.
    contracting = OrganisationFactory(name="Gemeente Schiedam", sroi_factor=Decimal(1))
    authority = UserFactory(role=Role.AUTHORITY, organisation=contracting)
    session.commit()

    accepted = accepted_obligation(session, bank, authority, "SCH-2026-1", LATER)
    obligation(session, bank, contracting.id, "SCH-2026-2", LATER)  # still to decide
    session.commit()
    credited = retire(
        client,
        auth_headers(bank),
        project.id,
        5,
        "i18n-sroi",
        purpose="sroi_obligation",
        obligation_id=accepted,
    )
    assert credited.status_code == 201, credited.json
    session.commit()
    evaluator = session.get(UserFactory._meta.model, open_evaluation.evaluator_id)
    # A funding round with the settled project and a draft in it.
    funding_round = RoundFactory(themes=["work"], cities=["Rotterdam"])
    session.execute(
        Project.__table__.update().where(Project.id == project.id).values(round_id=funding_round.id)
    )
    draft = ProjectFactory(
        organisation=owner.organisation, created_by=owner, round_id=funding_round.id
    )
    owner.is_owner = True
    session.flush()
    links = open_links(session, owner, "i18n.example")
    session.commit()
    return {
        "people": {
            None: None,
            "admin": admin.email,
            "buyer": bank.email,
            "entrepreneur": owner.email,
            "evaluator": evaluator.email,
            "authority": authority.email,
        },
        "ids": {
            "project_id": project.id,
            "retirement_id": retirement["id"],
            "evaluation_id": open_evaluation.id,
            "organisation_id": owner.organisation_id,
            "serial": f"SOM-P{project.id:06d}-2027-0000001",
            "concern_id": to_triage.id,
            "obligation_id": accepted,
            "round_id": funding_round.id,
            "pool_id": PoolFactory(
                organisation_id=bank.organisation_id, created_by_id=bank.id, name="Zuid Fonds"
            ).id,
            **secret_ids(links),
        },
        "draft": draft.id,
        "report_project": report.project_id,
    }


LATER = ENDED + timedelta(days=30)  # a month after the settlement

PAGES_BY_PERSON = {
    None: [
        "web.home",
        "accounts.login",
        "accounts.register_page",
        "projects.marketplace",
        "projects.detail",
        "catalogue.catalogue",
        "catalogue.calculator",
        "registry.registry",
        "registry.retirement",
        "registry.trail",
        "dashboards.organisation",
        "accounts.forgot_password",
        "accounts.verify",
        "accounts.reset_password",
        "accounts.confirm_email",
        "accounts.accept_invitation",
        "disputes.buffer",
        "rounds.listing",
        "rounds.detail",
    ],
    "buyer": [
        "dashboards.dashboard",
        "funding.pledges",
        "registry.holdings",
        "notifications.notices",
        "accounts.account",
        "accounts.colleagues",
        "accounts.organisation_profile",
        "settlement.settlement_page",
        "projects.detail",
        "disputes.new_concern",
        "obligations.listing",
        "obligations.new",
        "obligations.detail",
        "pools.listing",
        "pools.detail",
    ],
    "authority": ["obligations.listing", "obligations.detail", "notifications.notices"],
    "entrepreneur": [
        "dashboards.dashboard",
        "projects.mine",
        "projects.new",
        "projects.edit",
        "funding.payouts",
        "funding.project_funding",
        "notifications.notices",
        "accounts.account",
        "accounts.colleagues",
        "accounts.organisation_profile",
    ],
    "evaluator": ["evaluations.queue", "evaluations.form", "notifications.notices"],
    "admin": [
        "dashboards.dashboard",
        "projects.review",
        "evaluations.queue",
        "evaluations.form",
        "reconciliation.ledger",
        "notifications.outbox",
        "audit.log",
        "catalogue.new_outcome_type",
        "funding.project_funding",
        "evaluations.evaluators",
        "disputes.concerns",
        "disputes.concern",
        "rounds.new",
        "rounds.edit",
    ],
}


def test_every_page_is_listed_here(app):
    pages = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods
        and not rule.rule.startswith(("/api", "/static", "/webhooks"))
        and rule.endpoint not in NOT_PAGES
    }
    listed = {page for pages in PAGES_BY_PERSON.values() for page in pages}
    assert pages == listed


@pytest.mark.parametrize("person", list(PAGES_BY_PERSON))
def test_every_page_in_dutch_and_english(app, web, everything, person):
    from flask import url_for

    english = english_that_must_not_show(catalogue())
    browser = web.as_user(everything["people"][person]) if person else web
    for endpoint in PAGES_BY_PERSON[person]:
        with app.test_request_context():
            rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
            ids = everything["ids"]
            values = {name: ids.get((endpoint, name), ids.get(name)) for name in rule.arguments}
            if endpoint == "projects.edit":
                values["project_id"] = everything["draft"]
            path = url_for(endpoint, **values)
        for language in ("en", "nl"):
            browser.client.set_cookie("som_lang", language)
            page = browser.get(path)
            assert page.status_code == 200, (person, path, language)
            html = page.get_data(as_text=True)
            assert f'<html lang="{language}">' in html
            if language == "nl":
                text = visible_text(html)
                # Whole words only: "Harris listed for funding" (a name and a
                # history reason) is not the sentence "is listed for funding".
                left = [
                    sentence
                    for sentence in english
                    if sentence in text and re.search(rf"\b{re.escape(sentence)}\b", text)
                ]
                assert not left, (path, left)
                assert words_not_for_people(html) == [], (path, words_not_for_people(html))
    browser.client.set_cookie("som_lang", "nl")
    assert "Uitloggen" in browser.get("/").get_data(as_text=True) or person is None


def test_the_services_messages_reach_a_dutch_page_in_dutch(app, web, session, worked_example):
    project, admin = worked_example
    session.rollback()
    buyer_organisation = session.scalars(select(Pledge).order_by(Pledge.id)).first().organisation
    conflicted = UserFactory(role=Role.EVALUATOR, organisation=buyer_organisation)
    session.commit()
    panel = web.as_user(admin.email)
    panel.client.set_cookie("som_lang", "nl")

    refused = panel.submit(
        "/evaluations",
        {"evaluator_id": str(conflicted.id)},
        action=f"/projects/{project.id}/evaluator",
    )

    assert refused.status_code == 409
    page = visible_text(refused.get_data(as_text=True))
    assert "De organisatie van de beoordelaar heeft aan dit project toegezegd." in page
    assert "pledged to this project" not in page


def _length_error() -> str:
    import marshmallow as ma

    from marketplace.core import validate

    with pytest.raises(ma.ValidationError) as refused:
        validate.Length(min=1, max=200)("")
    return refused.value.messages[0]


def _tokens_refusal() -> str:
    from marketplace.funding.services import InsufficientTokens

    return InsufficientTokens(
        "Only %(left)s tokens remain; you asked for %(tokens)s.",
        params={"left": 3, "tokens": 1500},
    ).message


def _file_refusal() -> str:
    from outcomes.errors import ValidationFailed
    from outcomes.evidence import check_upload

    with pytest.raises(ValidationFailed) as refused:
        check_upload("a.pdf", b"%PDF-1.4" + b"x" * (11 * 1024 * 1024), max_bytes=10 * 1024 * 1024)
    return refused.value.errors["file"][0]


def _state_refusal() -> str:
    from marketplace.funding.models import PledgeState
    from marketplace.funding.states import LIFECYCLE

    class Row:
        state = PledgeState.PAYMENT_FAILED

    with pytest.raises(Exception) as refused:
        LIFECYCLE.move(None, Row(), PledgeState.RELEASED, actor_id=None, now=None)
    return refused.value.message


@pytest.mark.parametrize(
    ("make", "api", "english", "dutch"),
    [
        (lambda: "Zero or more.", "Zero or more.", "Zero or more.", "Nul of meer."),
        (
            _length_error,
            "Length must be between 1 and 200.",
            "Length must be between 1 and 200.",
            "De lengte moet tussen 1 en 200 liggen.",
        ),
        (
            _tokens_refusal,
            "Only 3 tokens remain; you asked for 1500.",
            "Only 3 tokens remain; you asked for 1,500.",
            "Er zijn nog maar 3 tokens; u vroeg er 1.500.",
        ),
        (
            _file_refusal,
            "The file is larger than 10 MB.",
            "The file is larger than 10 MB.",
            "Het bestand is groter dan 10 MB.",
        ),
        (
            _state_refusal,
            "A payment_failed pledge cannot become released.",
            "A payment failed pledge cannot become released.",
            "Een toezegging met status betaling mislukt kan niet vrijgegeven worden.",
        ),
        (
            lambda: "Something no catalogue has.",
            "Something no catalogue has.",
            "Something no catalogue has.",
            "Something no catalogue has.",
        ),
    ],
)
def test_messages_with_and_without_figures_are_shown_in_dutch(app, make, api, english, dutch):
    """Refusals and validators give templates with figures; a page translates the template
    and formats the figures for the reader (no message is matched against patterns)."""
    from marketplace.web.messages import translated

    message = make()
    assert message == api  # what the API sends
    with app.test_request_context(headers={"Accept-Language": "nl"}):
        assert translated(message) == dutch
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert translated(message) == english


def test_a_refused_filter_with_figures_is_named_in_dutch(client):
    """A validator's message with figures reaches a Dutch page translated (the page's
    error list keeps each message's template through flattening)."""
    page = client.get("/projects?page=9999999&q=a%00b", headers={"Accept-Language": "nl"}).get_data(
        as_text=True
    )

    assert "Moet minstens 1 en hoogstens 1.000.000 zijn." in page
    assert "Eén regel, zonder besturingstekens." in page
    assert "Must be greater" not in page


def test_history_reasons_read_in_the_readers_language_with_money_formatted(
    app, client, session, auth_headers
):
    """Issue 16: "valued at 1506 tokens of 3736 cents" in English on a Dutch page."""
    from tests.integration.test_settlement import listed_worked_example

    project, _admin = listed_worked_example(session)
    client.set_cookie("som_lang", "nl")
    dutch = " ".join(client.get(f"/projects/{project.id}").get_data(as_text=True).split())
    client.set_cookie("som_lang", "en")
    english = " ".join(client.get(f"/projects/{project.id}").get_data(as_text=True).split())
    api = client.get(f"/api/v1/projects/{project.id}/history").json

    valued = next(h for h in session.get(type(project), project.id).history if h.reason_params)
    price = valued.reason_params["price_cents"]
    euros, cents = divmod(price, 100)
    assert "gewaardeerd op" in dutch and "aangeboden voor financiering" in dutch
    assert f"€ {euros},{cents:02d}" in dutch  # the token price, formatted in Dutch
    assert "cents" not in dutch and "valued at" not in dutch
    assert f"€{euros}.{cents:02d} each" in english and "cents" not in english
    stated = next(h for h in api if h["to_state"] == "valued")["reason"]
    assert stated.startswith("valued at ") and "%(" not in stated
    assert f"EUR {euros}.{cents:02d}" in stated


@pytest.mark.parametrize(
    ("language", "notice"),
    [("nl", "Log in om deze pagina te zien."), ("en", "Log in to see this page.")],
)
def test_the_sign_in_notice_speaks_the_readers_language(client, language, notice):
    """Flask-Login's own notice was English on a Dutch login page."""
    client.set_cookie("som_lang", language)

    page = client.get("/holdings", follow_redirects=True)

    assert page.request.path == "/login"
    assert notice in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "method", "title", "english"),
    [
        ("/nowhere", "get", "Niet gevonden", "Not Found"),
        ("/logout", "get", "Hier niet mogelijk", "Method Not Allowed"),
    ],
)
def test_the_http_error_pages_speak_dutch(client, path, method, title, english):
    """werkzeug's names of statuses ("Method Not Allowed") were English on Dutch pages."""
    client.set_cookie("som_lang", "nl")

    page = getattr(client, method)(path)
    html = page.get_data(as_text=True)

    assert page.status_code in (404, 405)
    assert f"<h1>{title}</h1>" in html
    assert english not in html
