"""`make stripe-check` runs against Stripe's test mode, which this machine cannot reach;
here the same script runs against the development Stripe, so it cannot rot unseen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts/stripe_check.py")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_stripe_check_journey_passes_against_the_development_stripe(stripe_server):
    result = run_check({"STRIPE_API_KEY": "sk_test_check", "STRIPE_API_BASE": stripe_server.url})

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert sum(line.startswith("  ok ") for line in lines) == 8, result.stdout
    assert "All checks passed." in lines


def test_the_stripe_check_refuses_a_live_or_missing_key():
    for key in ("", "sk_live_x", "rk_test_x"):
        result = run_check({"STRIPE_API_KEY": key})
        assert result.returncode == 2
        assert "needs a test-mode secret key" in result.stdout
