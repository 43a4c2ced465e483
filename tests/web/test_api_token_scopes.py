"""API tokens are scoped (read, write, money) and may expire; both hold on every route."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from marketplace.accounts.models import ApiToken, Role
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.integration.funding_support import listed_project, pledge_via_api


def token(client, user, **extra) -> dict:
    response = client.post(
        "/api/v1/auth/tokens", json={"email": user.email, "password": DEFAULT_PASSWORD, **extra}
    )
    assert response.status_code == 201, response.json
    return response.json


def bearer(made: dict) -> dict:
    return {"Authorization": f"Bearer {made['token']}"}


def test_a_token_has_every_scope_unless_told_otherwise(client, session):
    user = UserFactory(role=Role.BUYER)
    session.commit()

    made = token(client, user)

    assert made["scopes"] == ["read", "write", "money"]
    assert made["expires_at"] is None
    listed = client.get("/api/v1/auth/tokens", headers=bearer(made)).json
    assert listed[0]["scopes"] == ["read", "write", "money"]


def test_a_read_only_token_reads_and_changes_nothing(client, session, clock):
    buyer = UserFactory(role=Role.BUYER)
    project = listed_project()
    session.commit()
    read_only = token(client, buyer, scopes=["read"], name="reporting")

    assert client.get("/api/v1/holdings", headers=bearer(read_only)).status_code == 200
    refused = pledge_via_api(client, bearer(read_only), project.id, 5)
    assert refused.status_code == 403
    assert refused.json["code"] == "insufficient_scope"
    assert "'money'" in refused.json["detail"]
    preview = client.post("/api/v1/valuations/preview", headers=bearer(read_only), json={})
    assert preview.status_code == 403 and preview.json["code"] == "insufficient_scope"

    pledger = token(client, buyer, scopes=["money"])
    assert pledge_via_api(client, bearer(pledger), project.id, 5).status_code == 201
    # money without read: the pledge is made, but the list of pledges is not readable
    assert client.get("/api/v1/pledges", headers=bearer(pledger)).status_code == 403


def test_a_write_token_cannot_move_money(client, session):
    buyer = UserFactory(role=Role.BUYER)
    project = listed_project()
    session.commit()
    writer = token(client, buyer, scopes=["read", "write"])

    response = pledge_via_api(client, bearer(writer), project.id, 5)

    assert response.status_code == 403 and response.json["code"] == "insufficient_scope"
    session.rollback()
    assert project.tokens_pledged == 0


def test_a_token_stops_working_when_it_expires(client, session, clock):
    user = UserFactory(role=Role.BUYER)
    session.commit()
    made = token(client, user, expires_in_days=30)
    assert made["expires_at"].startswith("2026-12-22")

    clock.advance(days=29, hours=23)
    assert client.get("/api/v1/me", headers=bearer(made)).status_code == 200
    clock.advance(hours=1)
    expired = client.get("/api/v1/me", headers=bearer(made))
    assert expired.status_code == 401
    assert "expired" in expired.json["detail"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"scopes": []}, "scopes"),
        ({"scopes": ["admin"]}, "scopes.0"),
        ({"scopes": "read"}, "scopes"),
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"expires_in_days": 366}, "expires_in_days"),
    ],
)
def test_bad_scopes_or_expiry_are_422_naming_the_field_and_issue_nothing(
    client, session, extra, field
):
    user = UserFactory(role=Role.BUYER)
    session.commit()

    response = client.post(
        "/api/v1/auth/tokens", json={"email": user.email, "password": DEFAULT_PASSWORD, **extra}
    )

    assert response.status_code == 422
    assert field in response.json["errors"]
    session.rollback()
    assert session.scalars(select(ApiToken)).all() == []


def test_the_account_page_makes_a_scoped_expiring_token(web, client, session):
    user = UserFactory(email="lotte@havenstad.example")
    session.commit()
    web.login("lotte@havenstad.example")

    refused = web.submit("/account", {"name": "ERP"}, action="/account/tokens")
    assert refused.status_code == 422
    assert "Choose at least one scope." in refused.get_data(as_text=True)

    made = web.submit(
        "/account",
        {"name": "ERP", "scopes": ["read"], "expires_in_days": "90"},
        action="/account/tokens",
    )
    assert made.status_code == 201
    secret = re.search(r'<code class="token">(som_[^<]+)</code>', made.get_data(as_text=True))
    headers = {"Authorization": f"Bearer {secret.group(1)}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert client.post("/api/v1/valuations/preview", headers=headers, json={}).status_code == 403
    session.rollback()
    stored = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).one()
    assert stored.scopes == "read"
    assert stored.expires_at - stored.created_at == timedelta(days=90)
