"""Alembic environment: the application's engine and the models' metadata."""

from __future__ import annotations

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

import marketplace.models  # noqa: F401 - registers every table on the metadata
from marketplace.projects.models import SEARCH_INDEXES, SEARCH_TABLES
from outcomes.db import Base

config = context.config
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name)

target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):
    """Leave out of comparisons what the models deliberately do not describe."""
    return not (
        (type_ == "index" and name in SEARCH_INDEXES)
        or (type_ == "table" and name in SEARCH_TABLES)
    )


def run_migrations_offline() -> None:
    context.configure(
        url=current_app.extensions["settings"].database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _pragma(connection, statement: str) -> list:
    """A PRAGMA on the driver's connection, outside any transaction (SQLite ignores a
    foreign_keys PRAGMA inside one, and the engine begins one for each statement)."""
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        return cursor.execute(f"PRAGMA {statement}").fetchall()
    finally:
        cursor.close()


def run_migrations_online() -> None:
    engine = current_app.extensions["db"].engine
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite changes a table by building a new one and dropping the old; with
            # foreign keys on, dropping a table others refer to fails. As SQLite's own
            # procedure for schema changes says: keys off (before any transaction),
            # change, check every key, keys on.
            _pragma(connection, "foreign_keys = OFF")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            compare_type=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            broken = _pragma(connection, "foreign_key_check")
            _pragma(connection, "foreign_keys = ON")
            if broken:
                raise RuntimeError(f"the migration left rows without their parent: {broken[:5]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
