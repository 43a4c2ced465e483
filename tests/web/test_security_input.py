"""Finding 4 of issue 15: odd input is a clear 4xx naming its field, never a 500, and
changes nothing. Each reproduction of the finding is here; the fuzzers in
test_parser_fuzz.py generate these classes of input as well.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import Role
from marketplace.payments.models import PaymentSetup
from marketplace.projects.models import Project
from tests.factories import PaymentSetupFactory, UserFactory
from tests.integration.funding_support import buyer, listed_project, payment_intents
from tests.integration.test_webhooks import signed
from tests.web.test_api_projects import body

DEEP = "[" * 5000 + "]" * 5000
HUGE_NUMBER = "9" * 5000


def post_raw(client, path: str, raw: str, headers: dict):
    return client.post(
        path,
        data=raw.encode("utf-8", "surrogatepass"),
        content_type="application/json",
        headers=headers,
    )


@pytest.mark.parametrize("tokens", ["²", "--5", "٣", "+-1", "1e3", " 5 5 "])
def test_a_token_count_that_is_no_whole_number_is_422(client, auth_headers, tokens):
    project = listed_project()

    answer = client.post(
        f"/api/v1/projects/{project.id}/pledges",
        json={"tokens": tokens, "payment_method": "pm_card_visa"},
        headers=auth_headers(buyer()),
    )

    assert answer.status_code == 422
    assert "tokens" in answer.json["errors"]


@pytest.mark.parametrize(
    "raw",
    [
        '{"title": "\\ud800 Jobs"}',  # a lone surrogate, escaped
        '{"title": "\ud800 Jobs"}',  # ... and raw
        DEEP,
        '{"budget_cents": ' + HUGE_NUMBER + "}",
        '{"title": ' + DEEP + "}",
    ],
    ids=["escaped surrogate", "raw surrogate", "deep", "huge number", "deep value"],
)
def test_a_json_body_no_program_can_use_is_400(client, session, auth_headers, raw):
    owner = UserFactory(entrepreneur=True)

    answer = post_raw(client, "/api/v1/projects", raw, auth_headers(owner))

    assert answer.status_code == 400
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Project)) == 0


@pytest.mark.parametrize("field", ["funding_deadline", "start_date", "end_date"])
def test_a_project_dated_in_the_far_future_is_refused_at_input(client, auth_headers, field):
    owner = UserFactory(entrepreneur=True)

    answer = client.post(
        "/api/v1/projects", json=body(**{field: "9999-12-31"}), headers=auth_headers(owner)
    )

    assert answer.status_code == 422
    assert field in answer.json["errors"]


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("buyer", "/dashboard?to=9999-12-31"),
        ("buyer", "/impact-report.csv?to=9999-12-31"),
        ("buyer", "/impact-report.pdf?from=0001-01-01"),
        ("admin", "/admin/audit?to=9999-12-31"),
        ("buyer", "/pledges?page=99999999999999999999"),
        ("buyer", "/notices?page=99999999999999999999"),
        ("admin", "/admin/outbox?page=99999999999999999999"),
        ("buyer", "/registry?page=99999999999999999999"),
        ("buyer", "/registry?page=-1"),
        ("buyer", "/projects?q=a%00b"),
    ],
)
def test_odd_query_values_on_pages_are_4xx(web, who, path):
    person = UserFactory(role=Role.ADMIN if who == "admin" else Role.BUYER)
    web.login(person.email)

    answer = web.client.get(path)

    assert 400 <= answer.status_code < 500, (path, answer.status_code)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/audit-events?to=9999-12-31",
        "/api/v1/projects?q=a%00b",
        "/api/v1/pledges?page=99999999999999999999",
    ],
)
def test_odd_query_values_in_the_api_are_422_naming_the_field(client, auth_headers, path):
    admin = UserFactory(role=Role.ADMIN)

    answer = client.get(path, headers=auth_headers(admin))

    assert answer.status_code == 422, answer.json
    name = path.split("?")[1].split("=")[0]
    assert name in json.dumps(answer.json["errors"])


def test_a_signed_webhook_that_is_no_event_is_400(client):
    for payload in ([], "text", 5, None, {"id": 1}):
        raw, signature = signed(payload)
        answer = client.post(
            "/webhooks/stripe",
            data=raw,
            content_type="application/json",
            headers={"Stripe-Signature": signature},
        )
        assert answer.status_code == 400, payload


def test_pledging_with_another_organisations_card_is_refused_before_stripe(
    app, client, session, auth_headers
):
    project = listed_project()
    theirs = PaymentSetupFactory()
    session.commit()
    setups = session.scalar(select(func.count()).select_from(PaymentSetup))

    answer = client.post(
        f"/api/v1/projects/{project.id}/pledges",
        json={"tokens": 5, "payment_method": theirs.payment_method_id},
        headers=auth_headers(buyer()),
    )

    assert answer.status_code == 422
    assert "payment_method" in answer.json["errors"]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(PaymentSetup)) == setups
    assert payment_intents(app) == []
