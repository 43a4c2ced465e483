"""Finding 5 of issue 15: no redirect leads off this site."""

from __future__ import annotations

import pytest

from marketplace.accounts.models import Role
from marketplace.web.redirects import same_site_path
from tests.conftest import csrf_from
from tests.factories import DEFAULT_PASSWORD, UserFactory

OFF_SITE = [
    "//evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    " //evil.example",
    "/\r\n/evil.example",
]


@pytest.mark.parametrize("target", OFF_SITE)
def test_the_language_switch_stays_on_this_site(client, target):
    page = client.get("/").get_data(as_text=True)

    answer = client.post(
        "/language", data={"lang": "nl", "next": target, "csrf_token": csrf_from(page)}
    )

    assert answer.status_code == 302
    assert answer.headers["Location"] == "/"


@pytest.mark.parametrize("target", OFF_SITE)
def test_sign_in_stays_on_this_site(web, target):
    user = UserFactory()
    page = web.client.get("/login").get_data(as_text=True)
    assert same_site_path(target) is None
    signed = web.client.post(
        "/login?next=" + target.replace("\t", "%09").replace("\n", "%0A").replace("\r", "%0D"),
        data={
            "email": user.email,
            "password": DEFAULT_PASSWORD,
            "csrf_token": csrf_from(page),
        },
    )
    assert signed.status_code == 302
    assert signed.headers["Location"].startswith("/")
    assert not signed.headers["Location"].startswith(("//", "/\\"))


def test_a_path_on_this_site_is_kept():
    assert same_site_path("/projects?page=2") == "/projects?page=2"
    assert same_site_path("/projects\t/7") == "/projects/7"


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("https://evil.example/payouts", 422),
        ("http://localhost.evil.example/payouts", 422),
        ("http://localhost/payouts", 200),
    ],
)
def test_the_payout_onboarding_returns_only_to_this_site(client, auth_headers, url, status):
    owner = UserFactory(role=Role.ENTREPRENEUR)

    answer = client.post(
        "/api/v1/payouts/account", headers=auth_headers(owner), json={"return_url": url}
    )

    assert answer.status_code == status, answer.json
    if status == 422:
        assert "return_url" in answer.json["errors"]
