"""Accounts: organisations, users and their roles, passwords, API tokens, log-in."""

from flask import current_app

from marketplace.accounts.services import AccountRules


def account_rules() -> AccountRules:
    """The running application's password hasher, policy and log-in throttle."""
    return current_app.extensions["account_rules"]
