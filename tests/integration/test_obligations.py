"""Social-return obligations (product.md "Social-return obligations (SROI)"): registered by
a supplier, accepted or rejected by its contracting authority, credited by retirements at
``tokens * price * factor``, each credit signed off or rejected; a serial counts toward one
obligation at most, also when twenty requests race for the same tokens."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import Role
from marketplace.notifications.models import Notification
from marketplace.obligations import services as obligation_services
from marketplace.obligations.models import (
    Credit,
    CreditStateChange,
    Obligation,
    ObligationStateChange,
)
from marketplace.obligations.services import (
    MAX_CONTRACT_VALUE_CENTS,
    NewObligation,
    credit_cents,
    obligation_cents,
)
from outcomes.errors import ValidationFailed
from tests.factories import OrganisationFactory, UserFactory
from tests.integration.test_claim_integrity import LATER
from tests.integration.test_settlement import (  # noqa: F401 - the fixtures
    retire,
    settled_example,
    worked_example,
)
from tests.support.races import at_once

CONTRACT = {
    "contract_reference": "RTM-2027-0142",
    "contract_title": "Schoonmaak stadskantoren",
    "contract_value_cents": 120_000_000,  # EUR 1,200,000.00
    "percentage": "0.05",
    "due_date": "2029-12-31",
}


@pytest.fixture
def parties(session, auth_headers, settled_example, clock):
    """The settled worked example's bank (665 tokens held), a municipality that is a
    contracting authority, and a second authority and buyer that are strangers to both."""
    clock.at = LATER
    city = OrganisationFactory(name="Gemeente Rotterdam", sroi_factor=Decimal(1))
    authority = UserFactory(role=Role.AUTHORITY, organisation=city)
    other_city = OrganisationFactory(name="Gemeente Delft", sroi_factor=Decimal(1))
    other_authority = UserFactory(role=Role.AUTHORITY, organisation=other_city)
    other_buyer = UserFactory(role=Role.BUYER, organisation=OrganisationFactory())
    session.commit()
    return {
        "example": settled_example,
        "city": city.id,
        "bank": auth_headers(settled_example.bank),
        "authority": auth_headers(authority),
        "other_authority": auth_headers(other_authority),
        "other_buyer": auth_headers(other_buyer),
        "other_buyer_org": other_buyer.organisation_id,
        "bank_org": settled_example.bank.organisation_id,
        "project": settled_example.project.id,
        "price": settled_example.project.token_price_cents,
    }


def register(client, headers, authority_id, **changes):
    return client.post(
        "/api/v1/obligations",
        headers=headers,
        json={**CONTRACT, "authority_organisation_id": authority_id, **changes},
    )


def accepted(client, parties, **changes) -> int:
    made = register(client, parties["bank"], parties["city"], **changes)
    assert made.status_code == 201, made.json
    decided = client.post(
        f"/api/v1/obligations/{made.json['id']}/accept", headers=parties["authority"], json={}
    )
    assert decided.status_code == 200, decided.json
    return made.json["id"]


def count(session, model) -> int:
    session.rollback()
    found = session.scalar(select(func.count()).select_from(model))
    session.rollback()
    return found


def test_the_amount_due_is_the_contracts_share_rounded_half_even():
    assert obligation_cents(120_000_000, Decimal("0.05")) == 6_000_000  # EUR 60,000.00
    assert obligation_cents(50, Decimal("0.05")) == 2  # 2.5 cents: to the even cent
    assert obligation_cents(70, Decimal("0.05")) == 4  # 3.5 cents: to the even cent
    assert obligation_cents(12_345, Decimal("0.025")) == 309  # 308.625
    assert credit_cents(7, 2953, Decimal("1.25")) == 25_839  # 25,838.75 -> up
    assert credit_cents(2, 2953, Decimal("0.75")) == 4_430  # 4,429.5: to the even cent


def test_a_supplier_registers_and_the_authority_accepts(client, session, parties):
    made = register(client, parties["bank"], parties["city"])

    assert made.status_code == 201, made.json
    body = made.json
    assert body["state"] == "pending"
    assert body["obligation_cents"] == 6_000_000
    assert (
        body["credited_cents"],
        body["signed_off_cents"],
        body["remaining_cents"],
        body["pending_credits"],
    ) == (0, 0, 6_000_000, 0)
    assert body["authority"] == "Gemeente Rotterdam" and body["percentage"] == "0.05"
    session.rollback()
    told = session.scalars(
        select(Notification).where(Notification.organisation_id == parties["city"])
    ).all()
    assert [n.kind for n in told] == ["obligation"]

    # only that authority decides; the supplier, another authority and a stranger cannot
    path = f"/api/v1/obligations/{body['id']}"
    assert client.post(f"{path}/accept", headers=parties["bank"], json={}).status_code == 403
    for stranger in ("other_authority",):
        assert client.post(f"{path}/accept", headers=parties[stranger], json={}).status_code == 404
        assert client.get(path, headers=parties[stranger]).status_code == 404
    assert client.get(path, headers=parties["other_buyer"]).status_code == 404
    no_reason = client.post(f"{path}/reject", headers=parties["authority"], json={})
    assert no_reason.status_code == 422 and list(no_reason.json["errors"]) == ["reason"]

    ok = client.post(f"{path}/accept", headers=parties["authority"], json={})
    assert ok.status_code == 200 and ok.json["state"] == "accepted"
    again = client.post(f"{path}/accept", headers=parties["authority"], json={})
    assert again.status_code == 409 and again.json["code"] == "invalid_transition"
    late = client.post(
        f"{path}/reject", headers=parties["authority"], json={"reason": "Wrong contract."}
    )
    assert late.status_code == 409
    session.rollback()
    moves = session.scalars(
        select(ObligationStateChange.to_state).where(
            ObligationStateChange.obligation_id == body["id"]
        )
    ).all()
    assert [m.value for m in moves] == ["pending", "accepted"]
    assert client.get(path, headers=parties["authority"]).json["state"] == "accepted"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"percentage": "0"}, "percentage"),
        ({"percentage": "1.5"}, "percentage"),
        ({"percentage": "-0.05"}, "percentage"),
        ({"percentage": "NaN"}, "percentage"),
        ({"percentage": "0.0000001"}, "percentage"),
        ({"contract_value_cents": 10, "percentage": "0.01"}, "percentage"),  # < 1 cent
        ({"contract_value_cents": 0}, "contract_value_cents"),
        ({"contract_value_cents": 10**15}, "contract_value_cents"),
        ({"contract_value_cents": "12.5"}, "contract_value_cents"),
        ({"due_date": "2020-01-01"}, "due_date"),  # before today
        ({"due_date": "2090-01-01"}, "due_date"),  # beyond 30 years
        ({"due_date": "31-12-2029"}, "due_date"),
        ({"contract_reference": "RTM\x07-1"}, "contract_reference"),
        ({"contract_reference": "R" * 201}, "contract_reference"),
        ({"contract_title": "  "}, "contract_title"),
        ({"authority_organisation_id": 99_999}, "authority_organisation_id"),
    ],
)
def test_odd_registrations_are_refused_naming_the_field(client, session, parties, changes, field):
    before = count(session, Obligation)

    refused = register(client, parties["bank"], parties["city"], **changes)

    assert refused.status_code == 422, refused.json
    assert field in refused.json["errors"], refused.json
    assert count(session, Obligation) == before


def test_one_contract_is_registered_once_until_rejected(client, session, parties):
    first = register(client, parties["bank"], parties["city"])
    twin = register(client, parties["bank"], parties["city"])
    assert twin.status_code == 409 and twin.json["code"] == "obligation_exists"
    # a buyer is no authority, and one cannot owe oneself
    buyer_as_authority = register(client, parties["bank"], parties["bank_org"])
    assert list(buyer_as_authority.json["errors"]) == ["authority_organisation_id"]

    rejected = client.post(
        f"/api/v1/obligations/{first.json['id']}/reject",
        headers=parties["authority"],
        json={"reason": "The contract value is the framework's, not the order's."},
    )
    assert rejected.status_code == 200 and rejected.json["state"] == "rejected"
    assert rejected.json["reason"].startswith("The contract value")
    again = register(client, parties["bank"], parties["city"], contract_value_cents=80_000_000)
    assert again.status_code == 201 and again.json["obligation_cents"] == 4_000_000


def test_retirements_are_credited_at_tokens_times_price_times_the_factor(client, session, parties):
    obligation_id = accepted(client, parties)
    price = parties["price"]
    pending = register(client, parties["bank"], parties["city"], contract_reference="RTM-9")

    not_yet = retire(
        client,
        parties["bank"],
        parties["project"],
        5,
        "sroi-pending",
        purpose="sroi_obligation",
        obligation_id=pending.json["id"],
    )
    assert not_yet.status_code == 422 and not_yet.json["errors"] == {
        "obligation_id": ["Choose an obligation of your organisation its authority accepted."]
    }

    first = retire(
        client,
        parties["bank"],
        parties["project"],
        100,
        "sroi-1",
        purpose="sroi_obligation",
        obligation_id=obligation_id,
    )
    assert first.status_code == 201, first.json
    assert first.json["credit_cents"] == 100 * price

    # the authority publishes a factor: later credits use it, the first keeps 1
    factor = client.put(
        f"/api/v1/authorities/{parties['city']}/factor",
        headers=parties["authority"],
        json={"factor": "1.25"},
    )
    assert factor.status_code == 200 and factor.json["factor"] == "1.25"
    second = retire(
        client,
        parties["bank"],
        parties["project"],
        7,
        "sroi-2",
        purpose="sroi_obligation",
        obligation_id=obligation_id,
    )
    assert second.json["credit_cents"] == credit_cents(7, price, Decimal("1.25"))
    # a replay answers the same, credits nothing twice
    replay = retire(
        client,
        parties["bank"],
        parties["project"],
        7,
        "sroi-2",
        purpose="sroi_obligation",
        obligation_id=obligation_id,
    )
    assert replay.json == second.json
    assert count(session, Credit) == 2

    # a stranger cannot use the obligation, an ordinary retirement cannot name it
    stolen = retire(
        client,
        parties["other_buyer"],
        parties["project"],
        1,
        "sroi-stolen",
        purpose="sroi_obligation",
        obligation_id=obligation_id,
    )
    assert stolen.status_code == 422
    wrong_purpose = retire(
        client, parties["bank"], parties["project"], 1, "csr-named", obligation_id=obligation_id
    )
    assert wrong_purpose.status_code == 422

    credits = client.get(
        f"/api/v1/obligations/{obligation_id}/credits", headers=parties["authority"]
    ).json
    assert [
        (c["tokens"], c["price_cents"], c["factor"], c["credit_cents"], c["state"]) for c in credits
    ] == [
        (100, price, "1", 100 * price, "pending"),
        (7, price, "1.25", credit_cents(7, price, Decimal("1.25")), "pending"),
    ]
    first_credit, second_credit = credits
    waiting = client.get(f"/api/v1/obligations/{obligation_id}", headers=parties["authority"])
    assert waiting.json["pending_credits"] == 2
    signed = client.post(
        f"/api/v1/credits/{first_credit['id']}/sign-off", headers=parties["authority"], json={}
    )
    assert signed.status_code == 200 and signed.json["state"] == "signed_off"
    twice = client.post(
        f"/api/v1/credits/{first_credit['id']}/sign-off", headers=parties["authority"], json={}
    )
    assert twice.status_code == 409
    by_supplier = client.post(
        f"/api/v1/credits/{second_credit['id']}/sign-off", headers=parties["bank"], json={}
    )
    assert by_supplier.status_code == 403
    by_other = client.post(
        f"/api/v1/credits/{second_credit['id']}/sign-off",
        headers=parties["other_authority"],
        json={},
    )
    assert by_other.status_code == 404 and by_other.json["detail"] == "No such credit."
    rejected = client.post(
        f"/api/v1/credits/{second_credit['id']}/reject",
        headers=parties["authority"],
        json={"reason": "These jobs were claimed under another tender."},
    )
    assert rejected.status_code == 200 and rejected.json["state"] == "rejected"

    figures = client.get(f"/api/v1/obligations/{obligation_id}", headers=parties["bank"]).json
    assert figures["credited_cents"] == 100 * price  # the rejected credit no longer counts
    assert figures["signed_off_cents"] == 100 * price
    assert figures["remaining_cents"] == 6_000_000 - 100 * price
    assert figures["pending_credits"] == 0
    session.rollback()
    moves = session.execute(
        select(CreditStateChange.to_state, CreditStateChange.reason).order_by(CreditStateChange.id)
    ).all()
    assert [(m.to_state.value, m.reason) for m in moves] == [
        ("pending", "credited"),
        ("pending", "credited"),
        ("signed_off", "signed off"),
        ("rejected", "These jobs were claimed under another tender."),
    ]
    kinds = session.scalars(
        select(Notification.kind).where(Notification.organisation_id == parties["bank_org"])
    ).all()
    assert kinds.count("obligation_credit") == 2 and kinds.count("obligation") == 1
    session.rollback()


def test_the_authority_exports_its_obligations_as_csv(app, client, session, parties, web):
    obligation_id = accepted(client, parties, contract_title='=HYPERLINK("x") schoonmaak')
    retire(
        client,
        parties["bank"],
        parties["project"],
        10,
        "csv-1",
        purpose="sroi_obligation",
        obligation_id=obligation_id,
    )
    session.rollback()
    authority = session.scalars(
        select(UserFactory._meta.model).where(
            UserFactory._meta.model.role == Role.AUTHORITY,
            UserFactory._meta.model.organisation_id == parties["city"],
        )
    ).one()
    session.rollback()
    web.login(authority.email)

    response = web.get("/obligations/export.csv")

    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    [row] = rows
    assert row["contract_title"].startswith("'=")  # a formula is written as text
    assert row["obligation_cents"] == "6000000"
    assert row["credited_cents"] == str(10 * parties["price"])
    assert row["state"] == "accepted" and row["supplier"]


def test_twenty_requests_for_the_same_serials_credit_one_obligation_once(
    app, client, session, parties
):
    """The bank's 665 tokens, asked for by twenty retirements at once, alternately for
    two of its obligations: one retirement and one credit, the rest refused."""
    first = accepted(client, parties)
    second = accepted(client, parties, contract_reference="RTM-2027-0143")
    headers, project_id = parties["bank"], parties["project"]

    def attempt(n: int) -> int:
        return retire(
            app.test_client(),
            headers,
            project_id,
            665,
            f"race-{n}",
            purpose="sroi_obligation",
            obligation_id=(first, second)[n % 2],
        ).status_code

    answers = at_once(20, attempt)

    assert answers.count(201) == 1 and set(answers) <= {201, 409}, answers
    assert count(session, Credit) == 1
    together = sum(
        client.get(f"/api/v1/obligations/{o}", headers=headers).json["credited_cents"]
        for o in (first, second)
    )
    assert together == 665 * parties["price"]


def _email(session, organisation_id: int, role: Role) -> str:
    session.rollback()
    model = UserFactory._meta.model
    found = session.scalars(
        select(model.email).where(model.role == role, model.organisation_id == organisation_id)
    ).first()
    session.rollback()
    return found


def test_the_pages_take_amounts_as_the_reader_writes_them_and_the_authority_decides(
    client, session, parties, web
):
    supplier = web.as_user(_email(session, parties["bank_org"], Role.BUYER))
    supplier.client.set_cookie("som_lang", "nl")
    form = {
        "authority_organisation_id": str(parties["city"]),
        "contract_reference": "RTM-2027-0150",
        "contract_title": "Groenonderhoud Zuid",
        "contract_value": "1.200.000,00",
        "percentage": "2,5%",
        "due_date": "2029-06-30",
    }
    for field, odd in (
        ("contract_value", "1.200.000,005"),
        ("contract_value", "1E+9999"),
        ("contract_value", "-5"),
        ("percentage", "vijf"),
        ("percentage", "1E+9999"),
    ):
        refused = supplier.submit("/obligations/new", {**form, field: odd})
        assert refused.status_code == 422
        assert f'id="{field}-error"' in refused.get_data(as_text=True)
    assert count(session, Obligation) == 0

    made = supplier.submit("/obligations/new", form)
    assert made.status_code == 302
    page = supplier.get(made.headers["Location"]).get_data(as_text=True)
    assert "30.000,00" in page and "wacht op besluit" in page, page  # 2.5% of 1,200,000.00
    twice = supplier.submit("/obligations/new", form)  # a second click
    assert twice.status_code == 409 and count(session, Obligation) == 1

    authority = web.as_user(_email(session, parties["city"], Role.AUTHORITY))
    listing = authority.get("/obligations").get_data(as_text=True)
    assert "Groenonderhoud Zuid" in listing
    session.rollback()
    obligation_id = session.scalar(select(Obligation.id))
    session.rollback()
    path = f"/obligations/{obligation_id}"
    short = authority.submit(path, {"reason": "No."}, action=f"{path}/reject")
    assert short.status_code == 422 and 'id="reason-error"' in short.get_data(as_text=True)
    accepted = authority.submit(path, {}, action=f"{path}/accept")
    assert accepted.status_code == 302
    again = authority.submit(path, {}, action=f"{path}/accept")  # a double click
    assert again.status_code == 409
    # the supplier's colleague at another company sees nothing of it
    assert supplier.get(path).status_code == 200
    stranger = web.as_user(_email(session, parties["other_buyer_org"], Role.BUYER))
    assert stranger.get(path).status_code == 404


def test_the_service_itself_refuses_contract_values_outside_its_range(session, parties):
    """The API's schema stops these first; the service holds the rule for every caller."""
    session.rollback()
    bank = session.get(UserFactory._meta.model, parties["example"].bank.id)
    due = LATER.date().replace(year=LATER.year + 1)

    def new(value: int) -> NewObligation:
        return NewObligation(parties["city"], f"V-{value}", "Schoonmaak", value, Decimal("1"), due)

    for value in (0, MAX_CONTRACT_VALUE_CENTS + 1):
        with pytest.raises(ValidationFailed) as refused:
            obligation_services.register(session, bank, new(value), now=LATER)
        [message] = refused.value.errors["contract_value_cents"]
        assert str(message) == "Between 1 cent and EUR 100,000,000,000.00."
    for value in (1, MAX_CONTRACT_VALUE_CENTS):  # the bounds themselves are taken
        made = obligation_services.register(session, bank, new(value), now=LATER)
        assert made.obligation_cents == value
    session.rollback()


def test_the_obligations_page_pages_fifty_at_a_time(client, session, parties, web):
    for n in range(51):
        made = register(
            client, parties["bank"], parties["city"], contract_reference=f"RTM-P-{n:03d}"
        )
        assert made.status_code == 201
    supplier = web.as_user(_email(session, parties["bank_org"], Role.BUYER))

    first = supplier.get("/obligations").get_data(as_text=True)
    second = supplier.get("/obligations?page=2").get_data(as_text=True)

    assert first.count('class="card"') - second.count('class="card"') == 49
    assert "Page 1 of 2" in first and 'rel="next"' in first
    assert "Page 2 of 2" in second and 'rel="prev"' in second
    assert supplier.get("/obligations?page=x").status_code == 422


def test_a_leap_day_registration_reaches_thirty_years_ahead(session, parties):
    """On 29 February the latest due date is 28 February thirty years on (that year has no
    29th); asking for 2058 on a leap day was a server error."""
    session.rollback()
    bank = session.get(UserFactory._meta.model, parties["example"].bank.id)
    leap_day = datetime(2028, 2, 29, 12, tzinfo=UTC)

    def new(due: date, reference: str) -> NewObligation:
        return NewObligation(parties["city"], reference, "Schoonmaak", 10_000, Decimal("0.05"), due)

    made = obligation_services.register(
        session, bank, new(date(2058, 2, 28), "LEAP-1"), now=leap_day
    )
    assert made.due_date == date(2058, 2, 28)
    with pytest.raises(ValidationFailed) as refused:
        obligation_services.register(session, bank, new(date(2058, 3, 1), "LEAP-2"), now=leap_day)
    assert list(refused.value.errors) == ["due_date"]
    session.rollback()
