"""Typed settings read from environment variables over defaults.

Invariants:
- Every setting has one typed field here; nothing else in the code base reads the
  environment for configuration.
- A bad value is refused at start-up with the variable's name in the message.
- Production refuses to start with a generated or well-known secret key.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("development", "testing", "production")
KNOWN_WEAK_SECRETS = {"", "dev", "change-me", "changeme", "secret", "development"}


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    instance_path: Path = PROJECT_ROOT / "instance"
    database_url: str = ""
    secret_key: str = ""
    # Connections each app process keeps to PostgreSQL (and as many more under load).
    db_pool_size: int = 10
    # Off behind a pooler in transaction mode (PgBouncer before 1.21): a statement the
    # driver prepared on one server connection is unknown on the next.
    db_prepared_statements: bool = True
    # True when SECRET_KEY did not come from the environment (generated or built in).
    secret_key_is_default: bool = True
    stripe_api_key: str = ""
    stripe_api_base: str | None = None
    # With a publishable key the pledge form collects cards with Stripe.js Elements;
    # without one (test mode) it offers Stripe's test cards.
    stripe_publishable_key: str = ""
    stripe_webhook_secret: str = ""
    # Requests a second kept to at Stripe, "GLOBAL/ENDPOINT"; "" is Stripe's documented
    # figures for the key less a margin; "off" keeps to none (payments/pacing.py).
    stripe_rate_limit: str = ""
    platform_fee_rate: Decimal = Decimal("0.05")
    # The share of each settlement's minted tokens kept in the buffer pool, which
    # covers reversals after an upheld dispute (product.md "Concerns, disputes ...").
    buffer_rate: Decimal = Decimal("0.05")
    # What an organisation not yet verified may pledge in total (product.md).
    unverified_pledge_limit_cents: int = 1_000_000
    # Stripe's limit on one SEPA Direct Debit (10,000 EUR); larger pledges pay by transfer.
    sepa_limit_cents: int = 1_000_000
    # Whether projects may be submitted outside funding rounds (product.md "Funding rounds").
    rolling_submissions: bool = True
    # How long a buyer whose off-session charge failed may pay on-session.
    payment_grace_hours: int = 72
    # How often the reconciliation sweep compares the books with Stripe.
    reconcile_every_minutes: int = 60
    currency: str = "EUR"
    timezone: str = "Europe/Amsterdam"
    # The platform as a party to its receipts and credit notes (product.md).
    platform_legal_name: str = "Social Outcomes Marketplace B.V."
    platform_address: str = "Wilhelminakade 1, 3072 AP Rotterdam, Nederland"
    platform_registry_id: str = "KvK 00000000 (set PLATFORM_REGISTRY_ID)"
    platform_vat_id: str = ""
    session_cookie_secure: bool = False
    # Failed logins allowed per account (and, ten times as many, per address) in the window.
    login_max_failures: int = 10
    login_window_seconds: int = 60
    password_min_length: int = 10
    # Argon2id cost; the defaults are argon2-cffi's RFC 9106 "low memory" profile.
    argon2_time_cost: int = 3
    argon2_memory_cost_kib: int = 65536
    argon2_parallelism: int = 4
    # Evidence files and report attachments: a private folder (shared between hosts
    # when the app runs on several), and the largest file taken.
    evidence_dir: Path | None = None
    evidence_max_mb: int = 10
    # Where evidence files and attachments are kept: empty for ``evidence_path``, or
    # ``file:///folder``, or ``s3://bucket/prefix`` (a bucket several servers share; an
    # S3-compatible store other than Amazon's at ``storage_endpoint_url``).
    storage_url: str = ""
    storage_endpoint_url: str = ""
    # E-mail: without SMTP_HOST, messages are written to the log (and shown in the app).
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    mail_from: str = "Social Outcomes Marketplace <noreply@localhost>"
    # The address people reach the app at, for links in e-mails.
    public_url: str = "http://127.0.0.1:5000"
    # A signed-in person who does nothing for this long is signed out.
    session_idle_minutes: int = 30
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are believed
    # (0: none; the client address and the scheme are the connection's own).
    trusted_proxies: int = 0
    # Logs: "json" lines (production) or "text"; and the level.
    log_format: str = "text"
    log_level: str = "INFO"
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def evidence_path(self) -> Path:
        return self.evidence_dir or self.instance_path / "evidence"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_testing(self) -> bool:
        return self.env == "testing"

    def check(self) -> Settings:
        """Refuse settings that are unsafe or inconsistent; return self."""
        if self.env not in PROFILES:
            raise ConfigError(f"MARKETPLACE_ENV must be one of {', '.join(PROFILES)}")
        if self.is_production:
            if self.secret_key_is_default or self.secret_key in KNOWN_WEAK_SECRETS:
                raise ConfigError(
                    "SECRET_KEY must be set to a random value in production "
                    "(for example: python -c 'import secrets; print(secrets.token_hex(32))')"
                )
            if len(self.secret_key) < 32:
                raise ConfigError("SECRET_KEY must be at least 32 characters in production")
        if not Decimal(0) <= self.platform_fee_rate < Decimal(1):
            raise ConfigError("PLATFORM_FEE_RATE must be at least 0 and below 1")
        if not Decimal(0) <= self.buffer_rate < Decimal(1):
            raise ConfigError("BUFFER_RATE must be at least 0 and below 1")
        if self.unverified_pledge_limit_cents < 0:
            raise ConfigError("UNVERIFIED_PLEDGE_LIMIT_CENTS must be 0 or more")
        if self.sepa_limit_cents < 50:
            raise ConfigError("SEPA_LIMIT_CENTS must be at least 50")
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise ConfigError("CURRENCY must be a three-letter ISO 4217 code")
        if self.log_format not in ("json", "text"):
            raise ConfigError("LOG_FORMAT must be json or text")
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        return self


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs written the usual ways."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _int(environ: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


def _decimal(environ: Mapping[str, str], name: str, default: Decimal) -> Decimal:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{name} must be a decimal number, not {raw!r}") from None


def _timezone(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name) or default
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name} must be an IANA time zone such as Europe/Amsterdam") from None
    return value


def _instance_secret(instance_path: Path) -> str:
    """Read the secret key kept in the instance folder, creating it on first use."""
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from environment variables over the defaults."""
    env = os.environ if environ is None else environ
    profile = env.get("MARKETPLACE_ENV", "development")
    instance_path = Path(env.get("INSTANCE_PATH") or PROJECT_ROOT / "instance").resolve()
    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance_path / 'marketplace.db'}"
    secret = env.get("SECRET_KEY", "")
    secret_is_default = secret == ""
    if secret_is_default and profile != "production":
        secret = _instance_secret(instance_path)
    production = profile == "production"
    settings = Settings(
        env=profile,
        instance_path=instance_path,
        database_url=normalise_database_url(database_url),
        secret_key=secret,
        db_pool_size=_int(env, "DB_POOL_SIZE", 10),
        db_prepared_statements=_bool(env, "DB_PREPARED_STATEMENTS", True),
        secret_key_is_default=secret_is_default,
        stripe_api_key=env.get("STRIPE_API_KEY", ""),
        stripe_api_base=env.get("STRIPE_API_BASE") or None,
        stripe_publishable_key=env.get("STRIPE_PUBLISHABLE_KEY", ""),
        stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET", ""),
        stripe_rate_limit=env.get("STRIPE_RATE_LIMIT", ""),
        platform_fee_rate=_decimal(env, "PLATFORM_FEE_RATE", Decimal("0.05")),
        buffer_rate=_decimal(env, "BUFFER_RATE", Decimal("0.05")),
        unverified_pledge_limit_cents=_int(env, "UNVERIFIED_PLEDGE_LIMIT_CENTS", 1_000_000),
        sepa_limit_cents=_int(env, "SEPA_LIMIT_CENTS", 1_000_000),
        rolling_submissions=_bool(env, "ROLLING_SUBMISSIONS", True),
        payment_grace_hours=_int(env, "PAYMENT_GRACE_HOURS", 72),
        reconcile_every_minutes=_int(env, "RECONCILE_EVERY_MINUTES", 60),
        currency=(env.get("CURRENCY") or "EUR").upper(),
        platform_legal_name=env.get("PLATFORM_LEGAL_NAME") or Settings.platform_legal_name,
        platform_address=env.get("PLATFORM_ADDRESS") or Settings.platform_address,
        platform_registry_id=env.get("PLATFORM_REGISTRY_ID") or Settings.platform_registry_id,
        platform_vat_id=env.get("PLATFORM_VAT_ID", ""),
        timezone=_timezone(env, "TIMEZONE", "Europe/Amsterdam"),
        session_cookie_secure=_bool(env, "SESSION_COOKIE_SECURE", production),
        login_max_failures=_int(env, "LOGIN_MAX_FAILURES", 10),
        login_window_seconds=_int(env, "LOGIN_WINDOW_SECONDS", 60),
        argon2_time_cost=_int(env, "ARGON2_TIME_COST", 3),
        argon2_memory_cost_kib=_int(env, "ARGON2_MEMORY_COST_KIB", 65536, minimum=8),
        argon2_parallelism=_int(env, "ARGON2_PARALLELISM", 4),
        evidence_dir=Path(env["EVIDENCE_DIR"]).resolve() if env.get("EVIDENCE_DIR") else None,
        evidence_max_mb=_int(env, "EVIDENCE_MAX_MB", 10),
        storage_url=env.get("STORAGE_URL", "").strip(),
        storage_endpoint_url=env.get("STORAGE_ENDPOINT_URL", "").strip(),
        smtp_host=env.get("SMTP_HOST", ""),
        smtp_port=_int(env, "SMTP_PORT", 587),
        smtp_username=env.get("SMTP_USERNAME", ""),
        smtp_password=env.get("SMTP_PASSWORD", ""),
        smtp_starttls=_bool(env, "SMTP_STARTTLS", True),
        mail_from=env.get("MAIL_FROM") or Settings.mail_from,
        public_url=(env.get("PUBLIC_URL") or Settings.public_url).rstrip("/"),
        session_idle_minutes=_int(env, "SESSION_IDLE_MINUTES", 30),
        trusted_proxies=_int(env, "TRUSTED_PROXIES", 0, minimum=0),
        log_format=env.get("LOG_FORMAT") or ("json" if production else "text"),
        log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
    )
    return settings.check()


def testing_settings(database_url: str, instance_path: Path, **overrides: object) -> Settings:
    """The testing profile: a fixed secret and cheap password hashing."""
    base = Settings(
        env="testing",
        instance_path=instance_path,
        database_url=normalise_database_url(database_url),
        secret_key="testing-" + "x" * 32,
        secret_key_is_default=False,
        stripe_api_key="sk_test_marketplace",
        stripe_webhook_secret="whsec_test_marketplace",  # noqa: S106 - the test profile
        # The fake Stripe keeps no limit unless a test turns it on (and this with it).
        stripe_rate_limit="off",
        argon2_time_cost=1,
        argon2_memory_cost_kib=1024,
        argon2_parallelism=1,
    )
    return replace(base, **overrides).check()  # type: ignore[arg-type]  # overrides by name
