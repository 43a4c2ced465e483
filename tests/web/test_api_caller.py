"""The two ways the API authenticates agree: the ORM user most views load and the plain
columns a pledge (the hot path) reads (``accounts.authorisation.live_caller``).

Each case is asked of GET /api/v1/me (the user) and of POST .../pledges (the caller).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from marketplace.accounts.models import ApiToken, Role
from marketplace.audit.models import AuditEvent
from tests.factories import ApiTokenFactory, PaymentSetupFactory, UserFactory
from tests.integration.funding_support import buyer, listed_project, pledge_via_api

NOT_LIVE = "The API token is not valid, has expired or has been revoked."


@pytest.fixture
def world(session):
    user = buyer()
    setup = PaymentSetupFactory(organisation_id=user.organisation_id, user_id=user.id)
    project = listed_project()
    session.commit()
    return {"user": user, "method": setup.payment_method_id, "project": project}


def ask(client, world, secret: str, how: str):
    headers = {"Authorization": f"Bearer {secret}"}
    if how == "user":
        return client.get("/api/v1/me", headers=headers)
    return pledge_via_api(client, headers, world["project"].id, 2, world["method"])


BOTH = pytest.mark.parametrize("how", ["user", "caller"])


@BOTH
@pytest.mark.parametrize(
    "token_values",
    [
        {"revoked_at": datetime(2026, 1, 1, tzinfo=UTC)},
        {"expires_at": datetime(2026, 1, 1, tzinfo=UTC)},
    ],
    ids=["revoked", "expired"],
)
def test_a_token_revoked_or_expired_is_refused_and_changes_nothing(
    client, session, world, how, token_values
):
    made = ApiTokenFactory(user=world["user"], **token_values)
    session.commit()

    answer = ask(client, world, made.secret, how)

    assert answer.status_code == 401 and answer.json["detail"] == NOT_LIVE
    session.refresh(world["project"])
    assert world["project"].tokens_pledged == 0


@BOTH
def test_a_deactivated_person_is_refused(client, session, world, how):
    made = ApiTokenFactory(user=world["user"])
    world["user"].is_active = False
    session.commit()

    answer = ask(client, world, made.secret, how)

    assert answer.status_code == 401 and answer.json["detail"] == NOT_LIVE


@BOTH
@pytest.mark.parametrize("secret", ["", "som_", "som_" + "x" * 300, "Bearer", "sk_live_x\u0000"])
def test_a_malformed_secret_is_refused(client, world, how, secret):
    assert ask(client, world, secret, how).status_code == 401


@BOTH
def test_a_live_token_is_taken_and_its_use_written_once_a_minute(client, session, world, how):
    made = ApiTokenFactory(user=world["user"], last_used_at=None)
    session.commit()

    first = ask(client, world, made.secret, how)

    assert first.status_code in {200, 201}, first.json
    session.expire_all()
    used = session.get(ApiToken, made.id).last_used_at
    assert used is not None
    ask(client, world, made.secret, how)
    session.expire_all()
    assert session.get(ApiToken, made.id).last_used_at == used  # not again within a minute


def test_the_caller_needs_the_money_scope_and_the_buyer_role(client, session, world):
    reader = ApiTokenFactory(user=world["user"], scopes="read write")
    entrepreneur = ApiTokenFactory(user=UserFactory(role=Role.ENTREPRENEUR))
    session.commit()

    scoped = ask(client, world, reader.secret, "caller")
    assert scoped.status_code == 403 and scoped.json["code"] == "insufficient_scope"
    assert ask(client, world, entrepreneur.secret, "caller").status_code == 403
    session.refresh(world["project"])
    assert world["project"].tokens_pledged == 0


def test_a_pledge_made_through_the_caller_is_audited_in_its_name(client, session, world, clock):
    made = ApiTokenFactory(user=world["user"])
    session.commit()

    answer = ask(client, world, made.secret, "caller")

    assert answer.status_code == 201, answer.json
    row = session.scalars(
        select(AuditEvent).where(AuditEvent.subject == f"pledge:{answer.json['id']}")
    ).one()
    assert row.actor_id == world["user"].id
    assert row.actor == world["user"].email
    assert row.via == "api"
    assert row.at == clock.at


# A pledge reads its caller with its first read (``authenticated(..., first_read=True)``):
# the body is parsed before the caller is known, yet a refusal of the caller comes first.

BAD_BODIES = [
    pytest.param({"json": {"tokens": 0, "payment_method": "pm_card_visa"}}, id="invalid"),
    pytest.param({"data": b"{not json", "content_type": "application/json"}, id="not-json"),
]


def post_body(client, world, secret: str, body: dict):
    return client.post(
        f"/api/v1/projects/{world['project'].id}/pledges",
        headers={"Authorization": f"Bearer {secret}"},
        **body,
    )


@pytest.mark.parametrize("body", BAD_BODIES)
def test_a_bad_body_is_answered_after_the_caller_is_admitted(client, session, world, body):
    live = ApiTokenFactory(user=world["user"])
    revoked = ApiTokenFactory(user=world["user"], revoked_at=datetime(2026, 1, 1, tzinfo=UTC))
    reader = ApiTokenFactory(user=world["user"], scopes="read write")
    entrepreneur = ApiTokenFactory(user=UserFactory(role=Role.ENTREPRENEUR))
    session.commit()

    assert post_body(client, world, revoked.secret, body).status_code == 401
    assert post_body(client, world, "som_" + "x" * 40, body).status_code == 401
    assert post_body(client, world, reader.secret, body).json["code"] == "insufficient_scope"
    assert post_body(client, world, entrepreneur.secret, body).status_code == 403
    assert post_body(client, world, live.secret, body).status_code in {400, 422}


def test_a_token_of_no_one_takes_no_pledge_ids(client, session, world):
    """The pledge's first read finds no one for a token of no active person, and takes no
    ids from the pledges' sequence (a revoked token's person is found, and refused)."""
    made = ApiTokenFactory(user=world["user"])
    revoked = ApiTokenFactory(user=world["user"], revoked_at=datetime(2026, 1, 1, tzinfo=UTC))
    session.commit()
    first = ask(client, world, made.secret, "caller").json["id"]

    for secret in ("som_" + "y" * 40, "som_" + "z" * 43):
        answer = ask(client, world, secret, "caller")
        assert answer.status_code == 401 and answer.json["detail"] == NOT_LIVE
    following = ask(client, world, made.secret, "caller").json["id"]
    assert ask(client, world, revoked.secret, "caller").status_code == 401

    # On PostgreSQL each read ahead takes two ids (the pledge's, a match's): none for
    # a token of no one; elsewhere the ids are the table's next.
    assert following == first + (2 if session.get_bind().dialect.name == "postgresql" else 1)
    session.refresh(world["project"])
    assert world["project"].tokens_pledged == 4


def test_a_view_that_forgets_to_admit_its_caller_answers_nothing(app):
    from marketplace.api.auth import _admitted_in_view

    with app.test_request_context("/api/v1/me"), pytest.raises(RuntimeError):
        _admitted_in_view(lambda: {"secret": "for no one"}, (Role.BUYER,), None, (), {})
