"""Hot statements sent by the driver itself (``core.hot``) read, write and fail exactly
as the same statements run through SQLAlchemy: on PostgreSQL they skip SQLAlchemy's
execute, so the conversions it would make (enums, JSON, timestamps, decimals, arrays)
and the errors it would raise are made here instead."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import String, bindparam, insert, literal_column, or_, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from marketplace.audit.models import AuditEvent
from marketplace.core.hot import Hot
from marketplace.core.idempotency import IdempotencyRecord
from marketplace.pools.models import Pool
from marketplace.projects.models import Project, ProjectState, Theme
from tests.factories import PoolFactory, ProjectFactory, UserFactory

AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)

_PROJECTS = Hot(
    lambda: (
        select(
            Project.id,
            Project.state,
            Project.theme,
            Project.funding_deadline,
            Project.premium_rate,
            Project.created_at,
            Project.round_id,
            Project.title.label("named"),
            literal_column("'100%'", String).label("share"),  # not a placeholder: kept
        )
        .where(
            Project.state == ProjectState.FUNDING,
            or_(Project.city == bindparam("city"), Project.title == bindparam("city")),
        )
        .order_by(Project.id)
    )
)

_POOLS = Hot(lambda: select(Pool.id, Pool.themes, Pool.cities, Pool.match_ratio).order_by(Pool.id))

_AUDIT = Hot(
    lambda: (
        insert(AuditEvent)
        .values(
            at=bindparam("at"),
            kind="test",
            action=bindparam("action"),
            subject="hot",
            actor="tests",
            via="cli",
            detail=bindparam("detail", type_=AuditEvent.__table__.c.detail.type),
        )
        .returning(AuditEvent.id, AuditEvent.at, AuditEvent.detail)
    )
)

_RECORD = Hot(
    lambda: (
        insert(IdempotencyRecord)
        .values(
            user_id=bindparam("user_id"),
            key=bindparam("key"),
            fingerprint="f" * 64,
            status_code=201,
            response={"id": 1},
            created_at=bindparam("at"),
        )
        .returning(IdempotencyRecord.id)
    )
)


def test_rows_are_read_as_sqlalchemy_reads_them(session):
    ProjectFactory(city="Delft", state=ProjectState.FUNDING, theme=Theme.WORK, title="Één ☃")
    ProjectFactory(city="Delft", state=ProjectState.DRAFT)
    ProjectFactory(city="Gouda", state=ProjectState.FUNDING)
    PoolFactory(themes=[Theme.WORK], cities=["Delft", "Gouda"], match_ratio=Decimal("0.5"))
    session.commit()

    hot = _PROJECTS.rows(session, {"city": "Delft"})
    plain = session.execute(_PROJECTS.statement, {"city": "Delft"}).all()
    assert [tuple(row) for row in hot] == [tuple(row) for row in plain]
    (row,) = hot
    assert row.state is ProjectState.FUNDING and row.theme is Theme.WORK
    assert row.named == "Één ☃" and row.round_id is None and row.share == "100%"
    assert row.created_at.tzinfo is not None and isinstance(row.premium_rate, Decimal)
    assert _PROJECTS.first(session, {"city": "Nowhere"}) is None

    (pool,) = _POOLS.rows(session, {})
    assert tuple(pool) == tuple(session.execute(_POOLS.statement).one())
    assert pool.themes == [Theme.WORK] and pool.match_ratio == Decimal("0.5")


@pytest.mark.parametrize("detail", [{"reason": "ünïcode \x01", "cents": 10**15}, None])
def test_parameters_are_written_as_sqlalchemy_writes_them(session, detail):
    written = _AUDIT.first(session, {"at": AT, "action": "hot", "detail": detail})
    session.execute(_AUDIT.statement, {"at": AT, "action": "plain", "detail": detail})
    session.commit()
    stored = {
        action: (at, kept, json_type)
        for action, at, kept, json_type in session.execute(
            select(
                AuditEvent.action,
                AuditEvent.at,
                AuditEvent.detail,
                text("json_type(detail)" if session.bind.dialect.name == "sqlite" else "'-'"),
            ).where(AuditEvent.kind == "test")
        )
    }
    assert stored["hot"] == stored["plain"]
    assert written.at == AT and written.detail == detail
    if session.bind.dialect.name == "postgresql":
        raw = session.execute(
            text("SELECT detail::text FROM audit_events WHERE kind = 'test' ORDER BY id")
        ).scalars()
        hot_json, plain_json = list(raw)
        assert hot_json == plain_json  # None is JSON null both ways, not SQL NULL


def test_a_refusal_of_the_database_is_sqlalchemys_error(session):
    user = UserFactory()
    session.commit()
    given = {"user_id": user.id, "key": "twice", "at": AT}
    _RECORD.rows(session, given)
    with pytest.raises(IntegrityError):
        _RECORD.rows(session, given)
    session.rollback()
    assert session.scalar(select(IdempotencyRecord.key)) is None  # rolled back together
    assert _RECORD.first(session, given) is not None  # the session goes on


@pytest.mark.postgres_only
def test_a_lost_connection_is_dropped_and_said_as_sqlalchemy_says_it(app, session):
    session.execute(text("SELECT 1"))
    own = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with app.extensions["db"].engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": own})
    with pytest.raises(OperationalError) as raised:
        _PROJECTS.rows(session, {"city": "Delft"})
    assert raised.value.connection_invalidated
    session.rollback()
    assert _PROJECTS.rows(session, {"city": "Delft"}) == []  # a new connection answers
