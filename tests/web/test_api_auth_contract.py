"""Who the API takes a caller to be, on public views and for a project's pledges.

Written against mutants `make mutation` found alive in api/auth.py and
accounts/authorisation.py (bench/MUTATION.md): a public view is anonymous without a
header, refuses a bad token (a broken integration is not served the public view),
and shows a valid token's holder what is theirs; a project's pledges are for its own
organisation and the admins only.
"""

from __future__ import annotations

import pytest

from marketplace.accounts.authorisation import acts_for, require_member_or_admin
from marketplace.accounts.models import Role
from marketplace.projects.models import ProjectState
from outcomes.errors import Forbidden
from tests.factories import ApiTokenFactory, OrganisationFactory, ProjectFactory, UserFactory


@pytest.fixture
def draft(session):
    project = ProjectFactory(state=ProjectState.DRAFT)
    session.commit()
    return project


def test_a_public_view_is_anonymous_without_a_header(client, draft):
    assert client.get("/api/v1/projects").status_code == 200
    assert client.get(f"/api/v1/projects/{draft.id}").status_code == 404  # a draft is private


@pytest.mark.parametrize("name", ["Authorization", "authorization", "AUTHORIZATION"])
def test_a_public_view_refuses_a_bad_token_in_any_spelling_of_the_header(client, draft, name):
    answer = client.get("/api/v1/projects", headers={name: "Bearer som_not-a-real-token"})

    assert answer.status_code == 401
    assert answer.json["detail"] == "The API token is not valid, has expired or has been revoked."


def test_a_public_view_shows_a_token_holder_what_is_theirs(client, auth_headers, draft):
    owner = draft.created_by

    mine = client.get(f"/api/v1/projects/{draft.id}", headers=auth_headers(owner))

    assert mine.status_code == 200 and mine.json["id"] == draft.id
    listed = client.get("/api/v1/projects?mine=true", headers=auth_headers(owner)).json
    assert [p["id"] for p in listed["items"]] == [draft.id]


def test_a_projects_pledges_are_for_its_organisation_and_the_admins(session, draft):
    admin = UserFactory(role=Role.ADMIN)
    colleague = UserFactory(role=Role.ENTREPRENEUR, organisation=draft.organisation)
    stranger = UserFactory(role=Role.BUYER, organisation=OrganisationFactory())
    session.commit()

    for allowed in (admin, colleague):
        require_member_or_admin(allowed, draft.organisation_id, "Not yours.")
    with pytest.raises(Forbidden) as refused:
        require_member_or_admin(stranger, draft.organisation_id, "Not yours.")
    assert refused.value.detail == "Not yours."
    assert acts_for(colleague, draft.organisation_id)
    assert not acts_for(admin, draft.organisation_id)
    assert not acts_for(None, draft.organisation_id)
    assert not acts_for(stranger, None)


def test_the_authorization_header_is_read_as_the_standard_says(client, session):
    user = UserFactory(role=Role.BUYER)
    token = ApiTokenFactory(user=user, scopes="read")
    session.commit()

    # the scheme in any case, and more than one space before the token
    for header in (f"Bearer {token.secret}", f"bearer {token.secret}", f"Bearer  {token.secret}"):
        assert client.get("/api/v1/me", headers={"Authorization": header}).status_code == 200
    other = client.get("/api/v1/me", headers={"Authorization": f"Basic {token.secret}"})
    assert other.status_code == 401
    assert other.json["detail"] == "Send an API token as 'Authorization: Bearer <token>'."
    # HEAD reads, like GET: a read-only token may
    assert (
        client.head("/api/v1/me", headers={"Authorization": f"Bearer {token.secret}"}).status_code
        == 200
    )


def test_each_refusal_of_who_asks_says_what_is_needed(client, session):
    from datetime import UTC, datetime, timedelta

    from marketplace.accounts.authorisation import require_acting_for
    from marketplace.accounts.models import ApiToken
    from marketplace.accounts.services import API_TOKEN_PREFIX

    owner = UserFactory(role=Role.ENTREPRENEUR)
    reader = ApiTokenFactory(user=UserFactory(role=Role.BUYER), scopes="read money")
    mine = ApiTokenFactory(user=owner)
    session.commit()

    def detail(path, token, method="get", **kwargs):
        answer = getattr(client, method)(
            path, headers={"Authorization": f"Bearer {token}"}, **kwargs
        )
        return answer.status_code, answer.json["detail"]

    assert detail("/api/v1/holdings", mine.secret) == (403, "This needs the role buyer.")
    assert detail("/api/v1/evaluations", reader.secret) == (
        403,
        "This needs the role evaluator / admin.",
    )
    assert detail(f"/api/v1/auth/tokens/{reader.id}", reader.secret, "delete") == (
        403,
        "This needs an API token with the scope 'write'; this one has: read, money.",
    )
    with pytest.raises(Forbidden) as refused:
        require_acting_for(owner, owner.organisation_id + 1, "Not your project.")
    assert refused.value.detail == "Not your project."

    # a token of exactly the longest length is read; one character more is not
    longest = API_TOKEN_PREFIX + "x" * (200 - len(API_TOKEN_PREFIX))
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {longest}"}).status_code == 401
    )
    assert (
        client.get("/api/v1/me", headers={"Authorization": "Bearer " + "y" * 300}).status_code
        == 401
    )

    # the last use is written when a minute has passed, not on every request
    session.rollback()
    stored = session.get(ApiToken, mine.id)
    stored.last_used_at = datetime.now(UTC) - timedelta(seconds=30)
    session.commit()
    before = stored.last_used_at
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {mine.secret}"}).status_code
        == 200
    )
    session.rollback()
    assert session.get(ApiToken, mine.id).last_used_at == before
    session.get(ApiToken, mine.id).last_used_at = datetime.now(UTC) - timedelta(minutes=5)
    session.commit()
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {mine.secret}"}).status_code
        == 200
    )
    session.rollback()
    touched = session.get(ApiToken, mine.id).last_used_at
    assert touched is not None and touched.replace(tzinfo=UTC) > datetime.now(UTC) - timedelta(
        minutes=1
    )


def test_a_token_used_exactly_a_minute_ago_is_not_written_again(session):
    from datetime import UTC, datetime, timedelta

    from marketplace.accounts.authorisation import TOKEN_TOUCH_INTERVAL, live_api_token

    token = ApiTokenFactory(user=UserFactory(role=Role.BUYER))
    session.commit()
    used = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    token.last_used_at = used
    session.commit()

    assert live_api_token(session, token.secret, now=used + TOKEN_TOUCH_INTERVAL) == token
    assert token.last_used_at.replace(tzinfo=UTC) == used
    later = used + TOKEN_TOUCH_INTERVAL + timedelta(microseconds=1)
    assert live_api_token(session, token.secret, now=later) == token
    assert token.last_used_at.replace(tzinfo=UTC) == later


def test_asking_for_the_caller_where_no_token_was_read_is_401_with_the_way_to_send_one(app):
    from flask import g

    from marketplace.api.auth import current_api_user
    from outcomes.errors import Unauthenticated

    with app.test_request_context("/api/v1/me"):
        g.api_user = None
        with pytest.raises(Unauthenticated) as refused:
            current_api_user()
    assert refused.value.detail == "Send an API token as 'Authorization: Bearer <token>'."
