"""Benchmark: the marketplace page and GET /api/v1/projects at 1,000 and 100,000 projects.

For each database (a private PostgreSQL server started here, and SQLite) and
each size, it builds the schema with the migrations, seeds the projects (70%
listed, 1 to 3 outcome lines each, 500 organisations), then requests a mix of
listings (newest first, by city, theme, outcome type, text, stage, deadline
order, a deep page) and prints the median and p95 server time of each
endpoint. Server time is measured around the WSGI call, in process.

Aim (issue 4): p95 under 50 ms at 100,000 projects, and the 100,000 figure
within 1.5x of the 1,000 figure.

    .venv/bin/python -m bench.listing [--backends postgresql,sqlite] [--requests 300]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import flask_migrate
from sqlalchemy import insert, select, text

from config import testing_settings
from marketplace import create_app
from marketplace.accounts.models import Organisation, Role, User
from marketplace.projects.models import Project, ProjectState, Theme
from outcomes.catalogue import OutcomeType
from outcomes.commitments import OutcomeCommitment
from tests.support.postgres import PostgresServer, create_database, find_bindir

AIM_P95_MS = 50.0
AIM_GROWTH = 1.5
CITIES = [
    "Rotterdam",
    "Schiedam",
    "Vlaardingen",
    "Capelle aan den IJssel",
    "Dordrecht",
    "Delft",
    "Spijkenisse",
    "Barendrecht",
    "Ridderkerk",
    "Maassluis",
    "Zwijndrecht",
    "Gouda",
]
LISTED = [
    ProjectState.FUNDING,
    ProjectState.FUNDED,
    ProjectState.RUNNING,
    ProjectState.EVALUATING,
    ProjectState.SETTLED,
    ProjectState.UNFUNDED,
]
UNLISTED = [ProjectState.DRAFT, ProjectState.SUBMITTED, ProjectState.VALUED, ProjectState.REJECTED]
WORDS = [
    "werk",
    "buurt",
    "jongeren",
    "thuis",
    "herstel",
    "school",
    "groen",
    "zorg",
    "kans",
    "samen",
    "wijk",
    "talent",
]
# Summaries draw 40 words from 3,000 made-up ones of random letters (as varied in their
# letter triples as natural words are): a searched word is in about 1.3% of them.
_letters = random.Random(3000)
VOCABULARY = [
    "".join(_letters.choice("abcdefghijklmnoprstuvwz") for _ in range(_letters.randint(5, 10)))
    for _ in range(3000)
]
QUERIES = [
    "",
    "city=Schiedam",
    "theme=housing",
    "outcome_type=WELLBY",
    f"q={VOCABULARY[1234]}",
    "state=funding",
    "sort=deadline",
    "sort=title&page=9",
    "city=Rotterdam&theme=work",
    "sort=budget",
]


def seed(engine, n: int, rng: random.Random) -> None:
    now = datetime.now(UTC)
    today = date.today()
    with engine.begin() as conn:
        type_ids = list(conn.scalars(select(OutcomeType.id)))
        orgs = [
            {
                "name": f"Organisation {i}",
                "name_key": f"organisation {i}",
                "created_at": now,
                "verified_at": now,
            }
            for i in range(500)
        ]
        conn.execute(insert(Organisation), orgs)
        org_ids = list(conn.scalars(select(Organisation.id)))
        conn.execute(
            insert(User),
            [
                {
                    "email": f"user{i}@bench.example",
                    "name": f"User {i}",
                    "role": Role.ENTREPRENEUR,
                    "organisation_id": org_id,
                    "password_hash": "x",
                    "session_nonce": "x",
                    "is_active": True,
                    "created_at": now,
                    "email_verified_at": now,
                }
                for i, org_id in enumerate(org_ids)
            ],
        )
        user_of = dict(conn.execute(select(User.organisation_id, User.id)).all())
        batch = 5000
        for start in range(0, n, batch):
            rows = []
            for i in range(start, min(n, start + batch)):
                listed = rng.random() < 0.7
                state = rng.choice(LISTED if listed else UNLISTED)
                deadline = today + timedelta(days=rng.randint(-400, 200))
                org = rng.choice(org_ids)
                valued = listed or state is ProjectState.VALUED
                rows.append(
                    {
                        "organisation_id": org,
                        "created_by_id": user_of[org],
                        "title": f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {i}",
                        "summary": " ".join(rng.choice(VOCABULARY) for _ in range(40)),
                        "city": (city := rng.choice(CITIES)),
                        "city_key": city.casefold(),
                        "theme": rng.choice(list(Theme)),
                        "budget_cents": rng.randint(1_000_000, 50_000_000),
                        "premium_rate": Decimal("0.25"),
                        "funding_deadline": deadline,
                        "start_date": deadline + timedelta(days=10),
                        "end_date": deadline + timedelta(days=375),
                        "state": state,
                        "tokens_total": 2540 if valued else None,
                        "token_price_cents": 2953 if valued else None,
                        "threshold_tokens": 2032 if valued else None,
                        "tokens_pledged": rng.randint(0, 2540) if listed else 0,
                        "tokens_paid": 0,
                        "created_at": now,
                        "updated_at": now,
                        "listed_at": now - timedelta(minutes=i) if listed else None,
                    }
                )
            conn.execute(insert(Project), rows)
        project_ids = list(conn.scalars(select(Project.id)))
        lines = []
        for project_id in project_ids:
            for position, type_id in enumerate(rng.sample(type_ids, rng.randint(1, 3))):
                lines.append(
                    {
                        "project_id": project_id,
                        "position": position,
                        "outcome_type_id": type_id,
                        "target_quantity": rng.randint(1, 50),
                        "evidence_grade": "C",
                        "verified_quantity": None,
                    }
                )
        for start in range(0, len(lines), 20000):
            conn.execute(insert(OutcomeCommitment), lines[start : start + 20000])
    # The steady state autovacuum keeps a live database in: statistics and visibility map.
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()  # in autocommit: SQLAlchemy's BEGIN is not emitted here
        raw.driver_connection.execute("VACUUM")
        raw.driver_connection.execute("ANALYZE")
        raw.close()
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))


def measure(app, paths: list[str], requests: int) -> list[float]:
    client = app.test_client()
    for path in paths:  # warm up every query shape once
        assert client.get(path).status_code == 200, path
    times = []
    for i in range(requests):
        path = paths[i % len(paths)]
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, path
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def run(backend: str, url_for_size, sizes: list[int], requests: int) -> dict:
    results = {}
    for n in sizes:
        url = url_for_size(n)
        app = create_app(testing_settings(url, Path(tempfile.mkdtemp(prefix="bench-"))))
        with app.app_context():
            flask_migrate.upgrade()
        engine = app.extensions["db"].engine
        started = time.perf_counter()
        seed(engine, n, random.Random(n))
        seeded = time.perf_counter() - started
        for name, base in (
            ("marketplace page", "/projects"),
            ("GET /api/v1/projects", "/api/v1/projects"),
        ):
            paths = [f"{base}?{q}" if q else base for q in QUERIES]
            times = measure(app, paths, requests)
            results[(name, n)] = (statistics.median(times), p95(times))
            print(
                f"  {backend:<10} {name:<22} {n:>7,} projects: median "
                f"{results[(name, n)][0]:6.1f} ms, p95 {results[(name, n)][1]:6.1f} ms "
                f"(seeded in {seeded:.0f} s)"
            )
        engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"listing benchmark: {args.requests} requests per endpoint over {len(QUERIES)} query shapes"
    )
    verdicts = []
    for backend in args.backends.split(","):
        if backend == "postgresql":
            server = PostgresServer(find_bindir()).start()
            try:
                results = run(
                    backend,
                    lambda n, s=server: create_database(s.url(), f"bench_{n}"),
                    sizes,
                    args.requests,
                )
            finally:
                server.stop()
        else:
            folder = Path(tempfile.mkdtemp(prefix="bench-sqlite-"))
            results = run(
                backend,
                lambda n, f=folder: f"sqlite:///{f / f'bench_{n}.db'}",
                sizes,
                args.requests,
            )
        small, large = min(sizes), max(sizes)
        for name in ("marketplace page", "GET /api/v1/projects"):
            p95_large = results[(name, large)][1]
            growth = p95_large / results[(name, small)][1]
            ok = p95_large < AIM_P95_MS and growth <= AIM_GROWTH
            verdicts.append(ok)
            print(
                f"  {backend:<10} {name:<22} p95 at {large:,}: {p95_large:.1f} ms "
                f"(aim < {AIM_P95_MS:.0f}), {growth:.2f}x the {small:,} figure "
                f"(aim <= {AIM_GROWTH}) -> {'PASS' if ok else 'FAIL'}"
            )


if __name__ == "__main__":
    main()
