"""The catalogue and valuation preview in the JSON API."""

import pytest
from sqlalchemy import select

from outcomes.catalogue import OutcomeType
from tests.factories import UserFactory

PROBLEM = "application/problem+json"
CONTRACT_FIELDS = {
    "code",
    "name",
    "unit",
    "proxy_value",
    "currency",
    "per",
    "price_year",
    "basis",
    "haircut",
    "deadweight",
    "displacement",
    "attribution",
    "drop_off",
    "duration_years",
    "source",
    "url",
}
WORKED = {
    "valuation_year": 2027,
    "lines": [
        {"outcome_type": "EMP_BIJSTAND_TO_WORK", "quantity": 20},
        {"outcome_type": "YOUTH_NEET_TO_EET", "quantity": 10},
    ],
}


@pytest.fixture
def buyer(auth_headers):
    return auth_headers(UserFactory(buyer=True))


@pytest.fixture
def admin(auth_headers):
    return auth_headers(UserFactory(admin=True))


def test_the_catalogue_is_public_with_every_contract_field(client):
    response = client.get("/api/v1/outcome-types")

    assert response.status_code == 200
    items = response.get_json()
    assert len(items) == 14
    assert set(items[0]) >= CONTRACT_FIELDS
    emp = next(i for i in items if i["code"] == "EMP_BIJSTAND_TO_WORK")
    assert (emp["proxy_value"], emp["currency"], emp["per"], emp["price_year"]) == (
        "16428.72",
        "EUR",
        "year",
        2025,
    )
    assert emp["url"].startswith("https://")


def test_the_catalogue_filters(client):
    items = client.get("/api/v1/outcome-types?basis=wellbeing").get_json()

    assert [i["code"] for i in items] == ["WELLBY"]


@pytest.mark.parametrize("query", ["basis=vibes", "per=weekly", "include_retired=perhaps"])
def test_a_bad_filter_is_422_naming_it(client, query):
    response = client.get(f"/api/v1/outcome-types?{query}")

    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == [query.split("=")[0]]


def test_the_preview_values_the_worked_example(client, buyer):
    response = client.post("/api/v1/valuations/preview", json=WORKED, headers=buyer)

    assert response.status_code == 200
    body = response.get_json()
    assert body["method_version"] == 1
    assert body["total_conservative_value_cents"] == 30577657
    assert body["tokens_total"] == 3057
    first = body["lines"][0]
    assert (
        first["gross_cents"],
        first["year1_cents"],
        first["present_value_cents"],
        first["conservative_value_cents"],
    ) == (34184881, 18459836, 38874320, 27212024)
    assert [row["parameter"] for row in body["sensitivity"]] == [
        "proxy_value",
        "deadweight",
        "displacement",
        "attribution",
        "drop_off",
        "duration_years",
        "discount_rate",
    ]
    assert body["parameters"]["discount_rate"] == "0.0225"


def test_the_preview_takes_decimals_as_numbers_or_strings(client, buyer):
    as_number = {
        **WORKED,
        "discount_rate": 0.03,
        "lines": [{"outcome_type": "EMP_BIJSTAND_TO_WORK", "quantity": 20, "deadweight": 0.3}],
    }
    as_string = {
        **WORKED,
        "discount_rate": "0.03",
        "lines": [{"outcome_type": "EMP_BIJSTAND_TO_WORK", "quantity": 20, "deadweight": "0.3"}],
    }

    one = client.post("/api/v1/valuations/preview", json=as_number, headers=buyer).get_json()
    two = client.post("/api/v1/valuations/preview", json=as_string, headers=buyer).get_json()

    assert one["total_present_value_cents"] == two["total_present_value_cents"]
    assert one["lines"][0]["deadweight"] == "0.3"


def line(**overrides):
    return {"outcome_type": "EMP_BIJSTAND_TO_WORK", "quantity": 20, **overrides}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"valuation_year": 2027, "lines": [line(outcome_type="NO_SUCH_TYPE")]},
            "lines.0.outcome_type",
        ),
        ({"valuation_year": 2027, "lines": [line(), line(quantity=-3)]}, "lines.1.quantity"),
        ({"valuation_year": 2027, "lines": [line(quantity=2.5)]}, "lines.0.quantity"),
        ({"valuation_year": 2027, "lines": [line(quantity="many")]}, "lines.0.quantity"),
        ({"valuation_year": 2027, "lines": [line(quantity=True)]}, "lines.0.quantity"),
        ({"valuation_year": 2027, "lines": [line(deadweight=0.96)]}, "lines.0.deadweight"),
        ({"valuation_year": 2027, "lines": [line(displacement=-0.1)]}, "lines.0.displacement"),
        ({"valuation_year": 2027, "lines": [line(attribution="NaN")]}, "lines.0.attribution"),
        ({"valuation_year": 2027, "lines": [line(drop_off=1)]}, "lines.0.drop_off"),
        ({"valuation_year": 2027, "lines": [line(duration_years=0)]}, "lines.0.duration_years"),
        ({"valuation_year": 2027, "lines": [line(evidence_grade="E")]}, "lines.0.evidence_grade"),
        ({"valuation_year": 2027, "lines": []}, "lines"),
        ({"valuation_year": 2027}, "lines"),
        ({"valuation_year": 2027, "lines": "all of them"}, "lines"),
        ({"lines": [line()]}, "valuation_year"),
        ({"valuation_year": 1066, "lines": [line()]}, "valuation_year"),
        ({"valuation_year": 2027, "discount_rate": -0.01, "lines": [line()]}, "discount_rate"),
        ({"valuation_year": 2027, "inflation": "lots", "lines": [line()]}, "inflation"),
        ({"valuation_year": 2027, "lines": [line(colour="red")]}, "lines.0.colour"),
    ],
)
def test_bad_preview_input_is_422_naming_the_field(client, buyer, body, field):
    response = client.post("/api/v1/valuations/preview", json=body, headers=buyer)

    assert response.status_code == 422
    assert response.content_type == PROBLEM
    assert field in response.get_json()["errors"]


def test_a_preview_of_more_lines_than_allowed_is_refused(client, buyer):
    body = {"valuation_year": 2027, "lines": [line()] * 1001}

    response = client.post("/api/v1/valuations/preview", json=body, headers=buyer)

    assert response.status_code == 422
    assert "lines" in response.get_json()["errors"]


def test_the_preview_needs_a_token(client):
    assert client.post("/api/v1/valuations/preview", json=WORKED).status_code == 401


NEW_TYPE = {
    "code": "EMP_YOUTH_TO_WORK",
    "name": "Young person into paid work",
    "unit": "person",
    "proxy_value": "12000.50",
    "currency": "EUR",
    "per": "year",
    "price_year": 2025,
    "basis": "fiscal",
    "haircut": "1",
    "deadweight": "0.25",
    "displacement": "0.1",
    "attribution": "0.2",
    "drop_off": "0.3",
    "duration_years": 2,
    "source": "Gemeente Rotterdam, Werk en Inkomen 2025",
    "url": "https://example.org/werk",
    "licence": "public figure",
}
TAGS = {
    "esrs_topic": "S3",
    "esrs_disclosure": "S3-4",
    "sdg_targets": ["8.5", "8.6"],
    "tags_source": "ESRS S3 DR S3-4; SDG targets 8.5, 8.6 (UN A/RES/71/313)",
}


def test_an_admin_adds_and_retires_an_outcome_type(client, admin):
    created = client.post("/api/v1/outcome-types", json=NEW_TYPE, headers=admin)

    assert created.status_code == 201
    assert created.get_json()["proxy_value"] == "12000.5"
    again = client.post("/api/v1/outcome-types", json=NEW_TYPE, headers=admin)
    assert (again.status_code, again.get_json()["code"]) == (409, "outcome_type_exists")

    retired = client.post("/api/v1/outcome-types/EMP_YOUTH_TO_WORK/retire", headers=admin)

    assert retired.status_code == 200
    assert retired.get_json()["retired_at"]
    listed = {i["code"] for i in client.get("/api/v1/outcome-types").get_json()}
    assert "EMP_YOUTH_TO_WORK" not in listed
    assert client.get("/api/v1/outcome-types/EMP_YOUTH_TO_WORK").get_json()["retired_at"]


def test_the_shipped_value_bank_carries_its_reporting_tags_with_their_source(client):
    shown = client.get("/api/v1/outcome-types/YOUTH_NEET_TO_EET").get_json()

    assert (shown["esrs_topic"], shown["esrs_disclosure"]) == ("S3", "S3-4")
    assert shown["sdg_targets"] == ["8.6", "4.4"]
    assert "2023/2772" in shown["tags_source"] and "A/RES/71/313" in shown["tags_source"]
    every = client.get("/api/v1/outcome-types").get_json()
    assert all(t["esrs_topic"] and t["sdg_targets"] and t["tags_source"] for t in every)
    page = client.get("/outcomes").get_data(as_text=True)
    assert "S3-4" in page and "8.6" in page


def test_an_admin_tags_a_new_outcome_type(client, admin):
    created = client.post("/api/v1/outcome-types", json={**NEW_TYPE, **TAGS}, headers=admin)

    assert created.status_code == 201, created.get_json()
    assert created.get_json()["sdg_targets"] == ["8.5", "8.6"]
    assert created.get_json()["esrs_disclosure"] == "S3-4"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("esrs_topic", "S9"),
        ("esrs_disclosure", "S1-4"),  # not a requirement of topic S3
        ("sdg_targets", ["18.1"]),
        ("sdg_targets", ["8.5", "8,6"]),
        ("tags_source", ""),
    ],
)
def test_wrong_or_untraced_tags_are_422_and_add_nothing(client, admin, session, field, value):
    response = client.post(
        "/api/v1/outcome-types", json={**NEW_TYPE, **TAGS, field: value}, headers=admin
    )

    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    session.rollback()
    assert session.scalar(select(OutcomeType).where(OutcomeType.code == NEW_TYPE["code"])) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code", "x"),
        ("proxy_value", "-5"),
        ("currency", "EURO"),
        ("per", "weekly"),
        ("deadweight", "0.99"),
        ("url", "not a url"),
        ("duration_years", 0),
        ("haircut", "2"),
    ],
)
def test_a_bad_new_outcome_type_is_422_and_adds_nothing(client, admin, session, field, value):
    response = client.post("/api/v1/outcome-types", json={**NEW_TYPE, field: value}, headers=admin)

    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    session.rollback()
    assert (
        session.scalar(select(OutcomeType).where(OutcomeType.code == "EMP_YOUTH_TO_WORK")) is None
    )


@pytest.mark.parametrize("role", ["entrepreneur", "buyer", "evaluator"])
def test_only_admins_change_the_catalogue(client, auth_headers, role):
    headers = auth_headers(UserFactory(role=role))

    assert client.post("/api/v1/outcome-types", json=NEW_TYPE, headers=headers).status_code == 403
    assert client.post("/api/v1/outcome-types/WELLBY/retire", headers=headers).status_code == 403


def test_retiring_an_unknown_type_is_404(client, admin):
    response = client.post("/api/v1/outcome-types/NOPE_NOPE/retire", headers=admin)

    assert response.status_code == 404
    assert response.content_type == PROBLEM
