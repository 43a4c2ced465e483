"""The catalogue page, the admin's catalogue forms and the valuation calculator."""

import re
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from outcomes.catalogue import OutcomeType
from tests.factories import UserFactory

WORKED = {
    "action": "calculate",
    "rows": 3,
    "valuation_year": 2027,
    "lines-0-outcome_type": "EMP_BIJSTAND_TO_WORK",
    "lines-0-quantity": "20",
    "lines-1-outcome_type": "YOUTH_NEET_TO_EET",
    "lines-1-quantity": "10",
}


def text_of(response):
    return response.get_data(as_text=True)


def test_the_catalogue_shows_every_value_with_its_source(client):
    html = text_of(client.get("/outcomes"))

    assert "14 outcome types" in html
    assert "€16,428.72" in html
    assert "£4,257.00" in html
    assert 'href="https://www.berekenuwrechtplus.nl/normenoverzicht/"' in html
    assert html.count('rel="noopener noreferrer external"') == 14


def test_the_catalogue_filters_by_text_and_basis(client):
    html = text_of(client.get("/outcomes?q=eviction&basis=fiscal"))

    assert "1 outcome type" in html
    assert "EVICTION_PREVENTED" in html
    assert "WELLBY" not in html


def test_a_bad_filter_shows_the_whole_catalogue_rather_than_an_error(client):
    response = client.get("/outcomes?basis=vibes")

    assert response.status_code == 200
    assert "14 outcome types" in text_of(response)


def test_the_calculator_values_the_worked_example(client):
    response = client.get("/valuation?" + urlencode(WORKED))

    assert response.status_code == 200
    html = text_of(response)
    assert "€305,776.57" in html  # total conservative value
    assert re.search(r"<dd>3,057</dd>", html)  # tokens
    assert "€272,120.24" in html and "€33,656.33" in html
    assert "<svg" in html and 'role="img"' in html
    assert html.count('class="t-low"') >= 7


def test_blank_rows_are_ignored_and_errors_sit_next_to_their_row(client):
    params = {**WORKED, "lines-1-quantity": "1.5", "lines-2-outcome_type": "WELLBY"}

    response = client.get("/valuation?" + urlencode(params))

    assert response.status_code == 422
    html = text_of(response)
    assert 'id="lines-1-quantity-error">Must be a whole number.' in html
    assert 'id="lines-2-quantity-error">Missing data for required field.' in html
    assert 'id="lines-0-quantity-error"' not in html


def test_an_unknown_outcome_type_is_shown_on_its_row(client):
    params = {**WORKED, "lines-1-outcome_type": "NOT_IN_CATALOGUE"}

    response = client.get("/valuation?" + urlencode(params))

    assert response.status_code == 422
    assert 'id="lines-1-outcome_type-error">Unknown outcome type' in text_of(response)


def test_adding_a_line_keeps_what_was_entered(client):
    response = client.get("/valuation?" + urlencode({**WORKED, "action": "add_line"}))

    html = text_of(response)
    assert 'name="rows" value="4"' in html
    assert 'id="lines-3-outcome_type"' in html
    assert 'id="lines-1-quantity" name="lines-1-quantity" type="text" value="10"' in html


@pytest.mark.parametrize("rows", ["-5", "lots", "1000000"])
def test_a_tampered_row_count_is_kept_in_bounds(client, rows):
    response = client.get(f"/valuation?rows={rows}")

    assert response.status_code == 200
    assert len(re.findall(r'<fieldset class="line">', text_of(response))) in (1, 3, 50)


def test_an_admin_adds_an_outcome_type_with_the_form(web, session):
    UserFactory(admin=True, email="anouk@panel.example")
    web.login("anouk@panel.example")
    form = {
        "code": "emp_youth_to_work",
        "name": "Young person into paid work",
        "unit": "person",
        "proxy_value": "12000.50",
        "currency": "eur",
        "per": "year",
        "price_year": "2025",
        "basis": "fiscal",
        "haircut": "1",
        "deadweight": "0.25",
        "displacement": "0.1",
        "attribution": "0.2",
        "drop_off": "0.3",
        "duration_years": "2",
        "source": "Gemeente Rotterdam",
        "url": "https://example.org/werk",
        "licence": "public",
    }

    refused = web.submit("/outcomes/new", {**form, "deadweight": "0.99"})
    assert refused.status_code == 422
    assert 'id="deadweight-error"' in text_of(refused)

    response = web.submit("/outcomes/new", form)

    assert response.status_code == 302
    session.rollback()
    stored = session.scalars(
        select(OutcomeType).where(OutcomeType.code == "EMP_YOUTH_TO_WORK")
    ).one()
    assert stored.currency == "EUR"


def test_an_admin_retires_a_type_from_the_catalogue_page(web, session):
    UserFactory(admin=True, email="anouk@panel.example")
    web.login("anouk@panel.example")

    response = web.submit("/outcomes", {}, action="/outcomes/WELLBY/retire")

    assert response.status_code == 302
    after = text_of(web.get(response.headers["Location"]))
    assert "WELLBY is retired" in after
    assert '<tr id="WELLBY"' not in after
    assert '<tr id="WELLBY" class="retired">' in text_of(web.get("/outcomes?include_retired=true"))


@pytest.mark.parametrize("role", ["buyer", "entrepreneur", "evaluator"])
def test_other_roles_cannot_use_the_catalogue_forms(web, role):
    UserFactory(role=role, email="someone@example.org")
    web.login("someone@example.org")

    assert web.get("/outcomes/new").status_code == 403
    assert web.submit("/outcomes", {}, action="/outcomes/WELLBY/retire").status_code == 403
    assert "Retire" not in text_of(web.get("/outcomes"))
