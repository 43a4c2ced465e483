"""The social-outcomes marketplace: the Flask app, projects, funding, payments,
ledger, tokens, registry, settlement, scheduler jobs, web pages, JSON API, CLI.

``flask --app marketplace ...`` finds ``create_app`` here.
"""

from marketplace.app import create_app

__all__ = ["create_app"]
