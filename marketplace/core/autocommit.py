"""Statements on their own, outside a transaction, for a hot path on PostgreSQL.

A pledge by a returning buyer reads (its caller, then all it needs in one read) and then
writes one statement that commits itself (``funding.one_statement``). Its reads need no
transaction: ``reads_apart`` runs them in autocommit, which spares the BEGIN and COMMIT
round trips. Whatever needs a transaction after them (a lock to hold, rows to write
together) calls ``together`` first. SQLAlchemy sets the connection back to transactions
when it returns to the pool; on SQLite nothing changes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session


def reads_apart(session: Session) -> None:
    """Before the request's first statement: each statement on its own (PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def together(session: Session) -> None:
    """What follows runs in a transaction again: the session lets its autocommit
    connection go (nothing is open on it) and takes one as it comes."""
    if session.in_transaction() and getattr(driver(session), "autocommit", False):
        session.commit()


def driver(session: Session) -> Any:
    """The database driver's connection under the session's."""
    return session.connection().connection.driver_connection
