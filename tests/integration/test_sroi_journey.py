"""Issue 18's journey for social return, through the CLI, the API and the pages: a
municipality's procurement office (an authority made on the command line) accepts a
supplier's obligation of 5% of a EUR 1,200,000.00 contract; the supplier has paid its
pledge by bank transfer in two parts (receipt) and been refunded what was not verified
(credit note); it retires its tokens against the obligation; the authority signs off; the
obligation shows the credit exactly as the rule gives it, and the same serials cannot
count again."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from marketplace.accounts.models import Role, User
from marketplace.cli import users_cli
from marketplace.receipts.models import DocumentKind, Receipt
from tests.integration.funding_support import buyer, pledge_states, pledge_via_api, tick
from tests.integration.test_claim_integrity import LATER
from tests.integration.test_sepa_and_bank_transfer import _fund, payment_of, quiet, until, webhooks
from tests.integration.test_settlement import (
    CLOSED,
    ENDED,
    STARTED,
    Settled,
    evaluate,
    listed_worked_example,
    onboard_owner,
    retire,
)

_ = webhooks  # a fixture


@pytest.fixture
def paid_by_transfer(app, client, session, auth_headers, clock, webhooks) -> Settled:
    """product.md's worked example, the supplier's 1,000 tokens (EUR 29,530.00) paid by
    bank transfer in two parts after funding closed; evaluated at 70% and settled."""
    project, admin = listed_worked_example(session)
    supplier = buyer("Havenstad Bank")
    mine = auth_headers(supplier)
    pledged = pledge_via_api(client, mine, project.id, 1000, "bank_transfer")
    assert pledged.status_code == 201, pledged.json
    assert pledge_via_api(client, auth_headers(buyer()), project.id, 1400).status_code == 201
    onboard_owner(client, auth_headers, project)
    tick(app, CLOSED)
    transfer = client.get(f"/api/v1/pledges/{pledged.json['id']}", headers=mine).json
    assert transfer["bank_transfer"]["remaining_cents"] == 2_953_000
    reference = transfer["bank_transfer"]["reference"]

    _fund(app, session, supplier.organisation_id, 1_000_000, reference)
    until(lambda: payment_of(session, pledged.json["id"]).received_cents == 1_000_000)
    tick(app, CLOSED + timedelta(hours=48))  # within the 72 hours to pay: it waits
    assert pledge_states(session, project.id) == ["processing", "paid"]
    _fund(app, session, supplier.organisation_id, 1_953_000, reference)
    until(lambda: pledge_states(session, project.id) == ["paid", "paid"])

    tick(app, STARTED + timedelta(minutes=5))
    tick(app, ENDED)
    quiet(session)
    evaluation_id, evaluator = evaluate(client, auth_headers, project, admin, verified=14)
    tick(app, ENDED + timedelta(days=1))
    quiet(session)
    return Settled(project, admin, supplier, evaluation_id, evaluator)


def test_a_municipality_signs_off_a_suppliers_social_return(
    app, client, session, auth_headers, paid_by_transfer, clock, web, monkeypatch
):
    clock.at = LATER
    example = paid_by_transfer
    supplier = example.bank
    price = example.project.token_price_cents

    # the authority's account comes from the command line, never from registration
    monkeypatch.setenv("USER_PASSWORD", "a long enough password")
    made = app.test_cli_runner().invoke(
        users_cli,
        [
            "create",
            "--role",
            "authority",
            "--email",
            "inkoop@rotterdam.example",
            "--name",
            "Fatima Bouzid",
            "--organisation",
            "Gemeente Rotterdam",
        ],
    )
    assert made.exit_code == 0, made.output
    session.rollback()
    authority = session.scalars(select(User).where(User.role == Role.AUTHORITY)).one()
    assert authority.organisation.sroi_factor == Decimal(1)
    city_id = authority.organisation_id
    city, mine = auth_headers(authority), auth_headers(supplier)
    registering = client.post(
        "/api/v1/auth/register",
        json={
            "email": "nep@rotterdam.example",
            "password": "a long enough password",
            "name": "Nep",
            "role": "authority",
            "organisation": "Gemeente Nep",
        },
    )
    assert registering.status_code == 422 and "role" in registering.json["errors"]

    public = client.get("/api/v1/authorities").json
    assert {"id": city_id, "name": "Gemeente Rotterdam", "factor": "1"} in public

    # the supplier registers its obligation; the municipality accepts it
    owed = client.post(
        "/api/v1/obligations",
        headers=mine,
        json={
            "authority_organisation_id": city_id,
            "contract_reference": "RTM-2027-0142",
            "contract_title": "Schoonmaak stadskantoren 2027-2029",
            "contract_value_cents": 120_000_000,
            "percentage": "0.05",
            "due_date": "2029-12-31",
        },
    )
    assert owed.status_code == 201 and owed.json["obligation_cents"] == 6_000_000
    path = f"/api/v1/obligations/{owed.json['id']}"
    assert client.post(f"{path}/accept", headers=city, json={}).json["state"] == "accepted"

    # the supplier's money: a receipt for its charge, a credit note for its refund, numbered
    session.rollback()
    documents = session.scalars(
        select(Receipt)
        .where(Receipt.organisation_id == supplier.organisation_id)
        .order_by(Receipt.year, Receipt.sequence)
    ).all()
    assert [d.kind for d in documents] == [DocumentKind.RECEIPT, DocumentKind.CREDIT_NOTE]
    every = session.scalars(select(Receipt).order_by(Receipt.year, Receipt.sequence)).all()
    for year in {d.year for d in every}:
        sequences = [d.sequence for d in every if d.year == year]
        assert sequences == list(range(1, len(sequences) + 1))
    session.rollback()

    # the supplier retires all its 665 tokens for the obligation
    retired = retire(
        client,
        mine,
        example.project.id,
        665,
        "sroi-journey",
        purpose="sroi_obligation",
        obligation_id=owed.json["id"],
        beneficiary="Gemeente Rotterdam, contract RTM-2027-0142",
    )
    assert retired.status_code == 201, retired.json
    assert retired.json["credit_cents"] == 665 * price == 1_963_745  # 665 x EUR 29.53 x 1
    [credit] = client.get(f"{path}/credits", headers=city).json
    signed = client.post(f"/api/v1/credits/{credit['id']}/sign-off", headers=city, json={})
    assert signed.json["state"] == "signed_off"

    figures = client.get(path, headers=mine).json
    assert (
        figures["obligation_cents"],
        figures["credited_cents"],
        figures["signed_off_cents"],
        figures["remaining_cents"],
    ) == (6_000_000, 1_963_745, 1_963_745, 4_036_255)

    # the same serials cannot count again, toward this obligation or another
    again = retire(
        client,
        mine,
        example.project.id,
        1,
        "sroi-again",
        purpose="sroi_obligation",
        obligation_id=owed.json["id"],
    )
    assert again.status_code == 409 and again.json["code"] == "insufficient_tokens"

    # the pages say the same, in Dutch for the supplier
    page = web.as_user(supplier.email)
    page.client.set_cookie("som_lang", "nl")
    text = page.get(f"/obligations/{owed.json['id']}").get_data(as_text=True)
    for words in ("60.000,00", "19.637,45", "40.362,55", "afgetekend"):
        assert words in text, words
    web.login(authority.email, "a long enough password")
    export = web.get("/obligations/export.csv").get_data(as_text=True)
    assert "1963745" in export and "4036255" in export
