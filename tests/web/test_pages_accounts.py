"""The account pages, used as a person with a browser would."""

import re

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import ApiToken, Role, User
from tests.conftest import csrf_from
from tests.factories import DEFAULT_PASSWORD, UserFactory

GOOD = {
    "role": "buyer",
    "name": "Lotte Jansen",
    "organisation": "Havenstad Bank",
    "email": "lotte@havenstad.example",
    "password": "a long enough password",
}


def users(session):
    session.rollback()  # end the read transaction: see what requests wrote
    return session.scalar(select(func.count()).select_from(User))


@pytest.mark.parametrize("path", ["/", "/register", "/login"])
def test_public_pages_render(client, path):
    response = client.get(path)

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<main id="main"' in html
    assert 'href="/static/css/site.css"' in html


def test_the_stylesheet_is_served_by_the_app(client):
    response = client.get("/static/css/site.css")

    assert response.status_code == 200
    assert "text/css" in response.content_type


def test_registering_logs_the_new_user_in(web, session):
    response = web.submit("/register", GOOD)

    assert response.status_code == 302
    assert response.headers["Location"].endswith("/dashboard")  # the next task, not the profile
    account = web.get("/account").get_data(as_text=True)
    assert "Lotte Jansen" in account
    assert "Havenstad Bank" in account
    assert users(session) == 1


@pytest.mark.parametrize(
    ("field", "value", "status", "message"),
    [
        ("email", "lotte@", 422, "Not a valid email address."),
        ("password", "short", 422, "Use at least 10 characters."),
        ("name", "", 422, "Length must be between 1 and 200."),
    ],
)
def test_a_bad_field_is_shown_next_to_it_and_creates_nothing(
    web, session, field, value, status, message
):
    response = web.submit("/register", {**GOOD, field: value})

    assert response.status_code == status
    html = response.get_data(as_text=True)
    assert f'<p class="field-error" id="{field}-error">{message}</p>' in html
    assert f'id="{field}" name="{field}"' in html
    assert 'aria-invalid="true"' in html
    assert users(session) == 0


def test_a_taken_email_is_a_409_field_error_and_creates_nothing(web, session):
    UserFactory(email="lotte@havenstad.example")

    response = web.submit("/register", {**GOOD, "organisation": "Another Bank"})

    assert response.status_code == 409
    assert "An account with this e-mail address already exists." in response.get_data(as_text=True)
    assert users(session) == 1


def test_a_refused_form_keeps_what_was_typed_except_the_password(web):
    response = web.submit("/register", {**GOOD, "password": "short"})

    html = response.get_data(as_text=True)
    assert 'value="Lotte Jansen"' in html
    assert "short" not in re.findall(r'<input[^>]*name="password"[^>]*>', html)[0]


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(client, session):
    response = client.post("/register", data=GOOD)

    assert response.status_code == 400
    assert users(session) == 0


def test_logging_in_starts_a_new_session(web, client):
    UserFactory(email="lotte@havenstad.example")
    before = csrf_from(web.get("/login").get_data(as_text=True))

    response = web.login("lotte@havenstad.example")

    assert response.status_code == 302
    after = csrf_from(web.get("/account").get_data(as_text=True))
    assert after != before


def test_a_wrong_password_is_refused_with_a_message(web):
    UserFactory(email="lotte@havenstad.example")

    response = web.login("lotte@havenstad.example", "not my password")

    assert response.status_code == 401
    assert "not correct" in response.get_data(as_text=True)
    assert web.get("/account").status_code == 302


def test_eleven_failed_logins_in_a_minute_are_refused_with_429(web, clock):
    UserFactory(email="lotte@havenstad.example")

    statuses = [
        web.login("lotte@havenstad.example", "not my password").status_code for _ in range(11)
    ]

    assert statuses == [401] * 10 + [429]
    refused = web.login("lotte@havenstad.example")
    assert refused.status_code == 429
    assert "Too many failed attempts" in refused.get_data(as_text=True)
    assert refused.headers["Retry-After"]


def test_the_session_cookie_is_http_only_and_same_site(web):
    UserFactory(email="lotte@havenstad.example")

    response = web.login("lotte@havenstad.example")

    cookie = next(
        v for k, v in response.headers.items() if k == "Set-Cookie" and v.startswith("som_session=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_log_in_returns_to_the_page_asked_for_but_never_off_site(web):
    UserFactory(email="lotte@havenstad.example")
    page = web.get("/account")
    assert page.status_code == 302
    assert "next=%2Faccount" in page.headers["Location"]

    response = web.submit(
        "/login",
        {
            "email": "lotte@havenstad.example",
            "password": DEFAULT_PASSWORD,
            "next": "//evil.example/x",
        },
    )

    assert response.headers["Location"] == "/dashboard"


def test_logging_out_needs_a_post_with_its_token(web):
    UserFactory(email="lotte@havenstad.example")
    web.login("lotte@havenstad.example")

    assert web.client.get("/logout").status_code == 405
    assert web.client.post("/logout").status_code == 400
    assert web.get("/account").status_code == 200

    assert web.submit("/account", {}, action="/logout").status_code == 302
    assert web.get("/account").status_code == 302


def test_a_token_made_on_the_account_page_is_shown_once_and_works(web, client, session):
    UserFactory(email="lotte@havenstad.example")
    web.login("lotte@havenstad.example")

    response = web.submit("/account", {"name": "ERP", "scopes": ["read"]}, action="/account/tokens")

    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    secret = re.search(r'<code class="token">(som_[^<]+)</code>', response.get_data(as_text=True))
    assert secret
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret.group(1)}"}).status_code
        == 200
    )
    assert secret.group(1) not in web.get("/account").get_data(as_text=True)


def test_revoking_a_token_on_the_account_page(web, session):
    user = UserFactory(email="lotte@havenstad.example")
    web.login("lotte@havenstad.example")
    web.submit("/account", {"name": "ERP", "scopes": ["read"]}, action="/account/tokens")
    token = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).one()

    response = web.submit("/account", {}, action=f"/account/tokens/{token.id}/revoke")

    assert response.status_code == 302
    session.rollback()  # end the read transaction: see what requests wrote
    assert session.get(ApiToken, token.id).revoked_at is not None


def test_a_token_of_someone_else_cannot_be_revoked_from_the_page(web, session, auth_headers):
    other = UserFactory()
    auth_headers(other)
    token = session.scalars(select(ApiToken).where(ApiToken.user_id == other.id)).one()
    UserFactory(email="lotte@havenstad.example")
    web.login("lotte@havenstad.example")

    response = web.submit("/account", {}, action=f"/account/tokens/{token.id}/revoke")

    assert response.status_code == 404
    session.rollback()  # end the read transaction: see what requests wrote
    assert session.get(ApiToken, token.id).revoked_at is None


def test_pages_send_security_headers(client):
    response = client.get("/")

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_an_unknown_page_is_an_html_404(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert "text/html" in response.content_type


def test_a_session_left_idle_is_signed_out(app, web, clock):
    person = UserFactory(role=Role.BUYER)
    web.login(person.email)
    assert web.get("/account").status_code == 200
    clock.advance(minutes=29)
    assert web.get("/account").status_code == 200  # activity keeps it alive

    clock.advance(minutes=31)
    gone = web.get("/account")

    assert gone.status_code == 302
    assert gone.headers["Location"].startswith("/login")
    assert web.get("/account").status_code == 302  # signed out for good
    assert "without activity" in web.get("/login").get_data(as_text=True)


def test_each_person_lands_on_their_next_task(web):
    from marketplace.accounts.models import Role
    from tests.factories import UserFactory

    evaluator = UserFactory(role=Role.EVALUATOR)
    buyer = UserFactory(role=Role.BUYER)

    assert web.login(evaluator.email).headers["Location"] == "/evaluations"
    assert web.as_user(buyer.email).get("/login").headers["Location"] == "/dashboard"
