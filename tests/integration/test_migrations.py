"""The migrations build exactly the schema the models describe, on both databases."""

import flask_migrate
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import marketplace.models  # noqa: F401 - every table on the metadata
from marketplace.projects.models import SEARCH_INDEXES, SEARCH_TABLES
from outcomes.db import Base
from tests.conftest import build_app


def include_object(obj, name, type_, reflected, compare_to):
    """As migrations/env.py: PostgreSQL's search indexes are not in the models."""
    return not (
        (type_ == "index" and name in SEARCH_INDEXES)
        or (type_ == "table" and name in SEARCH_TABLES)
    )


def _drift(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include_object}
        )
        return compare_metadata(context, Base.metadata)


def test_models_and_migrations_do_not_drift(app):
    assert _drift(app.extensions["db"].engine) == []


def test_every_table_comes_from_a_migration(app):
    tables = set(inspect(app.extensions["db"].engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_migrations_downgrade_to_nothing_and_upgrade_again(backend, make_database_url, tmp_path):
    fresh = build_app(make_database_url(backend), tmp_path)
    engine = fresh.extensions["db"].engine
    with fresh.app_context():
        flask_migrate.upgrade()
        flask_migrate.downgrade(revision="base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        flask_migrate.upgrade()
    assert _drift(engine) == []
    engine.dispose()
