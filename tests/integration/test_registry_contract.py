"""The registry's exact answers: which serials a retirement takes, what a search finds,
in what order, how many, and each refusal's reason.

Written against mutants `make mutation` found alive in registry/services.py
(bench/MUTATION.md). Blocks are stored out of serial order and across two projects
and two holders, so an answer that leans on the table's natural order, or forgets a
condition, is seen to be wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from marketplace.accounts.models import Role
from marketplace.funding.services import InsufficientTokens
from marketplace.projects.models import ProjectState
from marketplace.registry import services
from marketplace.registry.models import BlockStatus, Claim, Purpose, Retirement, TokenBlock
from outcomes.errors import NotFound, ValidationFailed
from tests.factories import (
    OrganisationFactory,
    ProjectFactory,
    RetirementFactory,
    TokenBlockFactory,
    UserFactory,
)

NOW = datetime(2028, 1, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def ledger(session):
    """Two settled projects; the bank holds 1-100 and 401-500 of A (stored high first)
    and 1-50 of B; another holder has 101-400 of A; one block of A is retired."""
    a, b = (ProjectFactory(state=ProjectState.SETTLED) for _ in range(2))
    bank = UserFactory(role=Role.BUYER, organisation=OrganisationFactory(name="Havenstad Bank"))
    other = OrganisationFactory(name="Gemeente Delft")
    session.commit()
    mine = bank.organisation_id
    made = [
        TokenBlockFactory(project_id=a.id, first_serial=401, last_serial=500, holder_id=mine),
        TokenBlockFactory(project_id=b.id, first_serial=1, last_serial=50, holder_id=mine),
        TokenBlockFactory(project_id=a.id, first_serial=101, last_serial=400, holder_id=other.id),
        TokenBlockFactory(project_id=a.id, first_serial=1, last_serial=100, holder_id=mine),
        TokenBlockFactory(
            project_id=a.id,
            first_serial=501,
            last_serial=510,
            holder_id=mine,
            status=BlockStatus.RETIRED,
            retirement_id=RetirementFactory(project_id=a.id, organisation_id=mine).id,
        ),
    ]
    session.commit()
    return a, b, bank, other, made


def retirement(project_id: int, quantity: int, **extra) -> services.RetirementInput:
    values = {
        "project_id": project_id,
        "quantity": quantity,
        "beneficiary": "Gemeente Rotterdam",
        "purpose": Purpose.CSR_VOLUNTARY,
        "claim": Claim.CONTRIBUTION,
        **extra,
    }
    return services.RetirementInput(**values)


def serials(session, retirement_id: int) -> list[tuple[int, int]]:
    return sorted(
        session.execute(
            select(TokenBlock.first_serial, TokenBlock.last_serial).where(
                TokenBlock.retirement_id == retirement_id
            )
        ).all()
    )


def test_a_retirement_takes_the_lowest_issued_serials_of_that_project(session, ledger):
    a, b, bank, _other, _made = ledger

    # another holder's block of another project ends on the same serial as one of ours
    TokenBlockFactory(first_serial=1, last_serial=50, holder_id=_other.id)
    session.commit()

    small = services.retire(session, bank, retirement(a.id, 10), now=NOW)
    first = services.retire(session, bank, retirement(a.id, 110), now=NOW)
    second = services.retire(session, bank, retirement(a.id, 30), now=NOW)
    of_b = services.retire(session, bank, retirement(b.id, 50), now=NOW)
    session.commit()

    assert serials(session, small.id) == [(1, 10)]
    assert serials(session, first.id) == [(11, 100), (401, 420)]
    assert serials(session, second.id) == [(421, 450)]
    assert serials(session, of_b.id) == [(1, 50)]
    others = session.scalars(select(TokenBlock.status).where(TokenBlock.holder_id == _other.id))
    assert set(others) == {BlockStatus.ISSUED}
    assert [(blk.first_serial, blk.last_serial) for blk in services.holdings(session, bank)] == [
        (451, 500)
    ]


def test_all_that_is_held_may_be_retired_and_one_more_is_refused_with_both_figures(session, ledger):
    a, _b, bank, _other, _made = ledger

    with pytest.raises(InsufficientTokens) as refused:
        services.retire(session, bank, retirement(a.id, 201), now=NOW)
    assert refused.value.detail == "You hold 200 tokens of this project; you asked to retire 201."
    session.rollback()

    whole = services.retire(session, bank, retirement(a.id, 200), now=NOW)
    assert whole.quantity == 200


def test_each_bad_field_of_a_retirement_is_named_with_its_reason(session, ledger):
    a, _b, bank, _other, _made = ledger

    with pytest.raises(ValidationFailed) as refused:
        services.retire(
            session,
            bank,
            retirement(a.id, 0, beneficiary="  ", purpose=Purpose.SROI_OBLIGATION),
            now=NOW,
        )

    assert refused.value.errors == {
        "quantity": ["At least one token."],
        "beneficiary": ["Name who the claim is made for."],
        "contract_reference": [
            "A social-return obligation names the contract it is fulfilled under."
        ],
    }


def test_an_unknown_retirement_is_not_found(session):
    with pytest.raises(NotFound) as missing:
        services.get_retirement(session, 424242)
    assert missing.value.detail == "No such retirement."


def search(session, **filters) -> tuple[list[tuple[int, int, int, str]], int]:
    rows, total = services.registry_blocks(session, services.RegistryFilters(**filters))
    return [
        (block.project_id, block.first_serial, block.last_serial, holder.name)
        for block, holder in rows
    ], total


def test_the_registry_lists_by_project_then_serial_with_each_holder(session, ledger):
    a, b, bank, _other, _made = ledger

    rows, total = search(session)

    assert total == 5
    assert rows == [
        (a.id, 1, 100, "Havenstad Bank"),
        (a.id, 101, 400, "Gemeente Delft"),
        (a.id, 401, 500, "Havenstad Bank"),
        (a.id, 501, 510, "Havenstad Bank"),
        (b.id, 1, 50, "Havenstad Bank"),
    ]
    page_two, total = search(session, page=2, per_page=2)
    assert (page_two, total) == (rows[2:4], 5)
    assert search(session, project_id=b.id) == ([rows[4]], 1)
    assert search(session, status=BlockStatus.RETIRED) == ([rows[3]], 1)
    held = [(blk.project_id, blk.first_serial) for blk in services.holdings(session, bank)]
    assert held == [(a.id, 1), (a.id, 401), (b.id, 1)]


def test_a_serial_search_finds_the_blocks_that_hold_it_edges_included(session, ledger):
    a, _b, _bank, _other, _made = ledger

    def found(first: int, last: int | None = None):
        tail = f"-{last:07d}" if last is not None else ""
        rows, total = search(session, serial=f"SOM-P{a.id:06d}-2027-{first:07d}{tail}")
        assert total == len(rows)
        return [(r[1], r[2]) for r in rows]

    assert found(100) == [(1, 100)]
    assert found(101) == [(101, 400)]
    assert found(100, 101) == [(1, 100), (101, 400)]
    assert found(600) == []
    assert search(session, serial="SOM-P999999-2027-0000001") == ([], 0)
    with pytest.raises(ValidationFailed) as refused:
        search(session, serial="P42")
    assert list(refused.value.errors) == ["serial"]
    assert "SOM-P000042-2027-0000001" in str(refused.value.errors["serial"][0])


def test_the_export_streams_every_block_in_registry_order_with_its_holder(session, ledger):
    a, b, _bank, _other, _made = ledger

    exported = [
        (block.project_id, block.first_serial, holder.name)
        for block, holder in services.all_blocks(session)
    ]

    assert exported == [
        (a.id, 1, "Havenstad Bank"),
        (a.id, 101, "Gemeente Delft"),
        (a.id, 401, "Havenstad Bank"),
        (a.id, 501, "Havenstad Bank"),
        (b.id, 1, "Havenstad Bank"),
    ]


def test_a_retirement_keeps_its_note_tells_the_holder_and_answers_a_replay(session, ledger):
    from marketplace.core import idempotency as idempotent
    from marketplace.core.idempotency import Replayed
    from marketplace.notifications.models import Notification

    a, _b, bank, _other, _made = ledger
    key = idempotent.parse(bank.id, "claim-1", "POST", "/api/v1/retirements", {"q": 5})

    made = services.retire(
        session,
        bank,
        retirement(a.id, 5, note="  For the 2027 report.  "),
        now=NOW,
        idempotency=key,
    )
    session.commit()

    assert made.note == "For the 2027 report."
    notice = session.scalars(
        select(Notification).where(Notification.kind == "certificate_ready")
    ).one()
    assert (notice.key, notice.organisation_id, notice.link, notice.params) == (
        f"retired:retirement:{made.id}",
        bank.organisation_id,
        f"/registry/retirements/{made.id}",
        {"id": made.id, "quantity": 5, "beneficiary": "Gemeente Rotterdam"},
    )
    with pytest.raises(Replayed):
        services.retire(session, bank, retirement(a.id, 5), now=NOW, idempotency=key)
    session.rollback()
    assert idempotent.replay(session, key).response == {"id": made.id}


@pytest.mark.postgres_only
def test_serials_retired_by_another_request_meanwhile_refuse_this_one(app, session, ledger):
    from tests.support.races import before_first, other_process

    a, _b, bank, _other, _made = ledger

    def twin(other):
        services.retire(other, other.get(type(bank), bank.id), retirement(a.id, 10), now=NOW)

    with (
        before_first(app, "UPDATE TOKEN_BLOCKS", other_process(app, twin)) as fired,
        pytest.raises(services.RetiredConcurrently) as refused,
    ):
        services.retire(session, bank, retirement(a.id, 10), now=NOW)

    assert fired
    assert refused.value.detail == "Some of these serials were retired a moment ago."
    session.rollback()
    assert len(session.scalars(select(Retirement)).all()) == 1 + 1  # the fixture's and the twin's


def test_a_serial_written_wrongly_is_answered_with_an_example_of_the_form(session, ledger):
    with pytest.raises(ValidationFailed) as refused:
        search(session, serial="P42")

    (reason,) = refused.value.errors["serial"]
    assert str(reason) == (
        "Write a serial as SOM-P000042-2027-0000001 (or a block, with its last serial)."
    )


def test_issuing_skips_holders_with_nothing_and_numbers_the_rest_from_one(session):
    project = ProjectFactory(state=ProjectState.SETTLED)
    first, nothing, single, last = (OrganisationFactory() for _ in range(4))
    session.commit()

    made = services.issue_blocks(
        session,
        project,
        [(first.id, 3), (nothing.id, 0), (single.id, 1), (last.id, 2)],
        now=NOW,
    )
    session.commit()

    expected = [(first.id, 1, 3), (single.id, 4, 4), (last.id, 5, 6)]
    assert [(b.holder_id, b.first_serial, b.last_serial) for b in made] == expected
    stored = session.scalars(
        select(TokenBlock).where(TokenBlock.project_id == project.id).order_by(TokenBlock.id)
    ).all()
    assert [(b.holder_id, b.first_serial, b.last_serial) for b in stored] == expected
    assert {(b.vintage, b.status, b.issued_at.replace(tzinfo=UTC)) for b in stored} == {
        (project.end_date.year, BlockStatus.ISSUED, NOW)
    }
    assert services.issue_blocks(session, project, [(nothing.id, 0)], now=NOW) == []


@pytest.mark.postgres_only
def test_serials_come_in_serial_order_from_the_order_by_not_from_an_index(session):
    """With the planner kept off the indexes, PostgreSQL reads the blocks in the order
    they were stored (shuffled here): serial order can only come from ORDER BY."""
    import random

    from sqlalchemy import text

    project = ProjectFactory(state=ProjectState.SETTLED)
    bank = UserFactory(role=Role.BUYER, organisation=OrganisationFactory(name="Havenstad Bank"))
    session.commit()
    starts = list(range(1, 400, 10))
    random.Random(7).shuffle(starts)
    for start in starts:
        TokenBlockFactory(
            project_id=project.id,
            first_serial=start,
            last_serial=start + 9,
            holder_id=bank.organisation_id,
        )
    session.commit()

    def planner_off():
        for setting in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"):
            session.execute(text(f"SET LOCAL {setting} = off"))

    in_order = list(range(1, 400, 10))
    planner_off()
    assert [b.first_serial for b, _holder in services.all_blocks(session)] == in_order
    rows, _total = services.registry_blocks(session, services.RegistryFilters(per_page=100))
    assert [b.first_serial for b, _holder in rows] == in_order
    assert [b.first_serial for b in services.holdings(session, bank)] == in_order
    taken = services.retire(session, bank, retirement(project.id, 25), now=NOW)
    assert serials(session, taken.id) == [(1, 10), (11, 20), (21, 25)]
    session.rollback()


@pytest.mark.postgres_only
def test_a_block_another_request_retired_whole_meanwhile_refuses_this_one(app, session, ledger):
    """The other retirement took the whole block, so its last serial is as this one saw
    it: only its status tells."""
    from tests.support.races import before_first, other_process

    a, _b, bank, _other, _made = ledger

    def twin(other):
        services.retire(other, other.get(type(bank), bank.id), retirement(a.id, 100), now=NOW)

    with (
        before_first(app, "UPDATE TOKEN_BLOCKS", other_process(app, twin)) as fired,
        pytest.raises(services.RetiredConcurrently),
    ):
        services.retire(session, bank, retirement(a.id, 10), now=NOW)

    assert fired
    session.rollback()
    retired = session.scalars(
        select(TokenBlock).where(TokenBlock.project_id == a.id, TokenBlock.first_serial == 1)
    ).one()
    assert (retired.last_serial, retired.status) == (100, BlockStatus.RETIRED)


def test_the_registry_is_searched_by_project_public_holder_and_beneficiary(session, ledger):
    a, b, bank, other, _made = ledger
    session.rollback()
    a.title, b.title = "Werk in Delfshaven", "Groene daken 100%"
    other.registry_public = True  # Gemeente Delft shows its name; the bank does not
    other.name = "Gemeente Delft (e\\Xd)"
    session.commit()
    claim = services.retire(
        session, bank, retirement(b.id, 20, beneficiary="Stichting Één_Zorg \\ Welzijn"), now=NOW
    )
    session.commit()

    def found(text: str):
        rows, total = search(session, text=text)
        return sorted((r[0], r[1]) for r in rows), total

    # the project's title, any case
    assert found("delfshaven")[1] == 4
    # a public holder by its name; a private one is not found by its name
    assert found("gemeente delft") == ([(a.id, 101)], 1)
    assert found("Havenstad") == ([], 0)
    # a retirement's beneficiary (letters beyond ASCII as written: SQLite folds ASCII
    # case only); LIKE's own characters are taken literally
    assert found("Één_zorg") == ([(b.id, 1)], 1)
    assert found("100%") == ([(b.id, 1), (b.id, 21)], 2)
    assert found("_") == ([(b.id, 1)], 1)
    assert found("%") == ([(b.id, 1), (b.id, 21)], 2)
    assert found("g \\ w") == ([(b.id, 1)], 1)  # a backslash is a backslash
    assert found("\\%") == ([], 0)

    # a holder's name is matched with LIKE's characters literal too ("e\\Xd" is not "e_d")
    assert found("e_d") == ([], 0)

    def totals_of(text: str):
        totals = services.registry_totals(session, services.RegistryFilters(text=text))
        return [(t.project_id, t.issued, t.retired) for t in totals]

    assert totals_of("Één_Zorg") == [(b.id, 0, 20)]
    assert totals_of("gemeente delft") == [(a.id, 300, 0)]
    totals = services.registry_totals(session, services.RegistryFilters(text="e"))
    assert [(t.project_id, t.title, t.issued, t.retired) for t in totals] == [
        (a.id, "Werk in Delfshaven", 500, 10),
        (b.id, "Groene daken 100%", 30, 20),
    ]
    assert claim.quantity == 20
