"""The token registry: serial blocks in pledge order, holdings, retirement once, certificates."""

from __future__ import annotations

import threading
from datetime import timedelta

import pypdfium2
import pytest
import zxingcpp
from sqlalchemy import select

from marketplace.funding.models import Pledge
from marketplace.registry import services as registry_services
from marketplace.registry.models import BlockStatus, TokenBlock
from tests.factories import UserFactory
from tests.integration.funding_support import tick
from tests.integration.test_settlement import ENDED, evaluate, worked_example  # noqa: F401


@pytest.fixture
def settled(app, client, session, auth_headers, worked_example):
    """The worked example settled: 1,680 tokens, 665 to the first buyer, 931 to the second,
    84 to the buffer pool (serials 1,597 to 1,680)."""
    project, admin = worked_example
    evaluate(client, auth_headers, project, admin, verified=14)
    tick(app, ENDED + timedelta(days=1))
    session.rollback()
    buyers = [pledge.user for pledge in session.scalars(select(Pledge).order_by(Pledge.id))]
    return project, buyers


def serial(project, first, last, vintage=2027):
    return f"SOM-P{project.id:06d}-{vintage}-{first:07d}-{last:07d}"


def retire(client, headers, project, quantity, key=None, **extra):
    body = {
        "project_id": project.id,
        "quantity": quantity,
        "beneficiary": "Gemeente Rotterdam",
        "purpose": "csr_voluntary",
        "claim": "contribution",
        **extra,
    }
    return client.post(
        "/api/v1/retirements",
        json=body,
        headers={**headers, **({"Idempotency-Key": key} if key else {})},
    )


def test_minted_tokens_are_serialised_in_pledge_order(client, auth_headers, settled):
    project, (first, second) = settled

    assert client.get("/api/v1/holdings", headers=auth_headers(first)).json == [
        {
            "serial_block": serial(project, 1, 665),
            "project_id": project.id,
            "vintage": 2027,
            "quantity": 665,
        }
    ]
    assert client.get("/api/v1/holdings", headers=auth_headers(second)).json[0][
        "serial_block"
    ] == serial(project, 666, 1596)


def test_retiring_splits_the_block_and_is_public(client, session, auth_headers, settled):
    project, (first, _second) = settled
    headers = auth_headers(first)

    response = retire(client, headers, project, 100)

    assert response.status_code == 201, response.json
    body = response.json
    assert body["serial_blocks"] == [serial(project, 1, 100)]
    assert body["public_url"].endswith(f"/registry/retirements/{body['id']}")
    assert client.get("/api/v1/holdings", headers=headers).json[0]["serial_block"] == serial(
        project, 101, 665
    )
    public = client.get(f"/api/v1/registry/retirements/{body['id']}").json
    assert (public["quantity"], public["beneficiary"], public["purpose"]) == (
        100,
        "Gemeente Rotterdam",
        "csr_voluntary",
    )
    page = client.get(f"/registry/retirements/{body['id']}").get_data(as_text=True)
    assert serial(project, 1, 100) in page
    assert "14 of 20" in page


def test_retiring_more_than_held_is_409_and_changes_nothing(client, session, auth_headers, settled):
    project, (first, _second) = settled
    response = retire(client, auth_headers(first), project, 666)

    assert response.status_code == 409
    assert response.json["code"] == "insufficient_tokens"
    session.rollback()
    assert set(session.scalars(select(TokenBlock.status).distinct())) == {
        BlockStatus.ISSUED,
        BlockStatus.BUFFER,
    }


def test_a_social_return_retirement_names_an_accepted_obligation(client, auth_headers, settled):
    project, (first, _second) = settled
    bare = retire(
        client,
        auth_headers(first),
        project,
        5,
        purpose="sroi_obligation",
        contract_reference="RTM-2026-0142",
    )
    assert bare.status_code == 422
    assert list(bare.json["errors"]) == ["obligation_id"]
    named = retire(client, auth_headers(first), project, 5, purpose="csrd_report", obligation_id=1)
    assert named.status_code == 422
    assert list(named.json["errors"]) == ["obligation_id"]


def test_one_key_retires_once(client, session, auth_headers, settled):
    project, (first, _second) = settled
    headers = auth_headers(first)
    replies = [retire(client, headers, project, 10, key="claim-7") for _ in range(3)]

    assert [r.status_code for r in replies] == [201, 201, 201]
    assert replies[1].json == replies[0].json
    assert client.get("/api/v1/holdings", headers=headers).json[0]["quantity"] == 655
    assert retire(client, headers, project, 11, key="claim-7").status_code == 409


def test_two_retirements_at_once_never_retire_a_serial_twice(app, session, auth_headers, settled):
    project, (first, _second) = settled
    headers = auth_headers(first)
    barrier = threading.Barrier(2, timeout=30)
    statuses = []

    def run():
        client = app.test_client()
        barrier.wait()
        statuses.append(retire(client, headers, project, 400).status_code)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201, 409]
    session.rollback()
    retired = session.scalars(
        select(TokenBlock)
        .where(TokenBlock.project_id == project.id, TokenBlock.holder_id == first.organisation_id)
        .order_by(TokenBlock.first_serial)
    ).all()
    assert [(b.first_serial, b.last_serial, b.status.value) for b in retired] == [
        (1, 400, "retired"),
        (401, 665, "issued"),
    ]


def test_the_public_registry_names_only_holders_who_allow_it(
    client, session, auth_headers, settled
):
    project, (_first, second) = settled
    second.organisation.registry_public = True
    session.commit()

    page = client.get(f"/api/v1/registry/blocks?project_id={project.id}").json

    assert [(b["serial_block"], b["holder"], b["status"]) for b in page["items"]] == [
        (serial(project, 1, 665), "private holder", "issued"),
        (serial(project, 666, 1596), second.organisation.name, "issued"),
        (serial(project, 1597, 1680), "buffer pool", "buffer"),
    ]
    found = client.get(f"/api/v1/registry/blocks?serial=SOM-P{project.id:06d}-2027-0000900")
    assert [b["serial_block"] for b in found.json["items"]] == [serial(project, 666, 1596)]
    bad = client.get("/api/v1/registry/blocks?serial=XYZ-1")
    assert bad.status_code == 422
    assert "serial" in bad.json["errors"]
    csv = client.get("/registry.csv").get_data(as_text=True).splitlines()
    assert csv[0].startswith("serial_block,project_id,vintage,quantity,holder,status")
    assert csv[1] == f"{serial(project, 1, 665)},{project.id},2027,665,private holder,issued,"


def test_the_certificate_renders_and_its_qr_code_opens_the_public_page(
    client, auth_headers, settled
):
    project, (first, _second) = settled
    body = retire(
        client,
        auth_headers(first),
        project,
        25,
        purpose="csrd_report",
        contract_reference="RTM-2026-0142",
    ).json

    response = client.get(f"/registry/retirements/{body['id']}/certificate.pdf")

    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    document = pypdfium2.PdfDocument(response.data)
    assert len(document) == 1
    image = document[0].render(scale=2).to_pil().convert("L")
    dark = sum(image.histogram()[:128])
    assert dark > image.width * image.height * 0.005  # text and a QR code, not a blank page
    text = document[0].get_textpage().get_text_range()
    assert serial(project, 1, 25) in text
    assert "RTM-2026-0142" in text
    codes = zxingcpp.read_barcodes(image)
    assert [code.text for code in codes] == [body["public_url"]]


def test_only_buyers_hold_and_retire(client, auth_headers, settled):
    project, _buyers = settled
    entrepreneur = auth_headers(project.created_by)
    assert client.get("/api/v1/holdings", headers=entrepreneur).status_code == 403
    assert retire(client, entrepreneur, project, 1).status_code == 403
    assert retire(client, auth_headers(UserFactory()), project, 1).status_code == 409


@pytest.mark.parametrize("language", ["en", "nl"])
def test_the_certificate_speaks_the_readers_language_and_stays_inside_its_margins(
    client, auth_headers, settled, language
):
    """Issue 16: the certificate gave no social value in euros, printed "15 of 12 person
    verified", ran past its margin and stayed English for a Dutch reader."""
    from config import PROJECT_ROOT

    project, (first, _second) = settled
    body = retire(
        client,
        auth_headers(first),
        project,
        25,
        beneficiary="Gemeente Rotterdam, afdeling Werk en Inkomen — inkoopprogramma Social Return",
        purpose="csrd_report",
        contract_reference="RTM-2026-0142",
    ).json
    client.set_cookie("som_lang", language)

    pdf = client.get(f"/registry/retirements/{body['id']}/certificate.pdf").data

    page = pypdfium2.PdfDocument(pdf)[0]
    text = " ".join(page.get_textpage().get_text_range().split())
    expected = {
        "en": [
            "Certificate of retirement",
            "Verified social value of these tokens",
            "€",
            "14 of 20 people verified",
            "Independent evaluator",
        ],
        "nl": [
            "Certificaat van afboeking",
            "Geverifieerde maatschappelijke waarde",
            "€",
            "14 van 20 personen geverifieerd",
            "Onafhankelijke evaluator",
        ],
    }[language]
    for words in expected:
        assert words in text, (words, text)
    assert "person verified" not in text and "cents" not in text
    width, _height = page.get_size()
    textpage = page.get_textpage()
    right = max(textpage.get_charbox(i)[2] for i in range(textpage.count_chars()))
    assert right <= width - 20 * 72 / 25.4 + 1, (right, width)  # within the 20 mm margin
    folder = PROJECT_ROOT / "test-artifacts" / "pdf"
    folder.mkdir(parents=True, exist_ok=True)
    page.render(scale=1.5).to_pil().save(folder / f"certificate-{language}.png")


def test_the_registry_page_finds_by_words_with_totals_per_project(client, session, settled):
    project, (_first, second) = settled
    second.organisation.registry_public = True
    session.commit()

    by_holder = client.get("/registry", query_string={"q": second.organisation.name.upper()})
    page = by_holder.get_data(as_text=True)
    assert by_holder.status_code == 200
    assert "Totals per project of what was found" in page
    assert serial(project, 666, 1596) in page and serial(project, 1, 665) not in page
    assert "931 tokens" in page  # held by that holder
    session.rollback()
    [total] = registry_services.registry_totals(
        session, registry_services.RegistryFilters(text=second.organisation.name)
    )
    assert (total.issued, total.retired, total.buffer) == (931, 0, 0)
    session.rollback()
    api = client.get("/api/v1/registry/blocks", query_string={"q": project.title[:6]}).json
    assert api["total"] == 3  # the two buyers' blocks and the buffer pool's

    dutch = client.get(
        "/registry", query_string={"q": project.title}, headers={"Accept-Language": "nl"}
    ).get_data(as_text=True)
    assert "Totalen per project van wat is gevonden" in dutch and "1.596 tokens" in dutch
    assert "84 tokens" in dutch  # the buffer pool's
    for odd in ("x" * 5000, "\x00x\x1f", "%_%", "' OR 1=1 --", "🙂"):
        answer = client.get("/registry", query_string={"q": odd})
        page = answer.get_data(as_text=True)
        assert answer.status_code == 200, odd
        assert "No serial blocks match." in page and "\x00" not in page, odd
    too_long = client.get("/api/v1/registry/blocks", query_string={"q": "x" * 101})
    assert too_long.status_code == 422 and "q" in too_long.json["errors"]
