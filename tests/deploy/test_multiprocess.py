"""The deployment of the README, run for real: PostgreSQL, migrations, four gunicorn
workers and one scheduler process, configured by environment variables only; a smoke
journey over HTTP; then everything stops."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from datetime import date, timedelta

import pytest

from config import PROJECT_ROOT
from marketplace.scheduler import SWEEPS
from tests.support.deploy import BIN, production_env
from tests.support.mail import link_to, smtp  # noqa: F401 - the fixture
from tests.support.postgres import _free_port, create_database
from tests.support.stripe_process import StripeServer

pytestmark = pytest.mark.postgres_only
WORKERS = 4


def call(base: str, method: str, path: str, body=None, token: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    request.add_header("X-Request-ID", f"smoke-{secrets.token_hex(6)}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null"), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), error.headers


def wait_for(base: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/health", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the app did not answer /health")


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(line) for line in found.stdout.split()]


@pytest.fixture
def own_stripe():
    """A localstripe of this test's own: the deployed processes' idempotency keys (from
    their own database's ids) must not meet the other tests'."""
    server = StripeServer().start()
    yield server
    server.stop()


def test_four_workers_and_one_scheduler_serve_a_journey(
    postgres_admin_url, own_stripe, tmp_path, smtp
):
    stripe_server = own_stripe
    mail_port, inbox = smtp
    database = create_database(postgres_admin_url, f"som_deploy_{os.getpid()}")
    env = production_env(
        database,
        stripe_server.url,
        tmp_path / "instance",
        # the links that confirm addresses go out by e-mail, to the test's SMTP server
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(mail_port),
        SMTP_STARTTLS="false",
        DB_POOL_SIZE="4",
        ARGON2_MEMORY_COST_KIB="1024",
        ARGON2_TIME_COST="1",
        ARGON2_PARALLELISM="1",
    )
    flask = [str(BIN / "flask"), "--app", "marketplace"]
    migrated = subprocess.run([*flask, "db", "upgrade"], env=env, capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr
    admin_password = secrets.token_urlsafe(16)
    made = subprocess.run(
        [
            *flask,
            "users",
            "create",
            "--role",
            "admin",
            "--email",
            "panel@deploy.example",
            "--name",
            "Panel",
            "--organisation",
            "Expert panel",
        ],
        env={**env, "USER_PASSWORD": admin_password},
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    app_log, scheduler_log = tmp_path / "app.log", tmp_path / "scheduler.log"
    with app_log.open("w") as app_out, scheduler_log.open("w") as scheduler_out:
        app = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "--workers",
                str(WORKERS),
                "--worker-class",
                "gthread",
                "--threads",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
                "marketplace.wsgi:app",
            ],
            env=env,
            stdout=app_out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )
        scheduler = subprocess.Popen(
            [*flask, "scheduler", "run"],
            env=env,
            stdout=scheduler_out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )
        try:
            wait_for(base)
            assert len(children(app.pid)) == WORKERS
            journey(base, admin_password, inbox)
            time.sleep(1)
        finally:
            for process in (app, scheduler):
                process.send_signal(signal.SIGTERM)
            for process in (app, scheduler):
                process.wait(timeout=30)
    assert app.returncode == 0

    lines = [json.loads(line) for line in app_log.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "marketplace.access"]
    assert access, app_log.read_text()[-2000:]
    assert all(line["request_id"] != "-" for line in access)
    assert any(line["request_id"].startswith("smoke-") for line in access)
    # the scheduler ran: a line for a sweep that did something, or one that none had to
    ticks = [
        line["message"]
        for line in map(json.loads, filter(None, scheduler_log.read_text().splitlines()[1:]))
        if line["logger"] == "marketplace.scheduler"
    ]
    quiet = f"{len(SWEEPS)} sweeps as of "
    assert ticks and all(t.startswith(("sweep ", quiet)) for t in ticks), ticks


def journey(base: str, admin_password: str, inbox) -> None:
    status, health, headers = call(base, "GET", "/health")
    assert (status, health) == (200, {"status": "ok", "database": "ok"})
    assert headers["X-Request-ID"].startswith("smoke-")
    tokens = {}
    for role, email, organisation in (
        ("entrepreneur", "ana@buurtwerk.example", "Buurtwerk Delfshaven"),
        ("buyer", "lotte@havenstad.example", "Havenstad Bank"),
    ):
        status, _user, _h = call(
            base,
            "POST",
            "/api/v1/auth/register",
            {
                "email": email,
                "password": "a long enough password",
                "name": email.split("@")[0],
                "role": role,
                "organisation": organisation,
            },
        )
        assert status == 201, _user
        # the address is confirmed with the e-mailed link's secret, as an app would
        secret = link_to(inbox, email).rsplit("/", 1)[1]
        status, confirmed, _h = call(base, "POST", "/api/v1/auth/verify", {"token": secret})
        assert (status, confirmed["email_verified"]) == (200, True), confirmed
        status, token, _h = call(
            base,
            "POST",
            "/api/v1/auth/tokens",
            {
                "email": email,
                "password": "a long enough password",
                "name": "smoke",
            },
        )
        assert status == 201, token
        tokens[role] = token["token"]
    status, token, _h = call(
        base,
        "POST",
        "/api/v1/auth/tokens",
        {
            "email": "panel@deploy.example",
            "password": admin_password,
            "name": "smoke",
        },
    )
    assert status == 201, token
    tokens["admin"] = token["token"]
    # The owners enter their legal details; the panel verifies both organisations.
    for role, registry_id in (("entrepreneur", "41234567"), ("buyer", "24412345")):
        status, me, _h = call(base, "GET", "/api/v1/me", None, tokens[role])
        assert status == 200, me
        path = f"/api/v1/organisations/{me['organisation_id']}"
        legal = {"legal_name": f"{role} B.V.", "registry_id": registry_id, "address": "Rotterdam"}
        status, body, _h = call(base, "PUT", path, legal, tokens[role])
        assert status == 200, body
        status, body, _h = call(base, "POST", f"{path}/verify", None, tokens["admin"])
        assert (status, body["verified"]) == (200, True), body

    soon = date.today() + timedelta(days=40)
    status, project, _h = call(
        base,
        "POST",
        "/api/v1/projects",
        {
            "title": "Werkplaats Delfshaven",
            "summary": "People into paid work.",
            "city": "Rotterdam",
            "theme": "work",
            "budget_cents": 6_000_000,
            "funding_deadline": soon.isoformat(),
            "start_date": (soon + timedelta(days=1)).isoformat(),
            "end_date": (soon + timedelta(days=366)).isoformat(),
            "outcomes": [{"outcome_type": "EMP_BIJSTAND_TO_WORK", "target_quantity": 20}],
        },
        tokens["entrepreneur"],
    )
    assert status == 201, project
    pid = project["id"]
    assert (
        call(base, "POST", f"/api/v1/projects/{pid}/submit", None, tokens["entrepreneur"])[0] == 200
    )
    assert call(base, "POST", f"/api/v1/projects/{pid}/valuation", {}, tokens["admin"])[0] == 200
    assert call(base, "POST", f"/api/v1/projects/{pid}/list", None, tokens["admin"])[0] == 200
    # Many requests, spread over the workers by the kernel: every answer is right.
    for n in range(20):
        status, listed, _h = call(base, "GET", f"/api/v1/projects/{pid}")
        assert (status, listed["state"]) == (200, "funding"), n
    status, pledge, _h = call(
        base,
        "POST",
        f"/api/v1/projects/{pid}/pledges",
        {
            "tokens": 100,
            "payment_method": "pm_card_visa",
        },
        tokens["buyer"],
    )
    assert (status, pledge["state"]) == (201, "committed"), pledge
    status, listed, _h = call(base, "GET", f"/api/v1/projects/{pid}")
    assert listed["tokens_pledged"] == 100
