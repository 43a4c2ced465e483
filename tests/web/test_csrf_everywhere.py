"""Every page that changes state takes a POST with a CSRF token; none changes on GET."""

import re

from tests.factories import UserFactory


def page_rules(app, method):
    return [
        rule
        for rule in app.url_map.iter_rules()
        if method in rule.methods
        and not rule.rule.startswith("/api/")
        and rule.endpoint != "static"
    ]


def concrete(path):
    return re.sub(r"<(?:int:)?[^>]+>", "1", path)


def test_every_state_changing_page_refuses_a_post_without_its_csrf_token(app, web):
    UserFactory(email="lotte@havenstad.example")
    web.login("lotte@havenstad.example")
    rules = page_rules(app, "POST")
    assert len(rules) >= 5  # register, login, logout, token create and revoke at least

    for rule in rules:
        response = web.client.post(concrete(rule.rule), data={"name": "x"})
        assert response.status_code == 400, rule.rule


def test_no_page_route_that_accepts_a_post_also_changes_state_on_get(app):
    for rule in page_rules(app, "POST"):
        if "GET" in rule.methods:
            # Forms shown and submitted at one address: the GET only renders.
            assert rule.endpoint in {
                "accounts.register_page",
                "accounts.login",
                "catalogue.new_outcome_type",
                "projects.new",
                "projects.edit",
                "rounds.new",
                "rounds.edit",
                "accounts.organisation_profile",
                # e-mailed links: the GET shows a button (a mail scanner spends nothing)
                "accounts.verify",
                "accounts.forgot_password",
                "accounts.reset_password",
                "accounts.confirm_email",
                "accounts.accept_invitation",
            }, rule.rule
