"""HTML error pages for web requests (API requests get problem+json instead)."""

from __future__ import annotations

from flask import render_template
from werkzeug.exceptions import HTTPException

from marketplace.core.errors import MarketplaceError


def render_error_page(error: HTTPException):
    status = error.code or 500
    message = error.description if status < 500 else None
    return render_template("error.html", status=status, title=error.name, message=message), status


def render_marketplace_error(error: MarketplaceError, status: int):
    return render_template(
        "error.html", status=status, title=error.title, message=error.message
    ), status
