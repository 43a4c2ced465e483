"""The hottest statements, compiled once and sent by the driver itself (PostgreSQL).

On each execution SQLAlchemy looks the statement's compiled form up by its cache key
(hashing the whole statement's key), builds the parameters and wraps the cursor in a
result; for the few statements of the busiest request (a returning buyer's pledge:
its caller, its read ahead, its write) that was a third of the request's Python time,
more than the driver's own work. A ``Hot`` statement is compiled once and,
on PostgreSQL, its SQL goes straight to the driver's cursor with the conversions
SQLAlchemy would apply, taken from the same column types once: each parameter through
its type's bind processor, each column of the answer through its result processor.
The SQL is sent with PostgreSQL's own numbered placeholders through a raw cursor, so
the driver does not parse it again (psycopg caches its parse only for statements up to
4 kB and 50 parameters; a pledge matched by a pool is longer). The driver connection is
the session's own, in whatever transaction (or autocommit) the session has it, and the
driver prepares the statement as it does SQLAlchemy's (or not, under PgBouncer).
Errors come out as SQLAlchemy's, a lost connection is dropped from the pool, so callers
and error handlers see what they would see from ``Session.execute``. Other databases
run the statement through SQLAlchemy.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any

from psycopg import RawCursor
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

# A parameter as SQLAlchemy writes it for psycopg, or a percent sign it doubled.
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


def _numbered(sql: str) -> tuple[str, list[str]]:
    """The SQL with PostgreSQL's own placeholders ($1 for the first name, and wherever it
    comes again), and the names in that order. The driver then sends it as it is: its
    own parsing of named placeholders is skipped (psycopg parses a statement longer than
    4 kB or with more than 50 parameters again on every execution)."""
    order: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        return f"${order.setdefault(name, len(order) + 1)}"

    return _PLACEHOLDER.sub(number, sql), list(order)


class _Compiled:
    """One statement compiled for one dialect: its SQL, the values it fixes itself, how
    each parameter given by name is converted, and how its rows are read."""

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if "POSTCOMPILE" in compiled.string:  # expanding parameters are rendered when run
            raise ValueError("a hot statement takes no expanding parameters")
        self.sql, self.order = _numbered(compiled.string)
        if set(self.order) != set(compiled.bind_names.values()):
            raise ValueError("a hot statement's parameters are named in its SQL as compiled")
        self.fixed: dict[str, Any] = {}
        self.given: list[tuple[str, str, Callable[[Any], Any] | None]] = []
        for bind, name in compiled.bind_names.items():
            convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.required:
                self.given.append((name, bind.key, convert))
            else:  # a literal of the statement (an enum compared, a constant)
                value = bind.effective_value
                self.fixed[name] = value if convert is None else convert(value)
        self.dialect = dialect
        columns = self.columns = list(statement.exported_columns)  # selected or returned
        self.read: list[Callable[[Any], Any] | None] | None = None
        self.row: Any = namedtuple(  # type: ignore[misc]  # names known at run time
            "Row", [column.key for column in columns], rename=True
        )

    def parameters(self, given: Mapping[str, Any]) -> list[Any]:
        """The values in the order of the SQL's $1, $2, ..."""
        values = dict(self.fixed)
        for name, key, convert in self.given:
            value = given[key]
            values[name] = value if convert is None else convert(value)
        return [values[name] for name in self.order]

    def learn(self, description: Any) -> None:
        """How each column is read, from the driver's type of it (known once it answered;
        the same for every execution of the statement)."""
        self.read = [
            column.type.dialect_impl(self.dialect).result_processor(
                self.dialect, described.type_code
            )
            for column, described in zip(self.columns, description, strict=True)
        ]

    def rows(self, raw: list[Any]) -> list[Any]:
        read = self.read or []
        if not any(read):
            return [self.row._make(row) for row in raw]
        return [
            self.row._make(
                value if convert is None else convert(value)
                for convert, value in zip(read, row, strict=True)
            )
            for row in raw
        ]


class Hot:
    """A statement built on first use (``build``) and run with ``rows`` or ``first``. It is
    compiled once, for the first PostgreSQL engine that runs it: every engine of the app
    is made alike (``core.db.build_engine``), so their type processors are the same."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._statement: Any = None
        self._compiled: _Compiled | None = None  # PostgreSQL's

    @property
    def statement(self) -> Any:
        if self._statement is None:
            self._statement = self._build()  # two threads may both build it: the same
        return self._statement

    def rows(self, session: Session, parameters: Mapping[str, Any]) -> list[Any]:
        """The statement's rows (named tuples, the columns converted as SQLAlchemy would)."""
        connection = session.connection()
        dialect = connection.dialect
        if dialect.name != "postgresql":
            return list(connection.execute(self.statement, dict(parameters)).all())
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = _Compiled(self.statement, dialect)
        values = compiled.parameters(parameters)
        driver: Any = connection.connection.driver_connection
        try:
            with RawCursor(driver) as cursor:
                cursor.execute(compiled.sql, values)
                raw = cursor.fetchall()  # every hot statement answers rows
                if not raw:
                    return []
                if compiled.read is None:
                    compiled.learn(cursor.description)
        except dialect.loaded_dbapi.Error as error:
            lost = bool(getattr(driver, "broken", False) or getattr(driver, "closed", False))
            if lost:
                connection.invalidate(error)
            raise DBAPIError.instance(
                compiled.sql,
                values,
                error,
                dialect.loaded_dbapi.Error,
                connection_invalidated=lost,
                dialect=dialect,
            ) from error
        return compiled.rows(raw)

    def first(self, session: Session, parameters: Mapping[str, Any]) -> Any | None:
        found = self.rows(session, parameters)
        return found[0] if found else None
