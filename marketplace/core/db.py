"""Engine, sessions and the per-request transaction.

Invariants:
- A request has exactly one session and one transaction. The edge owns it:
  a response below 400 commits, anything else rolls back, and the session is
  closed when the application context ends. Services only flush. A view whose
  work holds a contended lock may commit once its work is done, before the
  answer is built (``db.commit_now()``). One statement commits itself: a
  returning buyer's pledge on PostgreSQL (``funding.one_statement``), which
  ends the request's reads and runs as its own transaction.
- The few process functions that call Stripe take a session factory and
  commit around each call; an edge hands over with ``db.for_process()``,
  which ends the request's (reading) transaction first.
- SQLite runs with foreign keys on, WAL journalling and a busy timeout. The
  application's transactions (requests, CLI, jobs) begin ``IMMEDIATE``: each
  takes the write lock up front, so two transactions that read and then write
  queue on the busy timeout instead of
  failing with "database is locked" (a deferred reader cannot upgrade to a
  writer once another writer has committed). SQLite is the local, embedded
  database; PostgreSQL, the production one, runs transactions concurrently.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from flask import Flask, Response, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def build_engine(url: str, *, prepared_statements: bool = True, **kwargs: Any) -> Engine:
    """Create an engine with the settings this application relies on. Without
    ``prepared_statements`` (behind PgBouncer's transaction pooling) psycopg never
    prepares one: every statement is sent whole, so any server connection can run it."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    connect_args = {} if prepared_statements else {"prepare_threshold": None}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself; pysqlite's own transaction handling
        # would otherwise delay it and break SAVEPOINT.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


class DatabaseState:
    """One application's engine and session factory (``app.extensions["db"]``)."""

    def __init__(self, url: str, pool_size: int = 10, *, prepared_statements: bool = True) -> None:
        pool = (
            {} if url.startswith("sqlite") else {"pool_size": pool_size, "max_overflow": pool_size}
        )
        self.engine: Engine = build_engine(url, prepared_statements=prepared_statements, **pool)
        self.session_factory: sessionmaker[Session] = sessionmaker(
            self.engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False
        )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session for work outside a request (CLI, jobs): commit or roll back."""
        with self.session_factory() as session, session.begin():
            yield session


class Database:
    """The database extension: each app has its own state; a session per app context."""

    def init_app(
        self, app: Flask, url: str, pool_size: int = 10, *, prepared_statements: bool = True
    ) -> None:
        app.extensions["db"] = DatabaseState(
            url, pool_size, prepared_statements=prepared_statements
        )
        app.after_request(self._finish_request)
        app.teardown_appcontext(self._close)

    @property
    def state(self) -> DatabaseState:
        found: DatabaseState = current_app.extensions["db"]
        return found

    @property
    def engine(self) -> Engine:
        return self.state.engine

    @property
    def session(self) -> Session:
        """The session of the current application context."""
        session: Session | None = g.get("_db_session")
        if session is None:
            session = self.state.session_factory()
            g._db_session = session
        return session

    def transaction(self) -> AbstractContextManager[Session]:
        return self.state.transaction()

    def for_process(self) -> sessionmaker[Session]:
        """Before a request hands over to a process function (one that calls Stripe and
        commits around each call): end the request's transaction, which has only read
        so far, and give the process the session factory. On SQLite this also lets go of
        the write lock the request's transaction began with."""
        self.commit_now()
        return self.state.session_factory

    def commit_now(self) -> None:
        """The request's work is done: commit it before the answer is built, so a hot row
        it locked (a project's, when tokens are reserved) is let go one step sooner. What
        the edge does afterwards finds nothing left to commit."""
        session = g.get("_db_session")
        if session is not None:
            session.commit()

    def _finish_request(self, response: Response) -> Response:
        session = g.get("_db_session")
        if session is not None:
            if response.status_code < 400:
                session.commit()
            else:
                session.rollback()
        return response

    def _close(self, _exc: BaseException | None) -> None:
        session = g.pop("_db_session", None)
        if session is not None:
            session.close()
