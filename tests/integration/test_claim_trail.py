"""A serial's claim trail: public as a page and as JSON, with a fingerprint that changes
when any link of the chain changes, printed on the certificate so a paper copy can be
checked (product.md "Claim trail")."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from marketplace.accounts.models import Organisation, User
from marketplace.claims.trail import claim_trail
from marketplace.evaluations.models import Accreditation
from marketplace.projects.models import Project, ValuationSnapshot
from marketplace.registry.models import Retirement, TokenBlock
from marketplace.settlement.models import Settlement
from outcomes.commitments import OutcomeCommitment
from outcomes.evaluation import Evaluation, EvaluationResult
from outcomes.evidence import EvidenceFile
from tests.factories import EvidenceFileFactory
from tests.integration.test_settlement import (  # noqa: F401 - the fixtures
    retire,
    settled_example,
    worked_example,
)
from valuation import EvidenceGrade


def serial_of(project_id: int, n: int) -> str:
    return f"SOM-P{project_id:06d}-2027-{n:07d}"


@pytest.fixture
def retired(client, session, auth_headers, settled_example):
    project = settled_example.project
    made = retire(client, auth_headers(settled_example.bank), project.id, 10, "trail")
    assert made.status_code == 201, made.json
    EvidenceFileFactory(
        evaluation_id=settled_example.evaluation_id,
        project_id=project.id,
        sha256="ab" * 32,
        content_type="application/pdf",
        size_bytes=2048,
    )
    session.rollback()
    return settled_example, made.json


def test_the_trail_names_every_link_and_the_api_and_the_page_agree(client, session, retired):
    example, retirement = retired
    project = example.project
    serial = serial_of(project.id, 3)

    answer = client.get(f"/api/v1/registry/serials/{serial}/trail")

    assert answer.status_code == 200, answer.json
    trail = answer.json
    assert trail["serial"] == serial
    assert trail["retirement"]["id"] == retirement["id"]
    assert trail["retirement"]["beneficiary"] == "Gemeente Rotterdam"
    assert trail["block"]["status"] == "retired"
    assert trail["project"]["title"] == project.title
    settlement = session.scalars(
        select(Settlement).where(Settlement.project_id == project.id)
    ).one()
    assert trail["settlement"]["v_verified_cents"] == settlement.v_verified_cents
    assert trail["settlement"]["tokens_minted"] == settlement.tokens_minted
    (outcome,) = trail["outcomes"]
    assert (outcome["target_quantity"], outcome["verified_quantity"]) == (20, 14)
    assert (outcome["proposed_grade"], outcome["planned_grade"], outcome["met_grade"]) == (
        "C",
        "C",
        "C",
    )
    assert trail["evidence"] == [
        {"sha256": "ab" * 32, "content_type": "application/pdf", "size_bytes": 2048}
    ]
    assert trail["evaluation"]["evaluator"]["name"] == example.evaluator.name
    accreditation = trail["evaluation"]["accreditation"]
    assert accreditation["body"] == "Stichting Maatschappelijke Evaluatie"
    assert "work" in accreditation["themes"]
    assert trail["evaluation"]["declaration"]["text"].startswith("I have no ties")
    assert trail["settlement"]["tokens_buffer"] == 84
    assert trail["disputes"] == [] and trail["project"]["disputed"] is False
    assert trail["block"]["frozen"] is False
    line = trail["valuation"]["inputs"]["lines"][0]
    assert line["proxy"]["code"] == line["outcome_type"] and line["url"].startswith("http")
    assert trail["evaluation"]["approved_by"]["name"] == example.admin.name
    assert trail["valuation"]["method_version"] == 1
    assert trail["valuation"]["inputs"]["lines"][0]["source"]
    assert len(trail["fingerprint"]) == 64
    assert claim_trail(session, serial)["fingerprint"] == trail["fingerprint"]

    page = client.get(f"/registry/serials/{serial}").get_data(as_text=True)
    assert trail["fingerprint"] in page and project.title in page
    assert "private holder" in page  # the bank did not opt in to be named
    dutch = client.get(f"/registry/serials/{serial}", headers={"Accept-Language": "nl"})
    assert "Claimspoor" in dutch.get_data(as_text=True)
    retirement_page = client.get(f"/registry/retirements/{retirement['id']}").get_data(as_text=True)
    assert f"/registry/serials/{serial_of(project.id, 1)}" in retirement_page


def test_an_unissued_or_malformed_serial_is_named_as_such(client, retired):
    example, _retirement = retired
    project_id = example.project.id

    missing = client.get(f"/api/v1/registry/serials/{serial_of(project_id, 9_999_999)}/trail")
    block = client.get(f"/api/v1/registry/serials/SOM-P{project_id:06d}-2027-0000001-0000002/trail")
    odd = client.get("/api/v1/registry/serials/%00%22%3Cb%3E/trail")

    assert (missing.status_code, missing.json["detail"]) == (404, "No such serial.")
    assert block.status_code == 422 and "serial" in block.json["errors"]
    assert odd.status_code == 422
    assert client.get("/registry/serials/nonsense").status_code == 422


def _change(session, statement) -> None:
    session.execute(statement)
    session.commit()


@pytest.mark.parametrize(
    "link",
    [
        "retirement",
        "block",
        "holder",
        "project",
        "settlement",
        "target",
        "verified",
        "evaluator",
        "valuation",
        "met_grade",
        "accreditation",
        "declaration",
        "dispute",
        "evidence",
    ],
)
def test_changing_any_link_of_the_chain_changes_the_fingerprint(session, retired, link):
    example, retirement = retired
    project = example.project
    serial = serial_of(project.id, 3)
    before = claim_trail(session, serial)["fingerprint"]
    session.rollback()
    evaluation = session.scalars(
        select(Evaluation).where(Evaluation.project_id == project.id)
    ).one()
    changes = {
        "retirement": update(Retirement)
        .where(Retirement.id == retirement["id"])
        .values(beneficiary="Someone else"),
        "block": update(TokenBlock)
        .where(TokenBlock.retirement_id == retirement["id"])
        .values(vintage=2028),
        "holder": update(Organisation)
        .where(Organisation.id == example.bank.organisation_id)
        .values(registry_public=True),
        "project": update(Project).where(Project.id == project.id).values(city="Schiedam"),
        "settlement": update(Settlement)
        .where(Settlement.project_id == project.id)
        .values(v_verified_cents=Settlement.v_verified_cents + 1),
        "target": update(OutcomeCommitment)
        .where(OutcomeCommitment.project_id == project.id)
        .values(target_quantity=21),
        "verified": update(EvaluationResult)
        .where(EvaluationResult.evaluation_id == evaluation.id)
        .values(verified_quantity=15),
        "evaluator": update(User).where(User.id == evaluation.evaluator_id).values(name="Else"),
        "valuation": update(ValuationSnapshot)
        .where(ValuationSnapshot.project_id == project.id)
        .values(method_version=2),
        "met_grade": update(EvaluationResult)
        .where(EvaluationResult.evaluation_id == evaluation.id)
        .values(met_grade=EvidenceGrade.D),
        "accreditation": update(Accreditation)
        .where(Accreditation.user_id == evaluation.evaluator_id)
        .values(reference="SME-OTHER"),
        "declaration": update(Evaluation)
        .where(Evaluation.id == evaluation.id)
        .values(declaration="I once worked for the project's organisation."),
        "dispute": update(Project).where(Project.id == project.id).values(disputed=True),
        "evidence": update(EvidenceFile)
        .where(EvidenceFile.evaluation_id == evaluation.id)
        .values(sha256="cd" * 32),
    }
    if link == "block":  # a vintage is part of the serial: read it under its new name
        serial = serial.replace("-2027-", "-2028-")
    _change(session, changes[link])

    assert claim_trail(session, serial)["fingerprint"] != before


def test_the_certificate_prints_the_fingerprint_and_where_to_check_it(client, retired):
    import pypdfium2

    example, retirement = retired
    first = serial_of(example.project.id, 1)
    trail = client.get(f"/api/v1/registry/serials/{first}/trail").json

    pdf = client.get(f"/registry/retirements/{retirement['id']}/certificate.pdf").data
    document = pypdfium2.PdfDocument(pdf)
    text = " ".join(
        " ".join(document[i].get_textpage().get_text_range().split()) for i in range(len(document))
    )

    assert trail["fingerprint"][:16] in text
    assert f"/registry/serials/{first}" in text.replace(" ", "")
