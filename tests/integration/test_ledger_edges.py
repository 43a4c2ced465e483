"""The ledger at its edges: repeated accounts in one entry, the audit trail of each
entry, lookups that must not write, empty books, and the races a second process wins.

Written against mutants `make mutation` found alive in ledger/services.py
(bench/MUTATION.md). The races run on PostgreSQL only: SQLite takes its write lock
when a transaction begins, so no second writer can come between the lookup and the
insert there (marketplace/core/db.py). The competing process is a second session on
its own connection, started at the exact statement the race needs (tests/support/races.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from marketplace.audit.models import AuditEvent
from marketplace.ledger.models import AccountKind, JournalEntry, LedgerAccount
from marketplace.ledger.services import (
    InsufficientBalance,
    Leg,
    Posting,
    ReferenceConflict,
    book,
    get_account,
    post,
    post_many,
    verify,
)
from tests.factories import OrganisationFactory, ProjectFactory
from tests.integration.test_ledger import books  # noqa: F401 - the fixture
from tests.support.races import before_first, other_process, statements

NOW = datetime(2027, 3, 1, tzinfo=UTC)


def test_two_legs_on_one_account_move_it_by_both(session, books):
    a, b = books["clearing"], books["buyer"]

    post(session, reference="two", kind="charge", legs=[Leg(a, b, 100), Leg(a, b, 50)], now=NOW)
    session.commit()
    session.expire_all()

    assert (session.get(LedgerAccount, a.id).balance_cents, b.balance_cents) == (150, 150)
    assert verify(session) == []


def test_an_overdraft_is_refused_naming_the_account(session, books):
    escrow, buyer = books["escrow"], books["buyer"]

    with pytest.raises(InsufficientBalance) as refused:
        post(session, reference="over", kind="refund", legs=[Leg(escrow, buyer, 1)], now=NOW)

    assert refused.value.detail == f"{escrow.code} cannot go below zero."
    session.rollback()
    assert session.scalars(select(JournalEntry)).all() == []


def test_each_entry_leaves_an_audit_row_naming_it(session, books):
    a, b = books["clearing"], books["buyer"]

    one = post(session, reference="c:1", kind="charge", legs=[Leg(a, b, 300)], now=NOW)
    post_many(
        session,
        [Posting("c:2", "charge", [Leg(a, b, 20)]), Posting("c:3", "fee", [Leg(a, b, 5)])],
        now=NOW,
    )
    session.commit()

    ids = dict(session.execute(select(JournalEntry.reference, JournalEntry.id)).all())
    rows = session.scalars(select(AuditEvent).where(AuditEvent.kind == "money")).all()
    assert sorted((r.subject, r.action, r.detail["entry_id"]) for r in rows) == [
        ("journal:c:1", "charge", one.id),
        ("journal:c:2", "charge", ids["c:2"]),
        ("journal:c:3", "fee", ids["c:3"]),
    ]
    legs = {r.subject: (r.detail["amount_cents"], r.detail["legs"]) for r in rows}
    assert legs["journal:c:3"] == (5, [{"debit": a.code, "credit": b.code, "cents": 5}])


def test_the_memo_is_kept_from_a_posting_and_empty_without_one(session, books):
    a, b = books["clearing"], books["buyer"]

    booked = book(session, Posting("m:1", "charge", [Leg(a, b, 1)], memo="Pledge 7"), now=NOW)
    plain = post(session, reference="m:2", kind="charge", legs=[Leg(a, b, 1)], now=NOW)
    session.commit()
    session.expire_all()

    assert (
        session.get(JournalEntry, booked.id).memo,
        session.get(JournalEntry, plain.id).memo,
    ) == (
        "Pledge 7",
        "",
    )
    assert book(session, None, now=NOW) is None


def test_books_with_no_accounts_agree(session):
    assert session.scalars(select(LedgerAccount)).all() == []
    assert verify(session) == []


def test_finding_an_account_reads_and_never_writes(app, session, books):
    session.info.pop("ledger_accounts", None)  # a new session knows none yet
    owner = session.get(LedgerAccount, books["payable"].id).organisation_id
    session.commit()

    with statements(app) as sent:
        found = get_account(session, AccountKind.PAYABLE, organisation_id=owner)

    assert found.id == books["payable"].id
    writes = ("INSERT", "UPDATE", "DELETE", "SAVEPOINT")
    assert [s for s in sent if s.lstrip().upper().startswith(writes)] == []
    assert any(s.lstrip().upper().startswith("SELECT") for s in sent)


def test_a_new_account_records_its_owner(session, books):
    org, project = OrganisationFactory(), ProjectFactory()
    session.commit()

    buyer = get_account(session, AccountKind.BUYER, organisation_id=org.id)
    escrow = get_account(session, AccountKind.ESCROW, project_id=project.id)
    session.commit()
    session.expire_all()

    stored = {
        a.code: (a.organisation_id, a.project_id, a.balance_cents)
        for a in session.scalars(
            select(LedgerAccount).where(LedgerAccount.id.in_([buyer.id, escrow.id]))
        )
    }
    assert stored == {
        f"buyer:organisation:{org.id}": (org.id, None, 0),
        f"escrow:project:{project.id}": (None, project.id, 0),
    }


@pytest.mark.postgres_only
def test_an_account_made_by_another_process_meanwhile_is_the_one_returned(app, session, books):
    org = OrganisationFactory()
    session.commit()
    made: list[int] = []

    def make(other):
        made.append(get_account(other, AccountKind.BUYER, organisation_id=org.id).id)

    with before_first(app, "INSERT INTO LEDGER_ACCOUNTS", other_process(app, make)) as fired:
        account = get_account(session, AccountKind.BUYER, organisation_id=org.id)

    assert fired and account.id == made[0]
    assert account.code == f"buyer:organisation:{org.id}"
    session.commit()
    assert session.scalars(
        select(LedgerAccount).where(LedgerAccount.organisation_id == org.id)
    ).all() == [account]


@pytest.mark.postgres_only
def test_the_same_entry_posted_meanwhile_is_returned_and_money_moves_once(app, session, books):
    a, b = books["clearing"], books["buyer"]
    won: list[int] = []

    def same(other):
        legs = [Leg(other.get(LedgerAccount, a.id), other.get(LedgerAccount, b.id), 400)]
        won.append(post(other, reference="race", kind="charge", legs=legs, now=NOW).id)

    with before_first(app, "INSERT INTO JOURNAL_ENTRIES", other_process(app, same)) as fired:
        entry = post(session, reference="race", kind="charge", legs=[Leg(a, b, 400)], now=NOW)

    assert fired and entry.id == won[0]
    session.commit()
    session.expire_all()
    assert session.get(LedgerAccount, a.id).balance_cents == 400
    assert verify(session) == []


@pytest.mark.postgres_only
def test_another_entry_posted_meanwhile_under_the_reference_is_refused(app, session, books):
    a, b = books["clearing"], books["buyer"]

    def different(other):
        legs = [Leg(other.get(LedgerAccount, a.id), other.get(LedgerAccount, b.id), 999)]
        post(other, reference="race", kind="charge", legs=legs, now=NOW)

    with (
        before_first(app, "INSERT INTO JOURNAL_ENTRIES", other_process(app, different)),
        pytest.raises(ReferenceConflict) as conflict,
    ):
        post(session, reference="race", kind="charge", legs=[Leg(a, b, 400)], now=NOW)

    assert conflict.value.detail == "race was posted concurrently."
    session.rollback()
    assert session.get(LedgerAccount, a.id).balance_cents == 999
    assert verify(session) == []


@pytest.mark.postgres_only
def test_a_batch_that_meets_a_reference_posted_meanwhile_writes_nothing(app, session, books):
    a, b = books["clearing"], books["buyer"]

    def one_of_them(other):
        legs = [Leg(other.get(LedgerAccount, a.id), other.get(LedgerAccount, b.id), 7)]
        post(other, reference="batch:2", kind="charge", legs=legs, now=NOW)

    batch = [Posting(f"batch:{n}", "charge", [Leg(a, b, 7)]) for n in (1, 2, 3)]
    with (
        before_first(app, "INSERT INTO JOURNAL_ENTRIES", other_process(app, one_of_them)),
        pytest.raises(ReferenceConflict) as conflict,
    ):
        post_many(session, batch, now=NOW)

    assert conflict.value.detail == "A reference of the batch was posted concurrently."
    session.rollback()
    assert session.scalars(select(JournalEntry.reference)).all() == ["batch:2"]
    assert verify(session) == []
