"""A pool's running totals: what its live pledges hold, in all (``pools.committed_cents``)
and on each project (``pool_projects``). A match holds money with ``hold`` (refused when
the budget or the cap would be passed); a pool pledge leaving the live states gives it
back with ``release`` (the pledge lifecycle's hook). Both lock the pool's row first and
its project row second, as every writer does, so they cannot deadlock each other.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from marketplace.pools.models import Pool, PoolProject, PoolState
from outcomes.db import affected


def budget_claim(pool_id: Any, cents: Any) -> Any:
    """The conditional update that adds ``cents`` to an active pool within its budget."""
    return (
        update(Pool)
        .where(
            Pool.id == pool_id,
            Pool.state == PoolState.ACTIVE,
            Pool.committed_cents + cents <= Pool.budget_cents,
        )
        .values(committed_cents=Pool.committed_cents + cents)
        .execution_options(synchronize_session=False)
    )


def cap_claim(dialect: str, cents: Any, cap_cents: Any, *, source: Any) -> Any:
    """The upsert that adds ``cents`` to the pool's total on a project within its cap;
    ``source`` is the SELECT of (pool_id, project_id, cents) to insert."""
    maker = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = maker(PoolProject).from_select(["pool_id", "project_id", "committed_cents"], source)
    return statement.on_conflict_do_update(
        index_elements=[PoolProject.pool_id, PoolProject.project_id],
        set_={"committed_cents": PoolProject.committed_cents + cents},
        where=PoolProject.committed_cents + cents <= cap_cents,
    )


def hold(session: Session, *, pool_id: int, project_id: int, cents: int, cap_cents: int) -> bool:
    """Add ``cents`` to the pool's totals when its budget and its cap on the project allow
    (True); otherwise change nothing (False)."""
    if cents <= 0 or cents > cap_cents:
        return False
    if affected(session.execute(budget_claim(pool_id, cents))) != 1:
        return False
    dialect = session.get_bind().dialect.name
    source = select(literal(pool_id), literal(project_id), literal(cents))
    claim = cap_claim(dialect, cents, cap_cents, source=source).returning(PoolProject.pool_id)
    if session.execute(claim).first() is None:  # (an upsert's row count is not portable)
        give_back(session, pool_id=pool_id, cents=cents)  # ours to undo: the row is locked
        return False
    return True


def give_back(session: Session, *, pool_id: int, cents: int, project_id: int | None = None) -> None:
    """Take ``cents`` from the pool's total (and from its total on the project, if given)."""
    session.execute(
        update(Pool)
        .where(Pool.id == pool_id)
        .values(committed_cents=Pool.committed_cents - cents)
        .execution_options(synchronize_session=False)
    )
    if project_id is not None:
        session.execute(
            update(PoolProject)
            .where(PoolProject.pool_id == pool_id, PoolProject.project_id == project_id)
            .values(committed_cents=PoolProject.committed_cents - cents)
            .execution_options(synchronize_session=False)
        )


def release(session: Session, *, pool_id: int, project_id: int, cents: int) -> None:
    """A pool pledge of ``cents`` left the live states: its money is free again."""
    give_back(session, pool_id=pool_id, cents=cents, project_id=project_id)
