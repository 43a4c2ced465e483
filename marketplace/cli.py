"""Command-line entry points: ``users``, ``demo`` and ``scheduler``.

Each command opens its own transaction, calls one service and reports; a
refusal is printed with the field it concerns and exits non-zero.
"""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import datetime
from zoneinfo import ZoneInfo

import click
import marshmallow as ma
from flask import Flask, current_app
from flask.cli import AppGroup

from marketplace.accounts import account_rules
from marketplace.accounts.models import Role
from marketplace.accounts.schemas import StaffUserSchema
from marketplace.accounts.services import NewUser, create_user
from marketplace.audit import services as audit
from marketplace.core.clock import now, today
from marketplace.core.errors import MarketplaceError
from marketplace.core.observability import configure_logging
from marketplace.core.sweeps import sweep_context
from marketplace.demo import (
    DEMO_PASSWORD,
    DEMO_PROJECTS,
    DEMO_USERS,
    demo_pool,
    load_demo,
    load_demo_projects,
)
from marketplace.extensions import db
from marketplace.scheduler import build_scheduler, log_lines, run_sweeps


def _from_the_command_line() -> None:
    """While a command runs, what it changes is recorded in the audit log as ``cli``."""
    click.get_current_context().with_resource(audit.acting_as("cli"))


users_cli = AppGroup("users", help="Manage user accounts.", callback=_from_the_command_line)
demo_cli = AppGroup("demo", help="Demo data for a local run.", callback=_from_the_command_line)
scheduler_cli = AppGroup(
    "scheduler", help="Run the scheduled sweeps.", callback=_from_the_command_line
)


def _fail(errors: dict[str, list[str]] | None, detail: str) -> None:
    lines = [f"  {field}: {' '.join(messages)}" for field, messages in (errors or {}).items()]
    raise click.ClickException("\n".join([detail, *lines]))


@users_cli.command("create")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--organisation", required=True, help="Joined when it exists, created otherwise.")
def create_user_command(role: str, email: str, name: str, organisation: str) -> None:
    """Create a user; the password comes from USER_PASSWORD or a prompt."""
    password = os.environ.get("USER_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    try:
        data = StaffUserSchema().load(
            {
                "email": email,
                "password": password,
                "name": name,
                "role": role,
                "organisation": organisation,
            }
        )
    except ma.ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        _fail({k: list(v) for k, v in messages.items()}, "The user was not created.")
    try:
        with db.transaction() as session:
            user = create_user(
                session, account_rules(), NewUser(**{**data, "role": Role(data["role"])}), now=now()
            )
            summary = (
                f"Created {user.role.value} {user.email} (id {user.id}) "
                f"in {user.organisation.name}."
            )
    except MarketplaceError as exc:
        _fail(exc.errors, f"The user was not created: {exc.detail}")
    click.echo(summary)


def _demo_history() -> bool:
    """The settled demo project, lived against the fake Stripe (not with a real one)."""
    from marketplace.demo_history import DemoHistoryFailed, load_demo_history

    try:
        return load_demo_history(current_app._get_current_object(), today())  # type: ignore[attr-defined]
    except DemoHistoryFailed as failed:
        raise click.ClickException(
            f"The demo's settled project could not be made: {failed}"
        ) from None


@demo_cli.command("load")
def demo_load_command() -> None:
    """Create the demo organisations and users (idempotent)."""
    with db.transaction() as session:
        created = load_demo(session, account_rules(), now=now())
        projects = load_demo_projects(session, now=now(), today=today())
    lived = _demo_history()
    with db.transaction() as session:
        demo_pool(session, now=now())
    click.echo(
        f"Demo data: {len(created)} users created, "
        f"{len(DEMO_USERS) - len(created)} already present; "
        f"{len(projects)} projects created, {len(DEMO_PROJECTS) - len(projects)} already present"
        + ("; a settled project with its year lived." if lived else ".")
    )
    _echo_demo_logins()


def _empty(engine) -> None:
    """Every table, view, trigger and function of the app's schema, gone (the audit log's
    append-only triggers included, so no row is deleted one by one)."""
    from sqlalchemy import text

    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    else:
        raw = engine.raw_connection()
        try:
            driver = raw.driver_connection
            driver.commit()
            driver.execute("PRAGMA foreign_keys = OFF")  # only outside a transaction
            objects = driver.execute(
                "SELECT type, name FROM sqlite_master "
                "WHERE type IN ('trigger', 'view', 'table') AND name NOT LIKE 'sqlite_%'"
            ).fetchall()
            for kind, name in sorted(objects, key=lambda row: row[0] != "trigger"):
                driver.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
            driver.commit()
            driver.execute("PRAGMA foreign_keys = ON")
        finally:
            raw.close()
    engine.dispose()


@demo_cli.command("reset")
@click.option("--yes", is_flag=True, help="Do not ask: every row of this database goes.")
def demo_reset_command(yes: bool) -> None:
    """Empty the database and load the demo again (never in production)."""
    import flask_migrate

    settings = current_app.extensions["settings"]
    if settings.is_production:
        raise click.ClickException("demo reset empties the database: not in production.")
    if not yes:
        click.confirm(
            f"Every row of {db.engine.url.render_as_string(hide_password=True)} goes. Go on?",
            abort=True,
        )
    _empty(db.engine)
    flask_migrate.upgrade()
    with db.transaction() as session:
        created = load_demo(session, account_rules(), now=now())
        projects = load_demo_projects(session, now=now(), today=today())
    lived = _demo_history()
    with db.transaction() as session:
        demo_pool(session, now=now())
    click.echo(f"The demo is back: {len(created)} users, {len(projects) + int(lived)} projects.")
    _echo_demo_logins()


@demo_cli.command("logins")
def demo_logins_command() -> None:
    """Print the demo logins."""
    _echo_demo_logins()


def _echo_demo_logins() -> None:
    click.echo(f"Demo logins (password {DEMO_PASSWORD!r}):")
    for demo in DEMO_USERS:
        click.echo(f"  {demo.role.value:<13} {demo.email}")


def _parse_instant(value: str, zone: str) -> datetime:
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "give an ISO 8601 instant such as 2027-01-31T12:00:00Z", param_hint="--now"
        ) from None
    if instant.tzinfo is None:
        # A wall-clock time without a zone is read in the platform's time zone.
        instant = instant.replace(tzinfo=ZoneInfo(zone))
    return instant


@scheduler_cli.command("tick")
@click.option("--now", "at", default=None, help="Run as of this instant (ISO 8601).")
def tick_command(at: str | None) -> None:
    """Run every sweep once, as of --now or the current time, and print what each did."""
    settings = current_app.extensions["settings"]
    instant = _parse_instant(at, settings.timezone) if at else now()
    reports = run_sweeps(sweep_context(current_app), instant)
    click.echo(f"Sweeps as of {instant.isoformat()}:")
    for report in reports:
        click.echo(f"  {report.name}: {'ok' if report.ok else 'FAILED'}: {report.summary}")
    if not all(report.ok for report in reports):
        raise click.exceptions.Exit(1)


@scheduler_cli.command("run")
def run_command() -> None:
    """Run the scheduler in the foreground: every sweep once a minute."""
    settings = current_app.extensions["settings"]
    configure_logging(settings.log_format, settings.log_level)
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # the proxied app
    log = logging.getLogger("marketplace.scheduler")

    def job() -> None:
        with app.app_context():
            instant = now()
            for line in log_lines(run_sweeps(sweep_context(app), instant), instant):
                log.info("%s", line)

    scheduler = build_scheduler(job)
    click.echo("Scheduler running; every sweep runs once a minute. Ctrl-C stops it.")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()


def register_commands(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(scheduler_cli)
