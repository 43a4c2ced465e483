"""What the deployment tests share: the virtual environment's programs, and the
environment of a production process (settings from variables only)."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def production_env(database_url: str, stripe_base: str, instance: Path, **extra: str) -> dict:
    """The variables a production app or scheduler process runs with, plus ``extra``."""
    return {
        **os.environ,
        "MARKETPLACE_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(instance),
        "STRIPE_API_KEY": "sk_test_deploy",
        "STRIPE_API_BASE": stripe_base,
        "LOG_FORMAT": "json",
        **extra,
    }
