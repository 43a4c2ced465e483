"""Test fixtures.

- ``tests/unit`` needs no database.
- Every test that uses ``app`` (and so ``client``, ``session``, factories) runs
  once on SQLite and once on PostgreSQL. PostgreSQL is a private server
  started for the run (or ``TEST_POSTGRES_URL`` when given). The schema is
  built by the real migrations. The application commits for real; after each
  test every table is emptied.
- ``TEST_DATABASES=sqlite`` limits a local run to one backend; under
  ``CI=true`` both are required and no test may be skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import flask_migrate
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text, update
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.serving import make_server

from config import testing_settings
from marketplace import create_app
from marketplace.audit.models import SQLITE_TRIGGERS
from marketplace.core.clock import system_clock
from marketplace.models import Project
from outcomes.db import Base
from tests import factories
from tests.support.postgres import PostgresServer, create_database, drop_database, find_bindir
from tests.support.stripe_process import StripeServer

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BACKENDS = [b for b in os.environ.get("TEST_DATABASES", "sqlite,postgresql").split(",") if b]
if IN_CI and set(BACKENDS) != {"sqlite", "postgresql"}:
    raise pytest.UsageError("CI runs every integration test on both SQLite and PostgreSQL")


def pytest_collection_modifyitems(config, items):
    """A ``postgres_only`` test is not collected for SQLite (deselected, not skipped)."""
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.get_closest_marker("postgres_only") and params.get("backend") == "sqlite":
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = terminalreporter.stats.get("skipped", [])
    if IN_CI and skipped:
        terminalreporter.write_line(
            f"CI=true: {len(skipped)} skipped tests are not allowed", red=True
        )


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if IN_CI and reporter is not None and reporter.stats.get("skipped"):
        session.exitstatus = 1


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    if os.environ.get("TEST_POSTGRES_URL"):
        yield os.environ["TEST_POSTGRES_URL"]
        return
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed: run `make test`, which installs it")
    server = PostgresServer(bindir).start()
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def make_database_url(request, tmp_path_factory):
    """A factory of fresh, empty databases on a backend. On a server shared through
    TEST_POSTGRES_URL (it outlives the run) the ones made are dropped at the end; a
    throwaway server goes with its databases."""
    counter = iter(range(1_000_000))
    made: list[tuple[str, str]] = []  # (admin URL, database)

    def make(backend: str) -> str:
        n = next(counter)
        if backend == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / f'test{n}.db'}"
        admin_url = request.getfixturevalue("postgres_admin_url")
        made.append((admin_url, f"som_test_{os.getpid()}_{n}"))
        return create_database(*made[-1])

    yield make
    if os.environ.get("TEST_POSTGRES_URL"):
        for admin_url, name in made:
            drop_database(admin_url, name)


def build_app(database_url: str, instance_path: Path, **overrides) -> Flask:
    return create_app(testing_settings(database_url, instance_path, **overrides))


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[StripeServer]:
    """A private localstripe (extended: Connect, transfers, idempotency) for the run."""
    server = StripeServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _app(backend, make_database_url, tmp_path_factory, stripe_server) -> Iterator[Flask]:
    app = build_app(
        make_database_url(backend),
        tmp_path_factory.mktemp("instance"),
        stripe_api_base=stripe_server.url,
    )
    with app.app_context():
        flask_migrate.upgrade()
    app.extensions["test_seed"] = _read_seed(app)
    factories.Session.configure(bind=app.extensions["db"].engine)
    yield app
    app.extensions["db"].engine.dispose()


class FrozenClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


@pytest.fixture
def app(_app: Flask, stripe_server: StripeServer) -> Iterator[Flask]:
    yield _app
    stripe_server.reset()
    factories.Session.remove()
    _app.extensions["clock"] = system_clock
    _app.extensions.pop("project_count_cache", None)
    _empty_tables(_app)
    shutil.rmtree(_app.extensions["evidence"].root, ignore_errors=True)


# Reference data the migrations load; restored as it was after every test.
SEEDED_TABLES = ("outcome_types", "listing_version")


def _read_seed(app: Flask) -> dict[str, list[dict]]:
    with app.extensions["db"].engine.connect() as conn:
        return {
            name: [
                dict(row) for row in conn.execute(Base.metadata.tables[name].select()).mappings()
            ]
            for name in SEEDED_TABLES
        }


def _empty_audit_log(conn) -> None:
    """The audit log refuses DELETE; a test run may lift that for a moment."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("TRUNCATE audit_events"))  # row triggers do not fire
        return
    for name in SQLITE_TRIGGERS:
        conn.execute(text(f"DROP TRIGGER {name}"))
    conn.execute(text("DELETE FROM audit_events"))
    for create in SQLITE_TRIGGERS.values():
        conn.execute(text(create))


def _empty_tables(app: Flask) -> None:
    engine = app.extensions["db"].engine
    with engine.begin() as conn:
        # projects and valuation_snapshots refer to each other: cut the cycle first.
        conn.execute(update(Project).values(valuation_id=None))
        _empty_audit_log(conn)
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != "audit_events":
                conn.execute(table.delete())
        for name, rows in app.extensions["test_seed"].items():
            conn.execute(Base.metadata.tables[name].insert(), rows)


@pytest.fixture
def clock(app: Flask) -> FrozenClock:
    frozen = FrozenClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    app.extensions["clock"] = frozen
    return frozen


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def session(app: Flask) -> Session:
    """A session of the test's own (the factories'), for set-up and assertions.

    It is not the application's request session: holding an application
    context open here would make every request share ``g`` with the test.
    Call ``session.rollback()`` before asserting on what a request wrote, so
    the read is not served from an older snapshot.
    """
    return factories.Session()


@pytest.fixture
def auth_headers(app: Flask):
    """``auth_headers(user)``: headers carrying a fresh API token of ``user``."""

    def make(user) -> dict[str, str]:
        token = factories.ApiTokenFactory(user=user)
        return {"Authorization": f"Bearer {token.secret}"}

    return make


@pytest.fixture
def live_app(app: Flask) -> Iterator[str]:
    """The app served over HTTP on 127.0.0.1, so localstripe can deliver webhooks to it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


CSRF_PATTERN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_PATTERN.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


HIDDEN_FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
REVIEW_FORM = re.compile(r'<section class="card review".*?</section>', re.S)


def review_fields(html: str) -> list[tuple[str, str]]:
    """The fields the review step's form sends (hidden inputs, unescaped)."""
    found = REVIEW_FORM.search(html)
    assert found, "the page is not a review step"
    return [(k, unescape(v)) for k, v in HIDDEN_FIELD.findall(found.group(0))]


@pytest.fixture
def web(client: FlaskClient):
    """Helpers to use the pages as a browser would: GET a form, POST it with its token."""

    class Browser:
        def __init__(self, client: FlaskClient) -> None:
            self.client = client

        def get(self, path: str, **kwargs):
            return self.client.get(path, **kwargs)

        def submit(self, form_path: str, data: dict, *, action: str | None = None, **kwargs):
            page = self.client.get(form_path)
            token = csrf_from(page.get_data(as_text=True))
            return self.client.post(
                action or form_path, data={**data, "csrf_token": token}, **kwargs
            )

        def confirm(self, form_path: str, data: dict, *, action: str, **kwargs):
            """Post a form for an irreversible action, then confirm on its review step
            (as a person clicks the review page's button); returns the second answer."""
            review = self.submit(form_path, data, action=action)
            assert review.status_code == 200, review.get_data(as_text=True)[:2000]
            fields = review_fields(review.get_data(as_text=True))
            assert ("confirmed", "yes") in fields
            return self.client.post(action, data=MultiDict(fields), **kwargs)

        def login(self, email: str, password: str = factories.DEFAULT_PASSWORD):
            return self.submit("/login", {"email": email, "password": password})

        def as_user(self, email: str) -> Browser:
            """Another browser (its own cookies), logged in as ``email``."""
            other = Browser(self.client.application.test_client())
            other.login(email)
            return other

    return Browser(client)
