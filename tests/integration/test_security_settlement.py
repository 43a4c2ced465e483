"""Finding 9 of issue 15: a buyer sees its own row of a settlement, never the others'."""

from __future__ import annotations

from sqlalchemy import select

from marketplace.accounts.models import Organisation
from marketplace.funding.models import Pledge
from tests.integration.test_settlement import (  # noqa: F401 - fixtures
    settled_example,
    worked_example,
)


def test_a_buyer_sees_only_its_own_row_the_owner_and_admins_see_all(
    client, session, auth_headers, web, settled_example
):
    project, bank, admin = settled_example.project, settled_example.bank, settled_example.admin
    pledges = session.scalars(select(Pledge).where(Pledge.project_id == project.id)).all()
    other = next(p for p in pledges if p.organisation_id != bank.organisation_id)
    other_name = session.get(Organisation, other.organisation_id).name
    own_name = session.get(Organisation, bank.organisation_id).name
    path = f"/api/v1/projects/{project.id}/settlement"

    mine = client.get(path, headers=auth_headers(bank)).json["buyers"]
    everyone = client.get(path, headers=auth_headers(project.created_by)).json["buyers"]
    team = client.get(path, headers=auth_headers(admin)).json["buyers"]

    assert [b["organisation"] for b in mine] == [own_name]
    assert {b["organisation"] for b in everyone} == {own_name, other_name}
    assert team == everyone

    web.login(bank.email)
    page = web.get(f"/projects/{project.id}/settlement").get_data(as_text=True)
    assert own_name in page
    assert other_name not in page
