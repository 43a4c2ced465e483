"""The money ledger on both databases: balanced, exactly once, never negative, append-only."""

import itertools
import threading
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from marketplace.ledger.models import AccountKind, JournalEntry, LedgerAccount
from marketplace.ledger.services import (
    InsufficientBalance,
    LedgerError,
    Leg,
    Posting,
    ReferenceConflict,
    get_account,
    post,
    post_many,
    reverse,
    verify,
)
from outcomes.errors import ValidationFailed
from tests.factories import OrganisationFactory, ProjectFactory

NOW = datetime(2027, 3, 1, tzinfo=UTC)


@pytest.fixture
def books(session):
    project = ProjectFactory()
    buyer, entrepreneur = OrganisationFactory(), project.organisation
    accounts = {
        "clearing": get_account(session, AccountKind.STRIPE_CLEARING),
        "fees": get_account(session, AccountKind.PLATFORM_FEES),
        "escrow": get_account(session, AccountKind.ESCROW, project_id=project.id),
        "buyer": get_account(session, AccountKind.BUYER, organisation_id=buyer.id),
        "payable": get_account(session, AccountKind.PAYABLE, organisation_id=entrepreneur.id),
    }
    session.commit()
    return accounts


def balances(session, books):
    session.rollback()
    return {
        name: session.get(LedgerAccount, account.id).balance_cents
        for name, account in books.items()
    }


def entries(session):
    session.rollback()
    return session.scalar(select(func.count()).select_from(JournalEntry))


def _charge(session, books, reference: str, cents: int) -> None:
    """A buyer's charge: the money moves from Stripe's clearing into the project's escrow."""
    post(
        session,
        reference=reference,
        kind="charge",
        now=NOW,
        legs=[Leg(debit=books["clearing"], credit=books["escrow"], amount_cents=cents)],
    )


def test_the_worked_example_flows_through_the_books_to_the_cent(session, books):
    b = books
    post(
        session,
        reference="pledge:1:charge",
        kind="charge",
        now=NOW,
        legs=[
            Leg(debit=b["clearing"], credit=b["buyer"], amount_cents=7_087_200),
            Leg(debit=b["buyer"], credit=b["escrow"], amount_cents=7_087_200),
        ],
    )
    post(
        session,
        reference="project:1:cost_tranche",
        kind="cost_tranche",
        now=NOW,
        legs=[
            Leg(debit=b["escrow"], credit=b["payable"], amount_cents=5_700_471),
            Leg(debit=b["escrow"], credit=b["fees"], amount_cents=300_025),
        ],
    )
    post(
        session,
        reference="project:1:cost_transfer",
        kind="transfer",
        now=NOW,
        legs=[Leg(debit=b["payable"], credit=b["clearing"], amount_cents=5_700_471)],
    )
    post(
        session,
        reference="project:1:settlement",
        kind="settlement",
        now=NOW,
        legs=[
            Leg(debit=b["escrow"], credit=b["payable"], amount_cents=722_657),
            Leg(debit=b["escrow"], credit=b["fees"], amount_cents=38_035),
            Leg(debit=b["escrow"], credit=b["clearing"], amount_cents=326_012),
        ],
    )
    post(
        session,
        reference="project:1:premium_transfer",
        kind="transfer",
        now=NOW,
        legs=[Leg(debit=b["payable"], credit=b["clearing"], amount_cents=722_657)],
    )
    session.commit()

    assert balances(session, books) == {
        "clearing": 300_025 + 38_035,
        "fees": 338_060,
        "escrow": 0,
        "buyer": 0,
        "payable": 0,
    }
    assert verify(session) == []


def test_an_escrow_never_goes_below_zero_and_a_refused_entry_writes_nothing(session, books):
    b = books
    _charge(session, b, "pledge:1:charge", 1000)
    session.commit()
    before = balances(session, books)

    with pytest.raises(InsufficientBalance) as refused:
        post(
            session,
            reference="refund:1",
            kind="refund",
            now=NOW,
            legs=[
                Leg(debit=b["escrow"], credit=b["clearing"], amount_cents=600),
                Leg(debit=b["escrow"], credit=b["clearing"], amount_cents=600),
            ],
        )
    session.commit()

    assert "escrow" in refused.value.detail
    assert balances(session, books) == before
    assert entries(session) == 1
    assert verify(session) == []


def test_a_reference_is_posted_once(session, books):
    b = books
    legs = [Leg(debit=b["clearing"], credit=b["escrow"], amount_cents=2500)]
    first = post(session, reference="pledge:7:charge", kind="charge", now=NOW, legs=legs)
    again = post(session, reference="pledge:7:charge", kind="charge", now=NOW, legs=legs)
    session.commit()

    assert again.id == first.id
    assert balances(session, books)["escrow"] == 2500
    with pytest.raises(ReferenceConflict):
        post(
            session,
            reference="pledge:7:charge",
            kind="charge",
            now=NOW,
            legs=[Leg(debit=b["clearing"], credit=b["escrow"], amount_cents=2600)],
        )


@pytest.mark.parametrize("amount", [0, -5, 10.5, True])
def test_malformed_legs_are_refused(session, books, amount):
    with pytest.raises(ValidationFailed):
        post(
            session,
            reference="bad",
            kind="test",
            now=NOW,
            legs=[Leg(debit=books["clearing"], credit=books["escrow"], amount_cents=amount)],
        )
    with pytest.raises(ValidationFailed):
        post(session, reference="bad", kind="test", now=NOW, legs=[])


def test_a_reversal_restores_the_balances_once(session, books):
    b = books
    entry = post(
        session,
        reference="pledge:3:charge",
        kind="charge",
        now=NOW,
        legs=[Leg(debit=b["clearing"], credit=b["escrow"], amount_cents=900)],
    )
    undone = reverse(session, entry, now=NOW, reason="charged twice by mistake")
    session.commit()

    assert balances(session, books)["escrow"] == 0
    assert undone.reverses_id == entry.id
    with pytest.raises(LedgerError):
        reverse(session, entry, now=NOW, reason="again")
    with pytest.raises(LedgerError):
        reverse(session, undone, now=NOW, reason="undo the undo")
    assert verify(session) == []


def test_posted_entries_and_legs_cannot_be_edited(app, session, books):
    _charge(session, books, "pledge:5:charge", 100)
    session.commit()

    for statement in (
        "UPDATE journal_legs SET amount_cents = 1",
        "UPDATE journal_entries SET memo = 'changed'",
    ):
        with app.extensions["db"].engine.connect() as conn:
            with pytest.raises(DBAPIError, match="append-only"):
                conn.execute(text(statement))
            conn.rollback()


def test_two_refunds_racing_for_the_last_cents_of_an_escrow(app, session, books):
    b = books
    _charge(session, b, "pledge:9:charge", 1000)
    session.commit()
    barrier = threading.Barrier(2, timeout=30)
    outcomes = []

    def refund(n):
        # Meet before either opens a transaction: on SQLite the first to begin holds
        # the write lock, and the other must wait for it rather than for the barrier.
        barrier.wait()
        with app.extensions["db"].session_factory() as own:
            escrow, clearing = (
                own.get(LedgerAccount, b["escrow"].id),
                own.get(LedgerAccount, b["clearing"].id),
            )
            try:
                post(
                    own,
                    reference=f"refund:{n}",
                    kind="refund",
                    now=NOW,
                    legs=[Leg(debit=escrow, credit=clearing, amount_cents=700)],
                )
                own.commit()
                outcomes.append("posted")
            except InsufficientBalance:
                own.rollback()
                outcomes.append("refused")

    threads = [threading.Thread(target=refund, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["posted", "refused"]
    assert balances(session, books)["escrow"] == 300
    assert verify(session) == []


EXAMPLES = itertools.count()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["clearing", "fees", "escrow", "buyer", "payable"]),
            st.sampled_from(["clearing", "fees", "escrow", "buyer", "payable"]),
            st.integers(min_value=1, max_value=10_000),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_any_sequence_of_postings_keeps_the_books_balanced(session, books, moves):
    # Each example's references are its own: the books persist between examples, and
    # id(moves) (what named them before) can come round again and collide.
    example = next(EXAMPLES)
    for i, (to, source, amount) in enumerate(moves):
        if to == source:
            continue
        try:
            post(
                session,
                reference=f"random:{example}:{i}",
                kind="test",
                now=NOW,
                legs=[Leg(debit=books[to], credit=books[source], amount_cents=amount)],
            )
            session.commit()
        except InsufficientBalance:
            session.rollback()
        for name, value in balances(session, books).items():
            if name in ("escrow", "payable", "fees"):
                assert value >= 0
    assert verify(session) == []


def _refund(b, reference: str, amount: int) -> Posting:
    return Posting(
        reference=reference,
        kind="refund",
        legs=[
            Leg(debit=b["escrow"], credit=b["buyer"], amount_cents=amount),
            Leg(debit=b["buyer"], credit=b["clearing"], amount_cents=amount),
        ],
    )


def test_a_batch_posts_each_entry_once_and_moves_each_balance_by_the_sum(session, books):
    b = books
    _charge(session, b, "payment:1", 10_000)
    post(session, reference="refund:1", kind="refund", now=NOW, legs=_refund(b, "x", 100).legs)
    session.commit()

    written = post_many(session, [_refund(b, f"refund:{n}", 100 * n) for n in (1, 2, 3)], now=NOW)
    session.commit()

    assert written == 2  # refund:1 was posted before, with the same legs
    assert balances(session, b)["escrow"] == 10_000 - 100 - 200 - 300
    assert balances(session, b)["clearing"] == 10_000 - 600
    assert entries(session) == 4
    assert verify(session) == []
    assert post_many(session, [_refund(b, "refund:2", 200)], now=NOW) == 0


def test_a_batch_is_all_or_nothing(session, books):
    b = books
    _charge(session, b, "payment:1", 500)
    session.commit()

    with pytest.raises(InsufficientBalance):
        post_many(session, [_refund(b, "refund:1", 300), _refund(b, "refund:2", 300)], now=NOW)
    session.rollback()
    with pytest.raises(ReferenceConflict):
        post_many(session, [_refund(b, "payment:1", 300)], now=NOW)
    session.rollback()
    with pytest.raises(ValidationFailed):
        post_many(session, [_refund(b, "refund:1", 1), _refund(b, "refund:1", 1)], now=NOW)
    session.rollback()

    assert entries(session) == 1
    assert balances(session, b)["escrow"] == 500
