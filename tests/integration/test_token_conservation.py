"""Property: over random settlements, retirements and upheld disputes, every token issued
is held, retired, in the buffer pool or cancelled from it, once: per project (its
serials 1..minted, each in exactly one block) and platform-wide."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from marketplace.accounts.models import Role
from marketplace.funding.services import InsufficientTokens
from marketplace.projects.models import Project
from marketplace.registry import services as registry
from marketplace.registry.models import BlockStatus, Claim, Purpose, TokenBlock
from marketplace.registry.services import RetirementInput
from marketplace.settlement import compute
from tests.factories import ConcernFactory, ProjectFactory, UserFactory
from tests.support.races import statements

AT = datetime(2027, 12, 11, 9, 0, tzinfo=UTC)


def settle_one(session, data) -> tuple[int, int, list]:
    """A random settlement issued to the registry: (project id, minted, buyers)."""
    sizes = data.draw(st.lists(st.integers(1, 300), min_size=1, max_size=4), label="holdings")
    verified = data.draw(st.integers(0, 1000), label="verified of 1000")
    rate = data.draw(st.sampled_from(["0", "0.05", "0.2", "0.5"]), label="buffer rate")
    result = compute.settle(
        holdings=[compute.Holding(i, n, i) for i, n in enumerate(sizes)],
        token_price_cents=100,
        threshold_tokens=1,
        fee_rate=Decimal("0.05"),
        v_target_cents=1000,
        v_verified_cents=verified,
        buffer_rate=Decimal(rate),
    )
    buyers = [UserFactory(role=Role.BUYER) for _ in sizes]
    project = ProjectFactory()
    registry.issue_blocks(
        session,
        project,
        [(buyers[s.buyer].organisation_id, s.tokens_minted) for s in result.buyers]
        + [(None, result.tokens_buffer)],
        now=AT,
    )
    session.commit()
    return project.id, result.tokens_minted, buyers


def check(session, minted: dict[int, int]) -> None:
    """Every project in the registry (the earlier examples' too): serials 1..N, each in one
    block; the statuses partition them platform-wide; this example's projects issued
    exactly what their settlement minted."""
    session.rollback()
    rows = session.execute(
        select(TokenBlock.project_id, TokenBlock.first_serial, TokenBlock.last_serial).order_by(
            TokenBlock.project_id, TokenBlock.first_serial
        )
    ).all()
    issued: dict[int, int] = {}
    for project_id, first, last in rows:  # contiguous from 1: no gap, no overlap
        assert first == issued.get(project_id, 0) + 1, (project_id, first, issued)
        issued[project_id] = last
    for project_id, total in minted.items():
        assert issued.get(project_id, 0) == total, (project_id, total)
    size = TokenBlock.last_serial - TokenBlock.first_serial + 1
    by_status = {
        status: int(n)
        for status, n in session.execute(
            select(TokenBlock.status, func.sum(size)).group_by(TokenBlock.status)
        )
    }
    # platform-wide: issued = held + retired + buffer + cancelled
    assert sum(by_status.values()) == sum(issued.values())
    for project_id in minted:  # and per project
        statuses = session.execute(
            select(TokenBlock.status, func.sum(size))
            .where(TokenBlock.project_id == project_id)
            .group_by(TokenBlock.status)
        ).all()
        assert sum(int(n) for _status, n in statuses) == minted[project_id]
    session.rollback()


@settings(
    max_examples=12,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_every_token_issued_is_held_retired_buffered_or_cancelled_once(session, data):
    minted: dict[int, int] = {}
    holders: dict[int, list] = {}
    for _ in range(data.draw(st.integers(1, 3), label="projects")):
        project_id, total, buyers = settle_one(session, data)
        minted[project_id] = total
        holders[project_id] = buyers
    projects = sorted(minted)
    for _ in range(data.draw(st.integers(0, 8), label="events")):
        project_id = data.draw(st.sampled_from(projects), label="project")
        if data.draw(st.booleans(), label="retire, else reverse"):
            buyer = data.draw(st.sampled_from(holders[project_id]), label="buyer")
            quantity = data.draw(st.integers(1, 400), label="quantity")
            try:
                registry.retire(
                    session,
                    buyer,
                    RetirementInput(
                        project_id=project_id,
                        quantity=quantity,
                        beneficiary="Gemeente Rotterdam",
                        purpose=Purpose.CSR_VOLUNTARY,
                        claim=Claim.CONTRIBUTION,
                    ),
                    now=AT,
                )
                session.commit()
            except InsufficientTokens:
                session.rollback()
        else:
            over = data.draw(st.integers(1, 200), label="over")
            pool = session.scalar(
                select(
                    func.coalesce(func.sum(TokenBlock.last_serial - TokenBlock.first_serial + 1), 0)
                ).where(TokenBlock.status == BlockStatus.BUFFER)
            )
            concern = ConcernFactory(project_id=project_id)
            cancelled = registry.cancel_buffer(session, project_id, over, concern_id=concern.id)
            session.commit()
            assert cancelled == min(over, int(pool))  # never more than the pool held
        check(session, minted)
    check(session, minted)


def test_a_reversal_cancels_its_own_buffer_first_then_the_oldest_projects(session):
    """Buffer serials: P1 1,001-1,050, P2 11-20, P3 101-105. Eight over on P3: its own five,
    then three of the oldest project's (P1's first), never P2's lower serial numbers."""
    holder = UserFactory(role=Role.BUYER).organisation_id
    made = []
    for held, buffered in ((1000, 50), (10, 10), (100, 5)):
        project = ProjectFactory()
        registry.issue_blocks(session, project, [(holder, held), (None, buffered)], now=AT)
        made.append(project.id)
    session.commit()
    first, second, third = made
    concern = ConcernFactory(project_id=third)

    assert registry.cancel_buffer(session, third, 8, concern_id=concern.id) == 8
    session.commit()

    cancelled = [
        (b.project_id, b.first_serial, b.last_serial) for b in registry.cancelled_blocks(session)
    ]
    assert cancelled == [(first, 1001, 1003), (third, 101, 105)]
    pool = registry.buffer_pool(session)
    titles = dict(
        session.execute(select(Project.id, Project.title).where(Project.id.in_(made))).all()
    )
    assert [
        (r.project_id, r.title, r.buffer, r.cancelled) for r in pool if r.project_id in made
    ] == [
        (first, titles[first], 47, 3),
        (second, titles[second], 10, 0),
        (third, titles[third], 0, 5),
    ]
    check(session, {first: 1050, second: 20, third: 105})
    # A later reversal of the oldest project: the cancellations are listed by reversal.
    later = ConcernFactory(project_id=first)
    assert registry.cancel_buffer(session, first, 2, concern_id=later.id) == 2
    session.commit()
    assert [
        (b.concern_id, b.project_id, b.first_serial) for b in registry.cancelled_blocks(session)
    ] == [(concern.id, first, 1001), (concern.id, third, 101), (later.id, first, 1004)]


@pytest.mark.postgres_only
def test_reversals_take_one_lock_before_they_read_the_pool(app, session):
    """Two reversals at once (of different projects, from one pool) run one after the
    other: each takes the pool's advisory lock before it reads the buffer blocks."""
    project = ProjectFactory()
    registry.issue_blocks(session, project, [(None, 10)], now=AT)
    session.commit()
    concern = ConcernFactory(project_id=project.id)
    with statements(app) as seen:
        registry.cancel_buffer(session, project.id, 3, concern_id=concern.id)
        held = session.scalar(  # the lock is really taken, by this transaction
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND objid = :key AND pid = pg_backend_pid() AND granted"
            ),
            {"key": registry.BUFFER_LOCK},
        )
        session.commit()
    assert held == 1
    flat = [" ".join(s.split()).upper() for s in seen]
    lock = next(i for i, s in enumerate(flat) if "PG_ADVISORY_XACT_LOCK" in s)
    read = next(i for i, s in enumerate(flat) if s.startswith("SELECT TOKEN_BLOCKS."))
    assert lock < read
