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
