"""The command line: creating staff users, demo data, and scheduler ticks."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import LoginAttempt, Organisation, Role, User
from marketplace.demo import DEMO_PROJECTS, DEMO_USERS
from marketplace.pools.models import Pool
from marketplace.projects.models import Project, ProjectStateChange
from tests.factories import LoginAttemptFactory, UserFactory


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args, env=None, input=None):
        return runner.invoke(args=list(args), env=env, input=input)

    return invoke


def count(session, model):
    session.rollback()
    return session.scalar(select(func.count()).select_from(model))


def test_an_admin_is_created_with_the_password_from_the_environment(cli, session, client):
    result = cli(
        "users",
        "create",
        "--role",
        "admin",
        "--email",
        "Anouk@Panel.example",
        "--name",
        "Anouk de Vries",
        "--organisation",
        "Expert panel",
        env={"USER_PASSWORD": "a long admin password"},
    )

    assert result.exit_code == 0, result.output
    assert "Created admin anouk@panel.example" in result.output
    session.rollback()
    user = session.scalars(select(User)).one()
    assert (user.role, user.organisation.name) == (Role.ADMIN, "Expert panel")
    token = client.post(
        "/api/v1/auth/tokens",
        json={"email": "anouk@panel.example", "password": "a long admin password"},
    )
    assert token.status_code == 201


def test_the_password_can_be_typed_at_a_prompt(cli, session):
    result = cli(
        "users",
        "create",
        "--role",
        "evaluator",
        "--email",
        "pieter@eval.example",
        "--name",
        "Pieter Bakker",
        "--organisation",
        "Maasstad Impact Evaluatie",
        input="a long evaluator password\na long evaluator password\n",
    )

    assert result.exit_code == 0, result.output
    assert count(session, User) == 1


def test_a_staff_user_joins_an_existing_organisation(cli, session):
    UserFactory(admin=True, organisation__name="Expert panel")

    result = cli(
        "users",
        "create",
        "--role",
        "admin",
        "--email",
        "second@panel.example",
        "--name",
        "Second Admin",
        "--organisation",
        "expert PANEL",
        env={"USER_PASSWORD": "a long admin password"},
    )

    assert result.exit_code == 0, result.output
    assert count(session, Organisation) == 1


@pytest.mark.parametrize(
    ("args", "password", "field"),
    [
        (["--email", "not-an-email"], "a long admin password", "email"),
        (["--email", "ok@panel.example"], "short", "password"),
    ],
)
def test_bad_input_names_the_field_and_creates_nothing(cli, session, args, password, field):
    result = cli(
        "users",
        "create",
        "--role",
        "admin",
        *args,
        "--name",
        "X",
        "--organisation",
        "Panel",
        env={"USER_PASSWORD": password},
    )

    assert result.exit_code != 0
    assert f"{field}:" in result.output
    assert count(session, User) == 0


def test_a_taken_email_is_refused(cli, session):
    UserFactory(email="taken@panel.example")

    result = cli(
        "users",
        "create",
        "--role",
        "admin",
        "--email",
        "taken@panel.example",
        "--name",
        "X",
        "--organisation",
        "Panel",
        env={"USER_PASSWORD": "a long admin password"},
    )

    assert result.exit_code != 0
    assert "already exists" in result.output
    assert count(session, User) == 1


def test_an_unknown_role_is_refused(cli, session):
    result = cli(
        "users",
        "create",
        "--role",
        "superuser",
        "--email",
        "x@panel.example",
        "--name",
        "X",
        "--organisation",
        "Panel",
        env={"USER_PASSWORD": "long enough pw"},
    )

    assert result.exit_code == 2
    assert count(session, User) == 0


def test_demo_data_loads_once_however_often_it_runs(cli, session):
    first = cli("demo", "load")
    second = cli("demo", "load")

    assert first.exit_code == second.exit_code == 0
    assert f"{len(DEMO_USERS)} users created" in first.output
    assert "0 users created" in second.output
    assert count(session, User) == len(DEMO_USERS)
    assert "admin@som.example" in second.output


def test_demo_projects_cover_every_stage_before_pledging(cli, session):
    cli("demo", "load")
    cli("demo", "load")

    session.rollback()
    states = session.execute(select(Project.state, func.count()).group_by(Project.state)).all()
    assert {state.value: n for state, n in states} == {
        "draft": 1,
        "submitted": 1,
        "valued": 1,
        "funding": 7,
        "rejected": 1,
        "withdrawn": 1,
        "settled": 1,  # lived against the fake Stripe (demo_history)
    }
    assert len(DEMO_PROJECTS) == 12
    histories = session.scalar(select(func.count()).select_from(ProjectStateChange))
    assert histories >= 12 * 2 + 7


def test_demo_users_can_log_in_with_the_printed_password(cli, client):
    cli("demo", "load")

    response = client.post(
        "/api/v1/auth/tokens", json={"email": "buyer@som.example", "password": "demo-password"}
    )

    assert response.status_code == 201


def test_a_tick_runs_every_sweep_as_of_the_given_instant(cli, session):
    at = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    LoginAttemptFactory(attempted_at=at - timedelta(days=2))
    LoginAttemptFactory(attempted_at=at - timedelta(hours=1))

    result = cli("scheduler", "tick", "--now", "2027-03-01T12:00:00Z")

    assert result.exit_code == 0, result.output
    assert "purge_login_attempts: ok: deleted 1 old log-in attempts" in result.output
    assert count(session, LoginAttempt) == 1
    again = cli("scheduler", "tick", "--now", "2027-03-01T12:00:00Z")
    assert "deleted 0 old log-in attempts" in again.output


def test_a_tick_reads_a_time_without_zone_in_the_platform_time_zone(cli):
    result = cli("scheduler", "tick", "--now", "2027-03-01T00:00")

    assert result.exit_code == 0
    assert "2027-03-01T00:00:00+01:00" in result.output


def test_a_malformed_instant_is_refused(cli):
    result = cli("scheduler", "tick", "--now", "next tuesday")

    assert result.exit_code == 2
    assert "--now" in result.output


def test_demo_reset_brings_the_demo_back_and_nothing_else(backend, make_database_url, tmp_path):
    import flask_migrate

    from tests.conftest import build_app

    fresh = build_app(make_database_url(backend), tmp_path)
    with fresh.app_context():
        flask_migrate.upgrade()
    runner = fresh.test_cli_runner()
    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    engine = fresh.extensions["db"].engine
    with engine.begin() as connection:
        connection.execute(
            User.__table__.update().where(User.email == "buyer@som.example").values(name="Changed")
        )

    asked = runner.invoke(args=["demo", "reset"], input="n\n")
    assert asked.exit_code == 1 and "Aborted" in asked.output
    result = runner.invoke(args=["demo", "reset", "--yes"])

    assert result.exit_code == 0, result.output
    assert f"The demo is back: {len(DEMO_USERS)} users, {len(DEMO_PROJECTS)} projects." in (
        result.output
    )
    with engine.connect() as connection:
        names = dict(connection.execute(select(User.email, User.name)).all())
    assert names["buyer@som.example"] == "Lotte Jansen"
    assert len(names) == len(DEMO_USERS)
    engine.dispose()


def test_demo_reset_refuses_in_production(cli, app, monkeypatch):
    from dataclasses import replace

    monkeypatch.setitem(
        app.extensions, "settings", replace(app.extensions["settings"], env="production")
    )

    result = cli("demo", "reset", "--yes")

    assert result.exit_code == 1
    assert "not in production" in result.output


def test_the_demo_has_a_settled_project_with_retired_tokens_and_clean_books(app, cli, session):
    from marketplace.accounts.models import ApiToken
    from marketplace.core.sweeps import sweep_context
    from marketplace.demo_history import TITLE
    from marketplace.ledger.services import verify
    from marketplace.registry.models import Retirement, TokenBlock
    from marketplace.scheduler import run_sweeps
    from marketplace.settlement.models import Settlement

    first = cli("demo", "load")
    assert first.exit_code == 0, first.output
    assert "a settled project with its year lived" in first.output

    session.rollback()
    project = session.scalars(select(Project).where(Project.title == TITLE)).one()
    assert project.state.value == "settled"
    settlement = session.scalars(
        select(Settlement).where(Settlement.project_id == project.id)
    ).one()
    assert settlement.finished_at is not None
    assert 0 < settlement.v_verified_cents < settlement.v_target_cents
    assert settlement.finished_at.date() < datetime.now(UTC).date()  # lived in the past
    (retirement,) = session.scalars(select(Retirement)).all()
    assert retirement.quantity == 120 and retirement.project_id == project.id
    minted = session.scalars(select(TokenBlock).where(TokenBlock.project_id == project.id)).all()
    assert sum(b.last_serial - b.first_serial + 1 for b in minted) == settlement.tokens_minted
    assert session.scalars(select(ApiToken).where(ApiToken.revoked_at.is_(None))).all() == []
    assert verify(session) == []
    reports = {r.name: r for r in run_sweeps(sweep_context(app), datetime.now(UTC))}
    assert reports["reconcile"].summary.endswith("the books agree"), reports["reconcile"]

    second = cli("demo", "load")
    assert "a settled project" not in second.output
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Settlement)) == 1


def test_the_demo_has_a_round_with_listed_projects_and_a_pool_matching_them(cli, client):
    cli("demo", "load")
    cli("demo", "load")

    [demo_round] = client.get("/api/v1/rounds").json
    assert demo_round["state"] == "open" and demo_round["figures"]["projects"] == 3
    listed = client.get(f"/api/v1/projects?round_id={demo_round['id']}").json["items"]
    assert {p["funding_deadline"] for p in listed} == {demo_round["funding_deadline"]}
    found = client.application.extensions["db"].session_factory()
    try:
        [(name, round_id, ratio)] = found.execute(
            select(Pool.name, Pool.round_id, Pool.match_ratio)
        ).all()
    finally:
        found.close()
    assert (name, round_id, ratio) == ("Rotterdam Werkt Fonds (demo)", demo_round["id"], 1)
