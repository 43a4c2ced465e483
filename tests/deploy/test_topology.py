"""The production topology, run from deploy/'s own files (tests/support/topology.py):
nginx with TLS in front of two gunicorn app servers, PgBouncer in transaction pooling
mode in front of PostgreSQL 15, two schedulers, evidence in an S3-compatible bucket.

A project's whole life goes through nginx: listed, pledged by two buyers, charged,
evaluated with evidence, settled. In the middle one app server is killed (SIGKILL, its
workers with it) and nginx serves on with the other; one scheduler is killed, and at
each step of time two ticks run at once, one of them killed halfway through charging
and through settling. At the end nothing is lost and nothing was done twice: every
pledge charged once at Stripe, every refund and transfer once there and once in the
books, the tokens minted once, no notice left half-sent, reconciliation clean.
"""

from __future__ import annotations

import hashlib
import signal
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from sqlalchemy import func, select

import config
from marketplace import create_app
from marketplace.audit.models import AuditEvent
from marketplace.funding.models import Pledge, PledgeState
from marketplace.ledger.models import JournalEntry
from marketplace.notifications.models import MailState, Notification
from marketplace.payments.models import MoneyState, Payment, PaymentState, Refund, Transfer
from marketplace.reconciliation.checks import reconcile
from marketplace.registry.models import TokenBlock
from tests.deploy.test_crash_recovery import all_of
from tests.integration.test_progress_evidence import PDF
from tests.support.topology import Topology

pytestmark = pytest.mark.postgres_only
ZONE = ZoneInfo("Europe/Amsterdam")
PASSWORD = "a long enough password for the topology"


@pytest.fixture(scope="module")
def topology():
    started = Topology().start()
    yield started
    started.stop()


def at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZONE)


class Site:
    """HTTPS through nginx, as a person's app would call it."""

    def __init__(self, topology: Topology) -> None:
        self.http = httpx.Client(base_url=topology.base, verify=topology.tls(), timeout=60)
        self.tokens: dict[str, str] = {}

    def call(self, method: str, path: str, who: str | None = None, **kwargs) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if who:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return self.http.request(method, path, headers=headers, **kwargs)

    def ok(self, method: str, path: str, who: str | None = None, **kwargs) -> dict:
        answer = self.call(method, path, who, **kwargs)
        assert answer.status_code in (200, 201), (method, path, answer.text[:500])
        return answer.json()


def ticks_at_once(topology: Topology, instant: datetime, *, kill_when: str | None = None) -> bool:
    """Two schedulers' sweeps at once as of ``instant``; with ``kill_when`` (a query), one is
    SIGKILLed once the database shows it; then a last tick finishes whatever is left.
    Returns whether a tick was killed while it ran."""
    first, second = topology.tick(instant), topology.tick(instant)
    if kill_when is not None:
        deadline = time.monotonic() + 120
        with psycopg.connect(topology.direct_url.replace("+psycopg", "")) as conn:
            while first.poll() is None and not conn.execute(kill_when).fetchone()[0]:
                assert time.monotonic() < deadline, f"never reached: {kill_when}"
                conn.rollback()
                time.sleep(0.01)
    killed = kill_when is not None and first.poll() is None
    if killed:
        first.send_signal(signal.SIGKILL)
    outputs = [process.communicate(timeout=300)[0] for process in (first, second)]
    assert second.returncode == 0, outputs[1]
    assert first.returncode in (0, -signal.SIGKILL), outputs[0]
    last = topology.tick(instant)
    output = last.communicate(timeout=300)[0]
    assert last.returncode == 0, output
    return killed


def people(topology: Topology, site: Site) -> None:
    for role, email, organisation in (
        ("admin", "panel@topology.example", "Expert panel"),
        ("entrepreneur", "ana@werkplaats.example", "Werkplaats Delfshaven"),
        ("buyer", "lotte@havenstad.example", "Havenstad Bank"),
        ("buyer", "sem@rotterdam.example", "Gemeente Rotterdam"),
        ("evaluator", "eva@toets.example", "Onafhankelijke Toets"),
    ):
        topology.flask(
            [
                "users",
                "create",
                "--role",
                role,
                "--email",
                email,
                "--name",
                email.split("@")[0],
                "--organisation",
                organisation,
            ],
            USER_PASSWORD=PASSWORD,
        )
        made = site.ok(
            "POST",
            "/api/v1/auth/tokens",
            json={"email": email, "password": PASSWORD, "name": "topology"},
        )
        site.tokens[email.split("@")[0]] = made["token"]
    for who, registry_id in (("ana", "41234567"), ("lotte", "24412345"), ("sem", "27331234")):
        me = site.ok("GET", "/api/v1/me", who)
        path = f"/api/v1/organisations/{me['organisation_id']}"
        legal = {"legal_name": f"{who} B.V.", "registry_id": registry_id, "address": "Rotterdam"}
        site.ok("PUT", path, who, json=legal)
        assert site.ok("POST", f"{path}/verify", "panel")["verified"] is True


def test_a_project_lives_through_nginx_pgbouncer_and_a_bucket_while_parts_are_killed(
    topology,
):
    site = Site(topology)
    people(topology, site)
    today = date.today()
    deadline, start = today + timedelta(days=40), today + timedelta(days=41)
    end = start + timedelta(days=365)

    # The project is listed (and the owner's payout account onboarded).
    project = site.ok(
        "POST",
        "/api/v1/projects",
        "ana",
        json={
            "title": "Werkplaats Delfshaven",
            "summary": "People into paid work.",
            "city": "Rotterdam",
            "theme": "work",
            "budget_cents": 6_000_000,
            "funding_deadline": deadline.isoformat(),
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "outcomes": [{"outcome_type": "EMP_BIJSTAND_TO_WORK", "target_quantity": 20}],
        },
    )
    pid = project["id"]
    site.ok("POST", f"/api/v1/projects/{pid}/submit", "ana")
    site.ok("POST", f"/api/v1/projects/{pid}/valuation", "panel", json={})
    listed = site.ok("POST", f"/api/v1/projects/{pid}/list", "panel")
    link = site.ok(
        "POST",
        "/api/v1/payouts/account",
        "ana",
        json={"return_url": f"{topology.base}/payouts"},
    )["onboarding_url"]
    httpx.get(link, timeout=30)
    site.ok("GET", "/api/v1/payouts/account", "ana")

    # Two buyers pledge past the threshold; app server A dies between them.
    first_tokens = listed["threshold_tokens"]
    key = {"Idempotency-Key": "topology-lotte-1"}
    body = {"tokens": first_tokens, "payment_method": "pm_card_visa"}
    first = site.ok("POST", f"/api/v1/projects/{pid}/pledges", "lotte", json=body, headers=key)
    topology.kill("app_a")
    topology.kill("scheduler_a")
    for _ in range(10):  # every request is answered, by B now
        assert site.call("GET", f"/api/v1/projects/{pid}").status_code == 200
    again = site.call("POST", f"/api/v1/projects/{pid}/pledges", "lotte", json=body, headers=key)
    assert (again.status_code, again.json()["id"]) == (201, first["id"])  # the same, replayed
    second = site.ok(
        "POST",
        f"/api/v1/projects/{pid}/pledges",
        "sem",
        json={"tokens": 100, "payment_method": "pm_card_visa"},
        headers={"Idempotency-Key": "topology-sem-1"},
    )
    assert site.ok("GET", f"/api/v1/projects/{pid}")["tokens_pledged"] == first_tokens + 100

    # Time passes: funding closes, the project starts (charged while a tick is killed),
    # and ends.
    ticks_at_once(topology, at(deadline + timedelta(days=1)))
    killed_charging = ticks_at_once(
        topology,
        at(start),
        kill_when="SELECT count(*) >= 1 FROM payments WHERE state = 'succeeded'",
    )
    ticks_at_once(topology, at(end + timedelta(days=1)))

    # The evaluator, accredited and assigned, records results with evidence in the bucket.
    evaluator = site.ok("GET", "/api/v1/me", "eva")
    site.ok(
        "POST",
        f"/api/v1/evaluators/{evaluator['id']}/accreditations",
        "panel",
        json={
            "body": "Raad voor Accreditatie",
            "reference": "RvA-T-2026-1",
            "themes": ["work"],
            "valid_from": today.isoformat(),
            "valid_until": (today + timedelta(days=3 * 365)).isoformat(),
        },
    )
    evaluation = site.ok(
        "POST", f"/api/v1/projects/{pid}/evaluator", "panel", json={"evaluator_id": evaluator["id"]}
    )
    eid = evaluation["id"]
    site.ok(
        "POST",
        f"/api/v1/evaluations/{eid}/declaration",
        "eva",
        json={"text": "I have no ties to the project, its organisation or its buyers."},
    )
    evidence = site.ok(
        "POST",
        f"/api/v1/evaluations/{eid}/evidence",
        "eva",
        files={"file": ("payroll.pdf", PDF, "application/pdf")},
    )
    outcome_id = site.ok("GET", f"/api/v1/projects/{pid}")["outcomes"][0]["id"]
    site.ok(
        "PUT",
        f"/api/v1/evaluations/{eid}/results",
        "eva",
        json={
            "results": [
                {
                    "outcome_id": outcome_id,
                    "verified_quantity": 14,
                    "evidence_note": "Payroll records checked against UWV data.",
                }
            ]
        },
    )
    site.ok("POST", f"/api/v1/evaluations/{eid}/submit", "eva")
    site.ok("POST", f"/api/v1/evaluations/{eid}/approve", "panel")

    # Settled the day after, one of two ticks killed once the refunds have begun; an
    # hour later reconciliation runs.
    settle = at(end + timedelta(days=2))
    killed_settling = ticks_at_once(
        topology,
        settle,
        kill_when="SELECT count(*) >= 1 FROM refunds WHERE state = 'succeeded'",
    )
    assert (killed_charging, killed_settling) == (True, True)  # each kill landed mid-run
    ticks_at_once(topology, settle + timedelta(hours=1, minutes=11))

    settled = site.ok("GET", f"/api/v1/projects/{pid}/settlement", "ana")
    assert settled["state"] == "settled"
    got = site.call("GET", f"/api/v1/files/{evidence['id']}", "eva")
    assert (got.status_code, got.content) == (200, PDF)
    objects = topology.s3.client().list_objects_v2(Bucket=topology.bucket)["Contents"]
    assert [o["Key"].startswith("evidence/") for o in objects] == [True]
    assert not (topology.instance / "evidence").exists()  # nothing on a server's own disk
    assert evidence["sha256"] == hashlib.sha256(PDF).hexdigest()

    # Nothing lost, nothing twice: the books against Stripe and against themselves.
    checker = create_app(
        config.testing_settings(
            topology.direct_url, topology.root / "checker", stripe_api_base=topology.stripe.url
        )
    )
    try:
        with checker.extensions["db"].session_factory() as session:
            pledges = session.scalars(select(Pledge).where(Pledge.project_id == pid)).all()
            assert sorted(p.id for p in pledges) == sorted([first["id"], second["id"]])
            assert {p.state for p in pledges} == {PledgeState.PAID}
            payments = session.scalars(
                select(Payment).where(Payment.state == PaymentState.SUCCEEDED)
            ).all()
            assert sorted(p.pledge_id for p in payments) == sorted(p.id for p in pledges)
            charged = [i for i in all_of(checker, "payment_intents") if i.status == "succeeded"]
            assert sorted(i.id for i in charged) == sorted(p.payment_intent_id for p in payments)
            refunds = session.scalars(select(Refund)).all()
            assert {r.state for r in refunds} == {MoneyState.SUCCEEDED}
            assert sorted(r.id for r in all_of(checker, "refunds")) == sorted(
                r.refund_id for r in refunds
            )
            transfers = session.scalars(select(Transfer)).all()
            assert transfers and {t.state for t in transfers} == {MoneyState.SUCCEEDED}
            assert sorted(t.id for t in all_of(checker, "transfers")) == sorted(
                t.transfer_id for t in transfers
            )
            serials = TokenBlock.last_serial - TokenBlock.first_serial + 1
            minted = session.scalar(
                select(func.coalesce(func.sum(serials), 0)).where(TokenBlock.project_id == pid)
            )
            assert minted == settled["tokens_minted"] > settled["buffer_tokens"] > 0  # its part
            entries = session.scalar(select(func.count()).select_from(JournalEntry))
            assert session.scalar(select(func.count()).where(AuditEvent.kind == "money")) == entries
            assert not session.scalar(
                select(func.count()).where(Notification.mail_state == MailState.SENDING)
            )
            run = reconcile(session, checker.extensions["stripe"], settle + timedelta(hours=2))
            assert run.differences == []
            assert run.checked >= len(payments) + len(refunds) + len(transfers)
    finally:
        checker.extensions["db"].engine.dispose()
