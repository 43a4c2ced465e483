"""Bearer-token authentication and role checks for API views.

``authenticated(blp, *roles)`` is the outermost decorator of a view: it
answers 401 before any input is read, 403 when the role does not fit, and
documents both (and the security requirement) in the OpenAPI document.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import g, request
from flask_smorest import Blueprint

from marketplace.accounts.models import Role, User
from marketplace.accounts.services import require_role, user_for_api_token
from marketplace.core.clock import now
from marketplace.core.errors import Unauthenticated
from marketplace.extensions import db

BEARER = [{"bearerAuth": []}]


def current_api_user() -> User:
    user = g.get("api_user")
    if user is None:
        raise Unauthenticated("Send an API token as 'Authorization: Bearer <token>'.")
    return user


def _user_from_header() -> User:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated("Send an API token as 'Authorization: Bearer <token>'.")
    user = user_for_api_token(db.session, secret.strip(), now=now())
    if user is None:
        raise Unauthenticated("The API token is not valid or has been revoked.")
    return user


def authenticated(blp: Blueprint, *roles: Role) -> Callable:
    """Require a valid token, and one of ``roles`` when given."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            user = _user_from_header()
            g.api_user = user  # known even when refused: the audit log names who it was
            if roles:
                require_role(user, *roles)
            return view(*args, **kwargs)

        documented = blp.doc(security=BEARER)(guarded)
        documented = blp.alt_response(401, response="UNAUTHORIZED")(documented)
        if roles:
            documented = blp.alt_response(403, response="FORBIDDEN")(documented)
        return documented

    return decorator


def optionally_authenticated(blp: Blueprint) -> Callable:
    """A public view that shows more to a caller with a valid token.

    No ``Authorization`` header: anonymous. A header with a bad token: 401,
    so a broken integration is not silently served the public view.
    """

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            g.api_user = _user_from_header() if "Authorization" in request.headers else None
            return view(*args, **kwargs)

        documented = blp.doc(security=[{}, *BEARER])(guarded)
        return blp.alt_response(401, response="UNAUTHORIZED")(documented)

    return decorator


def api_user_or_none() -> User | None:
    return g.get("api_user")
