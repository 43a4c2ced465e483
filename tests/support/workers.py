"""Work done in separate processes by the concurrency tests (spawned: a fresh app each)."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

from config import testing_settings


def _app(database_url: str, instance_path: str, stripe_base: str):
    from marketplace import create_app

    return create_app(
        testing_settings(database_url, Path(instance_path), stripe_api_base=stripe_base)
    )


def pledge_worker(
    database_url: str,
    instance_path: str,
    stripe_base: str,
    project_id: int,
    buyers: list[tuple[str, str]],
    attempts: int,
    seed: int,
) -> list[tuple]:
    """Pledge ``attempts`` times with random sizes as random buyers; return what happened.

    ``buyers`` are (API token, saved payment method) pairs. Each result is
    (status, code, tokens).
    """
    app = _app(database_url, instance_path, stripe_base)
    client = app.test_client()
    chance = random.Random(seed)
    results = []
    for _ in range(attempts):
        token, method = chance.choice(buyers)
        tokens = chance.choice((1, 1, 2, 3, 5))
        response = client.post(
            f"/api/v1/projects/{project_id}/pledges",
            json={"tokens": tokens, "payment_method": method},
            headers={"Authorization": f"Bearer {token}"},
        )
        body = response.get_json(silent=True) or {}
        results.append((response.status_code, body.get("code", ""), tokens))
    app.extensions["db"].engine.dispose()
    return results


def tick_worker(database_url: str, instance_path: str, stripe_base: str, at: str) -> list:
    """Run every sweep once as of ``at``; return (name, ok, summary) per sweep."""
    from marketplace.core.sweeps import sweep_context
    from marketplace.scheduler import run_sweeps

    app = _app(database_url, instance_path, stripe_base)
    reports = run_sweeps(sweep_context(app), datetime.fromisoformat(at))
    app.extensions["db"].engine.dispose()
    return [(r.name, r.ok, r.summary) for r in reports]
