"""Typed application settings: environment variables over defaults, plus a testing profile."""

from config.settings import (
    PROJECT_ROOT,
    ConfigError,
    Settings,
    load_settings,
    normalise_database_url,
    testing_settings,
)

__all__ = [
    "PROJECT_ROOT",
    "ConfigError",
    "Settings",
    "load_settings",
    "normalise_database_url",
    "testing_settings",
]
