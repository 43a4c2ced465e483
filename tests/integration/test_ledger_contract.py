"""The ledger's exact answers: refusals, reports, account codes and what an entry records.

Written against mutants `make mutation` found alive in ledger/services.py
(bench/MUTATION.md): each test pins a message, a field name, a figure or a
column that a changed ledger would get wrong while the balances still added up.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from marketplace.ledger.models import AccountKind, JournalEntry, JournalLeg, LedgerAccount
from marketplace.ledger.services import (
    LedgerError,
    Leg,
    Posting,
    ReferenceConflict,
    account_code,
    get_account,
    post,
    post_many,
    reverse,
    verify,
)
from outcomes.errors import ValidationFailed
from tests.integration.test_ledger import books  # noqa: F401 - the fixture

NOW = datetime(2027, 3, 1, tzinfo=UTC)


def refused(call) -> dict:
    with pytest.raises(ValidationFailed) as failed:
        call()
    return failed.value.errors


def test_legs_are_refused_with_the_field_and_message(session, books):
    a, b = books["clearing"], books["buyer"]

    def posting(*legs):
        return lambda: post(session, reference="x", kind="charge", legs=list(legs), now=NOW)

    assert refused(posting()) == {"legs": ["An entry moves money in at least one leg."]}
    for amount in (0, -5, True, 2.5):
        assert refused(posting(Leg(a, b, 100), Leg(a, b, amount))) == {
            "legs.1.amount_cents": ["A positive whole number of cents."]
        }
    assert refused(posting(Leg(a, a, 100))) == {
        "legs.0": ["A leg moves money between two accounts."]
    }
    assert refused(lambda: post_many(session, [Posting("y", "charge", [])], now=NOW)) == {
        "legs": ["An entry moves money in at least one leg."]
    }
    twice = [Posting("z", "charge", [Leg(a, b, 1)]), Posting("z", "charge", [Leg(a, b, 1)])]
    assert refused(lambda: post_many(session, twice, now=NOW)) == {
        "reference": ["Each posting needs its own reference."]
    }
    session.rollback()
    assert session.scalars(select(JournalEntry)).all() == []


def test_an_entry_records_its_reference_kind_time_memo_and_legs(session, books):
    a, b, c = books["clearing"], books["buyer"], books["escrow"]

    entry = post(
        session,
        reference="charge:pi_1",
        kind="charge",
        legs=[Leg(a, b, 700), Leg(b, c, 700)],
        now=NOW,
        memo="Pledge 1",
    )
    session.commit()
    session.expire_all()

    stored = session.scalars(select(JournalEntry).where(JournalEntry.id == entry.id)).one()
    assert (stored.reference, stored.kind, stored.memo, stored.reverses_id) == (
        "charge:pi_1",
        "charge",
        "Pledge 1",
        None,
    )
    assert stored.at.replace(tzinfo=UTC) == NOW
    assert sorted(
        (leg.debit_account_id, leg.credit_account_id, leg.amount_cents) for leg in stored.legs
    ) == sorted([(a.id, b.id, 700), (b.id, c.id, 700)])
    # the same reference with the same legs is the same entry; with others it is refused
    assert (
        post(
            session,
            reference="charge:pi_1",
            kind="charge",
            legs=[Leg(b, c, 700), Leg(a, b, 700)],
            now=NOW,
        ).id
        == entry.id
    )
    with pytest.raises(ReferenceConflict) as conflict:
        post(session, reference="charge:pi_1", kind="charge", legs=[Leg(a, b, 701)], now=NOW)
    assert conflict.value.detail == "charge:pi_1 was posted before with other amounts."


def test_a_batch_records_each_entry_and_refuses_a_changed_one_by_name(session, books):
    a, b = books["clearing"], books["buyer"]
    batch = [
        Posting("r:1", "refund", [Leg(b, a, 100)], memo="first"),
        Posting("r:2", "refund", [Leg(b, a, 250)], memo="second"),
    ]

    assert post_many(session, batch, now=NOW) == 2
    session.commit()
    stored = {
        e.reference: (e.kind, e.memo, sum(leg.amount_cents for leg in e.legs))
        for e in session.scalars(select(JournalEntry))
    }
    assert stored == {"r:1": ("refund", "first", 100), "r:2": ("refund", "second", 250)}
    assert post_many(session, batch, now=NOW) == 0
    changed = [batch[0], Posting("r:2", "refund", [Leg(b, a, 251)])]
    with pytest.raises(ReferenceConflict) as conflict:
        post_many(session, changed, now=NOW)
    assert conflict.value.detail == "r:2 was posted before with other amounts."


def test_a_reversal_records_what_it_undoes_and_is_not_itself_reversed(session, books):
    a, b = books["clearing"], books["buyer"]
    entry = post(session, reference="c:9", kind="charge", legs=[Leg(a, b, 300)], now=NOW)

    undone = reverse(session, entry, now=NOW, reason="Refund failed at the bank.")
    session.commit()

    assert (undone.reference, undone.kind, undone.memo, undone.reverses_id) == (
        "c:9:reversal",
        "reversal",
        "Refund failed at the bank.",
        entry.id,
    )
    assert [(leg.debit_account_id, leg.credit_account_id) for leg in undone.legs] == [(b.id, a.id)]
    with pytest.raises(LedgerError) as twice:
        reverse(session, entry, now=NOW, reason="again")
    assert twice.value.detail == "c:9 is already reversed."
    with pytest.raises(LedgerError) as of_reversal:
        reverse(session, undone, now=NOW, reason="again")
    assert of_reversal.value.detail == "A reversal is not reversed; post a new entry instead."


def test_verify_names_each_account_in_order_and_the_imbalance(session, books):
    assert verify(session) == []  # an empty journal agrees too
    a, b, c = books["clearing"], books["buyer"], books["escrow"]
    post(session, reference="p", kind="charge", legs=[Leg(a, b, 500), Leg(b, c, 500)], now=NOW)
    session.commit()
    assert verify(session) == []

    session.execute(update(LedgerAccount).where(LedgerAccount.id == c.id).values(balance_cents=480))
    session.execute(update(LedgerAccount).where(LedgerAccount.id == a.id).values(balance_cents=530))
    session.commit()

    first, second = sorted([(a.id, a.code, 530, 500), (c.id, c.code, 480, 500)])
    assert verify(session) == [
        f"{first[1]}: stored {first[2]}, journal says {first[3]}",
        f"{second[1]}: stored {second[2]}, journal says {second[3]}",
        "debit-normal and credit-normal balances differ by 50 cents",
    ]


def test_an_account_without_legs_is_expected_at_zero(session, books):
    session.execute(
        update(LedgerAccount).where(LedgerAccount.id == books["payable"].id).values(balance_cents=7)
    )
    session.commit()

    assert verify(session) == [
        f"{books['payable'].code}: stored 7, journal says 0",
        "debit-normal and credit-normal balances differ by -7 cents",
    ]


def test_account_codes_and_the_owner_each_kind_needs():
    assert account_code(AccountKind.STRIPE_CLEARING) == "stripe:clearing"
    assert account_code(AccountKind.PLATFORM_FEES) == "platform:fees"
    assert account_code(AccountKind.ESCROW, project_id=12) == "escrow:project:12"
    assert account_code(AccountKind.BUYER, organisation_id=3) == "buyer:organisation:3"
    assert account_code(AccountKind.PAYABLE, organisation_id=4) == "payable:organisation:4"
    with pytest.raises(ValueError, match=r"^an escrow account belongs to a project$"):
        account_code(AccountKind.ESCROW, organisation_id=3)
    with pytest.raises(
        ValueError, match=f"^{re.escape('a buyer account belongs to an organisation')}$"
    ):
        account_code(AccountKind.BUYER, project_id=3)


def test_an_account_is_made_once_with_its_kinds_rules(session, books):
    fees = session.get(LedgerAccount, books["fees"].id)
    clearing = session.get(LedgerAccount, books["clearing"].id)
    buyer = session.get(LedgerAccount, books["buyer"].id)

    assert (clearing.debit_normal, clearing.may_go_negative) == (True, True)
    assert (fees.debit_normal, fees.may_go_negative) == (False, False)
    assert (buyer.debit_normal, buyer.may_go_negative) == (False, True)
    escrow = session.get(LedgerAccount, books["escrow"].id)
    assert (escrow.kind, escrow.balance_cents, escrow.may_go_negative) == (
        AccountKind.ESCROW,
        0,
        False,
    )
    # found again by its code, not made twice, in this session and in a new one
    again = get_account(session, AccountKind.ESCROW, project_id=escrow.project_id)
    assert again.id == escrow.id
    session.info.pop("ledger_accounts", None)
    assert get_account(session, AccountKind.ESCROW, project_id=escrow.project_id).id == escrow.id
    session.commit()
    codes = session.scalars(select(LedgerAccount.code)).all()
    assert len(codes) == len(set(codes)) == 5
    assert session.scalars(select(JournalLeg)).all() == []
