"""The JSON API's accounts section, as an integrating system uses it."""

import threading

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import ApiToken, Organisation, Role, User
from tests.factories import DEFAULT_PASSWORD, ApiTokenFactory, UserFactory

PROBLEM = "application/problem+json"


def registration(**overrides):
    body = {
        "email": "ana@buurtwerk.example",
        "password": "a long enough password",
        "name": "Ana Pereira",
        "role": "entrepreneur",
        "organisation": "Buurtwerk Delfshaven",
    }
    body.update(overrides)
    return body


def count(session, model):
    session.rollback()  # end the read transaction: see what requests wrote
    return session.scalar(select(func.count()).select_from(model))


def test_registering_returns_the_new_user_with_its_organisation(client, session):
    response = client.post(
        "/api/v1/auth/register", json=registration(email=" Ana@Buurtwerk.example ")
    )

    assert response.status_code == 201
    body = response.get_json()
    assert {k: body[k] for k in ("email", "name", "role", "organisation", "email_verified")} == {
        "email": "ana@buurtwerk.example",
        "name": "Ana Pereira",
        "role": "entrepreneur",
        "organisation": "Buurtwerk Delfshaven",
        "email_verified": False,
    }
    user = session.get(User, body["id"])
    assert user.organisation.name == "Buurtwerk Delfshaven"
    assert user.password_hash.startswith("$argon2id$")
    assert "a long enough password" not in user.password_hash


def test_registering_a_taken_email_is_409_email_taken_and_creates_nothing(client, session):
    UserFactory(email="ana@buurtwerk.example")
    users, organisations = count(session, User), count(session, Organisation)

    response = client.post(
        "/api/v1/auth/register", json=registration(email="ANA@buurtwerk.example")
    )

    assert response.status_code == 409
    assert response.content_type == PROBLEM
    body = response.get_json()
    assert body["code"] == "email_taken"
    assert body["status"] == 409
    assert "email" in body["errors"]
    assert (count(session, User), count(session, Organisation)) == (users, organisations)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("password", "too short"),
        ("email", "not-an-email"),
        ("email", "ana@"),
        ("name", ""),
        ("organisation", "   "),
        ("role", "admin"),
        ("role", "evaluator"),
    ],
)
def test_registering_with_a_bad_field_is_422_naming_it_and_creates_nothing(
    client, session, field, value
):
    response = client.post("/api/v1/auth/register", json=registration(**{field: value}))

    assert response.status_code == 422
    assert response.content_type == PROBLEM
    body = response.get_json()
    assert body["code"] == "validation_failed"
    assert list(body["errors"]) == [field]
    assert count(session, User) == 0
    assert count(session, Organisation) == 0


def test_every_bad_field_is_reported_at_once(client):
    response = client.post(
        "/api/v1/auth/register",
        json={"email": "x", "password": "short", "role": "buyer", "extra": 1},
    )

    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {
        "email",
        "password",
        "name",
        "organisation",
        "extra",
    }


def test_registering_an_existing_organisation_name_is_409(client, session):
    UserFactory(organisation__name="Havenstad Bank")

    response = client.post(
        "/api/v1/auth/register", json=registration(organisation="  havenstad   BANK ")
    )

    assert response.status_code == 409
    assert response.get_json()["code"] == "organisation_taken"
    assert count(session, User) == 1


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", "null", '"text"'])
def test_a_body_that_is_not_a_json_object_is_a_4xx_problem(client, session, body):
    response = client.post("/api/v1/auth/register", data=body, content_type="application/json")

    assert response.status_code in (400, 422)
    assert response.content_type == PROBLEM
    assert response.get_json()["errors"]
    assert count(session, User) == 0


def test_two_simultaneous_registrations_of_one_email_create_one_user(app, session):
    barrier = threading.Barrier(2)
    statuses = []

    def register(n):
        client = app.test_client()
        barrier.wait()
        response = client.post(
            "/api/v1/auth/register", json=registration(organisation=f"Organisation {n}")
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=register, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201, 409]
    assert count(session, User) == 1


def test_a_token_is_issued_for_good_credentials_and_stored_only_hashed(client, session):
    user = UserFactory(email="lotte@havenstad.example")

    response = client.post(
        "/api/v1/auth/tokens",
        json={"email": "lotte@havenstad.example", "password": DEFAULT_PASSWORD, "name": "ERP"},
    )

    assert response.status_code == 201
    secret = response.get_json()["token"]
    token = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).one()
    assert token.name == "ERP"
    assert secret not in {token.token_hash, token.prefix}
    assert len(token.token_hash) == 64
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200


@pytest.mark.parametrize("password", ["wrong password", ""])
def test_bad_credentials_are_401_invalid_credentials(client, password):
    UserFactory(email="lotte@havenstad.example")

    response = client.post(
        "/api/v1/auth/tokens", json={"email": "lotte@havenstad.example", "password": password}
    )

    assert response.status_code in (401, 422)
    if password:
        assert response.get_json()["code"] == "invalid_credentials"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_email_gets_the_same_answer_as_a_wrong_password(client):
    response = client.post(
        "/api/v1/auth/tokens", json={"email": "nobody@example.org", "password": "whatever it is"}
    )

    assert response.status_code == 401
    assert response.get_json()["code"] == "invalid_credentials"


def test_eleven_failed_logins_in_a_minute_are_refused_with_429(client, clock):
    UserFactory(email="lotte@havenstad.example")
    attempt = {"email": "lotte@havenstad.example", "password": "wrong password"}

    statuses = []
    for _ in range(11):
        statuses.append(client.post("/api/v1/auth/tokens", json=attempt).status_code)
        clock.advance(seconds=2)

    assert statuses == [401] * 10 + [429]
    good = {"email": "lotte@havenstad.example", "password": DEFAULT_PASSWORD}
    refused = client.post("/api/v1/auth/tokens", json=good)
    assert refused.status_code == 429
    assert refused.get_json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60

    clock.advance(seconds=60)
    assert client.post("/api/v1/auth/tokens", json=good).status_code == 201


def test_the_throttle_is_per_account(client, clock):
    UserFactory(email="lotte@havenstad.example")
    UserFactory(email="daan@rotterdam.example")
    for _ in range(10):
        client.post(
            "/api/v1/auth/tokens",
            json={"email": "lotte@havenstad.example", "password": "wrong password"},
        )

    other = client.post(
        "/api/v1/auth/tokens",
        json={"email": "daan@rotterdam.example", "password": DEFAULT_PASSWORD},
    )

    assert other.status_code == 201


def test_failures_spread_over_more_than_a_minute_are_not_throttled(client, clock):
    UserFactory(email="lotte@havenstad.example")
    statuses = []
    for _ in range(15):
        statuses.append(
            client.post(
                "/api/v1/auth/tokens",
                json={"email": "lotte@havenstad.example", "password": "wrong password"},
            ).status_code
        )
        clock.advance(seconds=7)

    assert set(statuses) == {401}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer som_not-a-real-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "som_no-scheme"},
    ],
)
def test_the_api_without_a_valid_token_is_401(client, headers):
    response = client.get("/api/v1/me", headers=headers)

    assert response.status_code == 401
    assert response.content_type == PROBLEM
    assert response.get_json()["code"] == "unauthenticated"


def test_me_describes_the_token_owner(client, auth_headers):
    user = UserFactory(
        entrepreneur=True, name="Samira El Amrani", organisation__name="Buurtwerk Rotterdam"
    )

    body = client.get("/api/v1/me", headers=auth_headers(user)).get_json()

    assert body == {
        "id": user.id,
        "email": user.email,
        "name": "Samira El Amrani",
        "role": "entrepreneur",
        "organisation": "Buurtwerk Rotterdam",
        "organisation_id": user.organisation_id,
        "email_verified": True,
    }


@pytest.mark.parametrize("role", [Role.ENTREPRENEUR, Role.BUYER, Role.EVALUATOR])
def test_an_admin_only_route_is_403_for_other_roles(client, auth_headers, role):
    response = client.get("/api/v1/users", headers=auth_headers(UserFactory(role=role)))

    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"


def test_an_admin_lists_users_page_by_page(client, auth_headers):
    admin = UserFactory(admin=True)
    UserFactory.create_batch(4)

    body = client.get("/api/v1/users?per_page=2&page=2", headers=auth_headers(admin)).get_json()

    assert (body["page"], body["per_page"], body["total"]) == (2, 2, 5)
    assert len(body["items"]) == 2


@pytest.mark.parametrize("query", ["per_page=0", "per_page=201", "page=0", "page=abc"])
def test_bad_paging_is_422_naming_the_parameter(client, auth_headers, query):
    response = client.get(f"/api/v1/users?{query}", headers=auth_headers(UserFactory(admin=True)))

    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == [query.split("=")[0]]


def test_a_revoked_token_stops_working_at_once(client):
    token = ApiTokenFactory()
    headers = {"Authorization": f"Bearer {token.secret}"}

    assert client.delete(f"/api/v1/auth/tokens/{token.id}", headers=headers).status_code == 204

    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_a_token_of_another_user_cannot_be_revoked(client, session):
    mine, theirs = ApiTokenFactory(), ApiTokenFactory()

    response = client.delete(
        f"/api/v1/auth/tokens/{theirs.id}", headers={"Authorization": f"Bearer {mine.secret}"}
    )

    assert response.status_code == 404
    session.rollback()  # end the read transaction: see what requests wrote
    assert session.get(ApiToken, theirs.id).revoked_at is None


def test_token_listing_shows_no_secrets(client):
    token = ApiTokenFactory(name="ERP")

    body = client.get(
        "/api/v1/auth/tokens", headers={"Authorization": f"Bearer {token.secret}"}
    ).get_json()

    assert [t["name"] for t in body] == ["ERP"]
    assert token.secret not in str(body)


def test_unknown_api_paths_and_methods_are_problems(client):
    missing = client.get("/api/v1/nothing-here")
    wrong_method = client.put("/api/v1/me")

    assert (missing.status_code, missing.content_type) == (404, PROBLEM)
    assert (wrong_method.status_code, wrong_method.content_type) == (405, PROBLEM)
    assert "GET" in wrong_method.headers["Allow"]


def test_the_openapi_document_describes_the_accounts_api(client):
    spec = client.get("/api/v1/openapi.json").get_json()

    assert spec["openapi"].startswith("3.")
    for path in ("/api/v1/auth/register", "/api/v1/auth/tokens", "/api/v1/me", "/api/v1/users"):
        assert path in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    me = spec["paths"]["/api/v1/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}]
    assert "401" in me["responses"]
    conflict = spec["components"]["responses"]["CONFLICT"]
    assert "application/problem+json" in conflict["content"]


def test_a_password_common_in_breaches_is_refused_at_registration(client, session):
    response = client.post("/api/v1/auth/register", json=registration(password="Password123"))

    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "password": ["This password is common in published data breaches; choose another."]
    }
    assert count(session, User) == 0
