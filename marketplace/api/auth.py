"""Bearer-token authentication, role and scope checks for API views.

``authenticated(blp, *roles, scope=...)`` is the outermost decorator of a
view: it answers 401 before any input is used, 403 when the role or the
token's scope does not fit, and documents both (and the security
requirement) in the OpenAPI document. (A view that reads its caller with its
first read, ``first_read``, parses its body first; a 400 or 422 still gives way
to a 401 or 403.) A view needs the scope ``read`` for
GET, ``write`` otherwise, unless it names another (``money``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request
from flask_smorest import Blueprint

from marketplace.accounts.authorisation import (
    Caller,
    admitted,
    digest_of,
    live_api_token,
    live_caller,
    require_role,
    require_scope,
)
from marketplace.accounts.models import Role, Scope, User
from marketplace.core import autocommit
from marketplace.core.clock import now
from marketplace.core.errors import Unauthenticated
from marketplace.extensions import db

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
T = TypeVar("T")


def current_api_user() -> User:
    user = g.get("api_user")
    if user is None:
        raise Unauthenticated("Send an API token as 'Authorization: Bearer <token>'.")
    return user


def current_caller() -> Caller:
    """The caller of a view guarded with ``authenticated(..., caller=True)`` (or with
    ``first_read``: admitted now, by a read of its own, unless ``admit_reading`` was)."""
    pending = g.pop("api_pending", None)
    if pending is not None:
        roles, scope = pending
        return _admit(roles, scope, caller=True)  # type: ignore[return-value]
    caller = g.get("api_caller")
    if caller is None:
        raise Unauthenticated("Send an API token as 'Authorization: Bearer <token>'.")
    return caller


def admit_reading(read: Callable[[str], tuple[Any | None, T]]) -> tuple[Caller, T]:
    """In a view guarded with ``authenticated(..., first_read=True)``, before anything
    else: its first read with the caller's, in one round trip. ``read(digest)`` answers
    the row that admits the caller (``authorisation.caller_query``'s columns; None for no
    token of an active person) and what else it read, which the view gets once the caller
    is admitted as by the guard (401, 403 as ever)."""
    roles, scope = g.pop("api_pending")
    secret = _secret()
    autocommit.reads_apart(db.session)
    digest = digest_of(secret)
    row, found = read(digest) if digest is not None else (None, None)
    caller = _checked(admitted(db.session, row, now=now()), scope)
    if roles:
        require_role(caller, *roles)
    return caller, found  # type: ignore[return-value]  # found is read's when admitted


def _secret() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated("Send an API token as 'Authorization: Bearer <token>'.")
    return secret.strip()


NOT_LIVE = "The API token is not valid, has expired or has been revoked."


def _user_from_header(scope: Scope | None = None) -> User:
    token = live_api_token(db.session, _secret(), now=now())
    if token is None:
        raise Unauthenticated(NOT_LIVE)
    g.api_user = token.user  # known even when refused: the audit log names who it was
    require_scope(token, scope or _scope_of_method())
    return token.user


def _caller_from_header(scope: Scope | None) -> Caller:
    secret = _secret()
    autocommit.reads_apart(db.session)
    return _checked(live_caller(db.session, secret, now=now()), scope)


def _checked(caller: Caller | None, scope: Scope | None) -> Caller:
    if caller is None:
        raise Unauthenticated(NOT_LIVE)
    g.api_caller = caller  # known even when refused, as above
    require_scope(caller, scope or _scope_of_method())
    return caller


def _scope_of_method() -> Scope:
    return Scope.READ if request.method in {"GET", "HEAD"} else Scope.WRITE


def _admit(roles: tuple[Role, ...], scope: Scope | None, caller: bool = False) -> User | Caller:
    """A request to a guarded view: the caller's token, its scope and role, or a refusal.
    (Called per request; the decorators below only wrap the view and document it.)"""
    user = _caller_from_header(scope) if caller else _user_from_header(scope)
    if roles:
        require_role(user, *roles)
    return user


def _admitted_in_view(
    view: Callable, roles: tuple[Role, ...], scope: Scope | None, args: Any, kwargs: Any
) -> Any:
    """A view that admits its caller itself (``first_read``): anything it raised before
    doing so gives way to the caller's refusal; a view that returns without admitting
    has a bug, and nothing of its answer is sent."""
    g.api_pending = (roles, scope)
    try:
        answer = view(*args, **kwargs)
    except Exception:
        if g.pop("api_pending", None) is not None:
            _admit(roles, scope, caller=True)
        raise
    if g.pop("api_pending", None) is not None:
        raise RuntimeError("a view guarded with first_read returned without admitting")
    return answer


def _admit_anyone() -> None:
    """A request to a public view: anonymous without a header, else a valid token."""
    g.api_user = _user_from_header() if "Authorization" in request.headers else None


def authenticated(
    blp: Blueprint,
    *roles: Role,
    scope: Scope | None = None,
    caller: bool = False,
    first_read: bool = False,
) -> Callable:
    """Require a valid token with the scope of this request, and one of ``roles`` when given.

    With ``caller`` the view reads who calls with ``current_caller()`` (plain columns read
    in one round trip, for a hot path) instead of ``current_api_user()``. With
    ``first_read`` as well, the caller is read with the view's first read
    (``admit_reading``, or ``current_caller`` alone), one round trip fewer; whatever
    fails before (the body's validation) yields to the caller's refusal, so a request
    is answered 401 and 403 first, as any other."""

    # pragma: no mutate start
    # The wiring runs once, when the API is imported; mutation testing switches mutants
    # per call, after that, so it could never see a change here. The per-request check
    # is ``_admit`` (``_admitted_in_view``); the OpenAPI tests check what this documents.
    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            if first_read:
                return _admitted_in_view(view, roles, scope, args, kwargs)
            _admit(roles, scope, caller)
            return view(*args, **kwargs)

        documented = blp.doc(security=BEARER)(guarded)
        documented = blp.alt_response(401, response="UNAUTHORIZED")(documented)
        return blp.alt_response(403, response="FORBIDDEN")(documented)

    return decorator
    # pragma: no mutate end


def optionally_authenticated(blp: Blueprint) -> Callable:
    """A public view that shows more to a caller with a valid token.

    No ``Authorization`` header: anonymous. A header with a bad token: 401,
    so a broken integration is not silently served the public view.
    """

    # pragma: no mutate start
    # Wiring run at import, as in ``authenticated``; the per-request part is ``_admit_anyone``.
    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            _admit_anyone()
            return view(*args, **kwargs)

        documented = blp.doc(security=[{}, *BEARER])(guarded)
        documented = blp.alt_response(401, response="UNAUTHORIZED")(documented)
        return blp.alt_response(403, response="FORBIDDEN")(documented)

    return decorator
    # pragma: no mutate end


def api_user_or_none() -> User | None:
    return g.get("api_user")
