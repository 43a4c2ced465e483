"""Open data (issue 19): every listed project with its outcomes, prices, verified results
and funders, and its INDIGO mapping; nothing a private funder keeps to itself."""

from __future__ import annotations

from marketplace.accounts.models import Organisation
from marketplace.projects.models import ProjectState
from tests.factories import ProjectFactory
from tests.integration.test_settlement import (  # noqa: F401 - the fixtures
    settled_example,
    worked_example,
)


def test_the_export_holds_every_listed_project_with_its_verified_results_and_indigo_fields(
    client, session, auth_headers, settled_example
):
    settled = settled_example.project
    session.rollback()
    bank = session.get(Organisation, settled_example.bank.organisation_id)
    bank.registry_public = True  # the bank is named; the other buyer keeps to itself
    session.commit()
    ProjectFactory(state=ProjectState.DRAFT, title="Not listed yet")
    ProjectFactory(state=ProjectState.SUBMITTED, title="Not valued yet")
    session.commit()

    export = client.get("/api/v1/open-data/projects?per_page=100").json

    assert (export["format"], export["version"], export["currency"]) == ("som-open-data", 1, "EUR")
    titles = [p["title"] for p in export["projects"]]
    assert titles == [settled.title] and export["total"] == 1
    [project] = export["projects"]
    owner = auth_headers(settled.created_by)
    verified = client.get(f"/api/v1/projects/{settled.id}/settlement", headers=owner).json
    assert project["state"] == "settled"
    assert project["prices"]["token_price_cents"] == 2953
    assert project["settlement"]["v_verified_cents"] == verified["v_verified_cents"]
    assert project["settlement"]["refund_total_cents"] == 326_012
    [line] = project["outcomes"]
    assert line["verified_quantity"] == 14
    assert line["esrs_disclosure"] == "S3-4" and line["sdg_targets"]
    funders = {f["organisation"]: f for f in project["funders"]}
    assert set(funders) == {bank.name, "private holder"}
    assert (funders[bank.name]["tokens_paid"], funders[bank.name]["paid_cents"]) == (
        1000,
        2_953_000,
    )
    assert (funders[bank.name]["tokens_minted"], funders[bank.name]["refund_cents"]) == (
        665,
        135_838,
    )
    assert sum(f["paid_cents"] for f in project["funders"]) == 7_087_200

    indigo = project["indigo"]
    assert indigo["name"] == {"value": settled.title}
    assert indigo["stage_development"] == {"value": "Complete"}
    assert indigo["purpose_and_classifications"]["policy_sector"] == {
        "value": "Employment and training"
    }
    finance = indigo["overall_project_finance"]
    assert finance["total_outcome_payments_made"]["amount"] == {"value": "67611.88"}
    assert finance["total_outcome_payments_made"]["currency"] == {"value": "EUR"}
    assert indigo["outcome_metrics"][0]["targeted_number_of_service_users_or_beneficiaries_total"]
    payers = {c["organisation_id"]["value"] for c in indigo["outcome_payment_commitments"]}
    assert payers == {bank.name, "private holder"}


def test_a_page_past_the_end_is_empty_and_a_bad_page_is_422(client):
    assert client.get("/api/v1/open-data/projects?page=9").json["projects"] == []
    bad = client.get("/api/v1/open-data/projects?per_page=0")
    assert bad.status_code == 422 and "per_page" in str(bad.json["errors"])
