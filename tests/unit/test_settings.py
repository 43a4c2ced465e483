"""Settings come from the environment over defaults, and unsafe ones are refused."""

from decimal import Decimal

import pytest

from config import ConfigError, load_settings, normalise_database_url
from marketplace import create_app


def env(tmp_path, **values):
    return {"INSTANCE_PATH": str(tmp_path), **values}


def test_defaults_give_a_local_sqlite_database_in_the_instance_folder(tmp_path):
    settings = load_settings(env(tmp_path))

    assert settings.env == "development"
    assert settings.database_url == f"sqlite:///{tmp_path / 'marketplace.db'}"
    assert settings.platform_fee_rate == Decimal("0.05")
    assert settings.currency == "EUR"
    assert settings.timezone == "Europe/Amsterdam"


def test_an_unset_secret_key_is_generated_once_and_kept(tmp_path):
    first = load_settings(env(tmp_path)).secret_key
    second = load_settings(env(tmp_path)).secret_key

    assert len(first) == 64
    assert first == second
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_environment_variables_override_defaults(tmp_path):
    settings = load_settings(
        env(
            tmp_path,
            DATABASE_URL="postgres://u:p@db.internal/som",
            SECRET_KEY="k" * 40,
            STRIPE_API_KEY="sk_test_123",
            STRIPE_API_BASE="http://127.0.0.1:8420",
            STRIPE_WEBHOOK_SECRET="whsec_x",
            PLATFORM_FEE_RATE="0.04",
            CURRENCY="usd",
        )
    )

    assert settings.database_url == "postgresql+psycopg://u:p@db.internal/som"
    assert settings.secret_key == "k" * 40
    assert not settings.secret_key_is_default
    assert (settings.stripe_api_key, settings.stripe_api_base) == (
        "sk_test_123",
        "http://127.0.0.1:8420",
    )
    assert settings.stripe_webhook_secret == "whsec_x"
    assert settings.platform_fee_rate == Decimal("0.04")
    assert settings.currency == "USD"


@pytest.mark.parametrize("secret", [None, "", "change-me", "short-but-set"])
def test_production_refuses_to_start_without_a_real_secret(tmp_path, secret):
    values = env(tmp_path, MARKETPLACE_ENV="production")
    if secret is not None:
        values["SECRET_KEY"] = secret

    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings(values)


def test_production_starts_with_a_real_secret_and_secure_cookies(tmp_path):
    settings = load_settings(
        env(
            tmp_path,
            MARKETPLACE_ENV="production",
            SECRET_KEY="s" * 64,
            DATABASE_URL="sqlite:///:memory:",
        )
    )

    app = create_app(settings)

    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert not (tmp_path / "secret_key").exists()


def test_create_app_refuses_a_production_profile_with_the_default_secret(tmp_path):
    from dataclasses import replace

    unsafe = replace(load_settings(env(tmp_path)), env="production")

    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app(unsafe)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PLATFORM_FEE_RATE", "five percent"),
        ("PLATFORM_FEE_RATE", "1.5"),
        ("CURRENCY", "EURO"),
        ("TIMEZONE", "Mars/Olympus"),
        ("SESSION_COOKIE_SECURE", "maybe"),
        ("LOGIN_MAX_FAILURES", "0"),
        ("LOGIN_WINDOW_SECONDS", "a minute"),
        ("MARKETPLACE_ENV", "staging"),
    ],
)
def test_a_malformed_setting_is_refused_by_name(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings(env(tmp_path, **{name: value}))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://a/b", "postgresql+psycopg://a/b"),
        ("postgresql://a/b", "postgresql+psycopg://a/b"),
        ("postgresql+psycopg://a/b", "postgresql+psycopg://a/b"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_urls_use_psycopg_3(url, expected):
    assert normalise_database_url(url) == expected
