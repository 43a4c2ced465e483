"""Token transfers (product.md "Token transfers"): unretired, unfrozen tokens to another
verified organisation, final, split like a retirement, public in the serial's history;
concurrent transfers and retirements never spend more than is held."""

from __future__ import annotations

from sqlalchemy import func, select

from marketplace.accounts.models import Role
from marketplace.registry.models import BlockStatus, TokenBlock, TokenTransfer
from tests.factories import OrganisationFactory, UserFactory
from tests.integration.test_claim_integrity import LATER, open_dispute
from tests.integration.test_settlement import (  # noqa: F401 - the fixtures
    ENDED,
    retire,
    settled_example,
    worked_example,
)
from tests.support.races import at_once


def transfer(client, headers, project_id, quantity, to, key, **extra):
    return client.post(
        "/api/v1/transfers",
        headers={**headers, "Idempotency-Key": key},
        json={"project_id": project_id, "quantity": quantity, "to_organisation_id": to, **extra},
    )


def held(session, organisation_id, project_id) -> int:
    session.rollback()
    size = TokenBlock.last_serial - TokenBlock.first_serial + 1
    found = session.scalar(
        select(func.coalesce(func.sum(size), 0)).where(
            TokenBlock.holder_id == organisation_id,
            TokenBlock.project_id == project_id,
            TokenBlock.status == BlockStatus.ISSUED,
        )
    )
    session.rollback()
    return int(found)


def test_a_transfer_moves_serials_to_a_verified_organisation_and_is_in_their_history(
    client, session, auth_headers, settled_example, clock
):
    example = settled_example
    clock.at = LATER
    project_id, bank = example.project.id, example.bank
    receiver = OrganisationFactory(registry_public=True)
    stranger = OrganisationFactory(verified_at=None)
    city = UserFactory(role=Role.BUYER, organisation=receiver)
    session.commit()
    bank_headers, city_headers = auth_headers(bank), auth_headers(city)
    receiver_id, stranger_id, bank_org = receiver.id, stranger.id, bank.organisation_id
    session.rollback()

    for bad, field in (
        ({"to": stranger_id}, "to_organisation_id"),
        ({"to": bank_org}, "to_organisation_id"),
        ({"to": 10**9}, "to_organisation_id"),
    ):
        refused = transfer(client, bank_headers, project_id, 5, bad["to"], f"bad-{bad['to']}")
        assert refused.status_code == 422 and field in refused.json["errors"], refused.json
    too_many = transfer(client, bank_headers, project_id, 666, receiver_id, "many")
    assert too_many.status_code == 409 and too_many.json["code"] == "insufficient_tokens"

    made = transfer(client, bank_headers, project_id, 100, receiver_id, "t1", note="For SROI")
    assert made.status_code == 201, made.json
    assert made.json["serial_blocks"] == [f"SOM-P{project_id:06d}-2027-0000001-0000100"]
    twice = transfer(client, bank_headers, project_id, 100, receiver_id, "t1", note="For SROI")
    assert twice.json == made.json  # the same key: one transfer
    assert (held(session, bank_org, project_id), held(session, receiver_id, project_id)) == (
        565,
        100,
    )
    # the receiver retires some of them; the trail shows issued to the bank, transferred,
    # retired by the municipality
    assert retire(client, city_headers, project_id, 30, "city").status_code == 201
    trail = client.get(f"/api/v1/registry/serials/SOM-P{project_id:06d}-2027-0000010/trail").json
    assert trail["block"]["status"] == "retired"
    assert trail["block"]["transfers"] == [
        {
            "from": "private holder",
            "to": receiver.name,
            "transferred_at": trail["block"]["transfers"][0]["transferred_at"],
        }
    ]
    assert trail["retirement"]["beneficiary"] == "Gemeente Rotterdam"
    session.rollback()
    assert session.scalar(select(func.count()).select_from(TokenTransfer)) == 1


def test_frozen_tokens_cannot_be_transferred(client, session, auth_headers, settled_example, clock):
    example = settled_example
    clock.at = LATER
    receiver = OrganisationFactory()
    session.commit()
    receiver_id = receiver.id
    open_dispute(client, session, auth_headers, example)
    headers = auth_headers(example.bank)
    session.rollback()
    frozen = transfer(client, headers, example.project.id, 5, receiver_id, "frozen")
    assert frozen.status_code == 409 and frozen.json["code"] == "frozen"


def test_twenty_transfers_and_retirements_at_once_never_spend_more_than_held(
    app, client, session, auth_headers, settled_example, clock
):
    """The bank holds 665: twenty requests of 50 each (ten transfers, ten retirements)
    at once; at most thirteen succeed, and what moved equals what the bank no longer holds."""
    example = settled_example
    clock.at = LATER
    receiver = OrganisationFactory()
    session.commit()
    receiver_id, project_id, bank_org = (
        receiver.id,
        example.project.id,
        example.bank.organisation_id,
    )
    headers = auth_headers(example.bank)
    session.rollback()

    def attempt(n: int) -> int:
        mine = app.test_client()
        if n % 2:
            return transfer(mine, headers, project_id, 50, receiver_id, f"t-{n}").status_code
        return retire(mine, headers, project_id, 50, f"r-{n}").status_code

    answers = at_once(20, attempt)

    succeeded = answers.count(201)
    assert set(answers) <= {201, 409} and 1 <= succeeded <= 13, answers
    left = held(session, bank_org, project_id)
    assert left == 665 - 50 * succeeded
    size = TokenBlock.last_serial - TokenBlock.first_serial + 1
    total = session.scalar(select(func.sum(size)).where(TokenBlock.project_id == project_id))
    assert total == 1680  # every serial still exactly once
    session.rollback()


def test_the_holdings_page_transfers_once_after_a_review(
    app, client, session, auth_headers, settled_example, clock, web
):
    example = settled_example
    clock.at = LATER
    receiver = OrganisationFactory(name="Stichting Ontvanger")
    stranger = OrganisationFactory(name="Niet Geverifieerd", verified_at=None)
    session.commit()
    receiver_id, stranger_id = receiver.id, stranger.id
    project_id, bank_org = example.project.id, example.bank.organisation_id
    session.rollback()
    bank = web.as_user(example.bank.email)
    page = bank.get("/holdings").get_data(as_text=True)
    assert "Stichting Ontvanger" in page and "Niet Geverifieerd" not in page
    form = {"project_id": str(project_id), "quantity": "15", "to_organisation_id": str(receiver_id)}

    odd = bank.submit(
        "/holdings", {**form, "to_organisation_id": str(stranger_id)}, action="/holdings/transfer"
    )
    assert odd.status_code == 422 and "transfer_to-error" in odd.get_data(as_text=True)
    review = bank.submit("/holdings", form, action="/holdings/transfer")
    assert review.status_code == 200 and "Stichting Ontvanger" in review.get_data(as_text=True)
    assert held(session, receiver_id, project_id) == 0  # the review moved nothing

    key = {"form_key": "transfer-once", "confirmed": "yes"}
    first = bank.submit("/holdings", {**form, **key}, action="/holdings/transfer")
    again = bank.submit("/holdings", {**form, **key}, action="/holdings/transfer")  # double click
    assert first.status_code == 302 and again.status_code == 302
    assert held(session, receiver_id, project_id) == 15
    assert held(session, bank_org, project_id) == 665 - 15
