"""HTML error pages for web requests (API requests get problem+json instead)."""

from __future__ import annotations

from flask import render_template
from flask_babel import gettext
from werkzeug.exceptions import HTTPException

from marketplace.core.errors import MarketplaceError


def N_(text: str) -> str:
    return text


# The statuses a person meets, in their language (werkzeug's names are English).
HTTP_TEXTS = {
    400: (N_("Bad request"), N_("The request could not be read.")),
    403: (N_("Not allowed"), N_("You may not do this.")),
    404: (N_("Not found"), N_("There is nothing at this address.")),
    405: (N_("Not possible here"), N_("This address does not take this kind of request.")),
    413: (N_("Too large"), N_("What was sent is too large.")),
    429: (N_("Too many requests"), N_("Please wait a moment and try again.")),
}


def render_error_page(error: HTTPException):
    status = error.code or 500
    title, default = HTTP_TEXTS.get(status, (error.name, error.description))
    own = error.description != type(error).description  # a description given when raised
    message = None
    if status < 500:
        message = gettext(error.description or "") if own else gettext(default or "")
    return render_template(
        "error.html", status=status, title=gettext(title), message=message
    ), status


def render_marketplace_error(error: MarketplaceError, status: int):
    return render_template(
        "error.html", status=status, title=error.title, message=error.message
    ), status
