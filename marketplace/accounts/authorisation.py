"""Who may do what: API tokens and their scopes, roles, and acting for an organisation.

Every refusal on the grounds of *who* asks goes through these helpers (a refusal
on the grounds of *state* belongs to the state machine). Each raises Forbidden
(403) or answers a plain yes or no for a page that only hides a button; none
reads the request, so the domain and the web and API edges share them.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import Session

from marketplace.accounts.models import (
    ApiToken,
    Organisation,
    Role,
    Scope,
    User,
    grants,
    scopes_listed,
    token_live,
)
from marketplace.accounts.services import API_TOKEN_PREFIX, token_digest
from marketplace.core.hot import Hot
from outcomes.errors import Forbidden

# A token's last use is written at most this often (not on every request).
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)
LONGEST_TOKEN = 200


class EmailUnverified(Forbidden):
    code = "email_unverified"
    title = "Confirm your e-mail address first"


def require_verified_email(user: User | Caller) -> None:
    """Raises EmailUnverified for a person who has not opened their verification link
    (they may look around, not submit a project or pledge)."""
    if not user.email_verified:
        raise EmailUnverified(
            "Confirm your e-mail address first: open the link we sent to %(email)s.",
            params={"email": user.email},
        )


class InsufficientScope(Forbidden):
    code = "insufficient_scope"
    title = "The API token does not have the scope this needs"


def _well_formed(secret: str) -> bool:
    return secret.startswith(API_TOKEN_PREFIX) and len(secret) <= LONGEST_TOKEN


def _stale(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or now - last_used_at > TOKEN_TOUCH_INTERVAL


def live_api_token(session: Session, secret: str, *, now: datetime) -> ApiToken | None:
    """The token, when it is live (not revoked, not expired) and its user active; else None."""
    if not _well_formed(secret):
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(secret)))
    if token is None or not token.live_at(now) or not token.user.is_active:
        return None
    if _stale(token.last_used_at, now):
        token.last_used_at = now
    return token


@dataclass(frozen=True)
class Caller:
    """The person behind a live API token, as the columns a hot path authorises with (a
    pledge's: no ORM object is loaded for it), and the scopes the token grants."""

    id: int
    email: str
    role: Role
    organisation_id: int
    email_verified_at: datetime | None
    scopes: str

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def scope_list(self) -> list[str]:
        return scopes_listed(self.scopes)

    def allows(self, scope: Scope) -> bool:
        return grants(self.scopes, scope)


def caller_query(digest: Any) -> Select:
    """The columns a caller is admitted with, of the active person whose token has this
    digest (a value, or a bind parameter): the person's, then the token's (CALLER)."""
    return (
        select(
            User.id,
            User.email,
            User.role,
            User.organisation_id,
            User.email_verified_at,
            ApiToken.scopes,
            ApiToken.id.label("token_id"),
            ApiToken.revoked_at,
            ApiToken.expires_at,
            ApiToken.last_used_at,
        )
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == digest, User.is_active.is_(True))
    )


# The names of caller_query's columns, in its order (a row of them admits a caller).
CALLER = tuple(caller_query(None).selected_columns.keys())
CallerRow = namedtuple("CallerRow", CALLER)  # type: ignore[misc]

_CALLER = Hot(lambda: caller_query(bindparam("digest")))


def digest_of(secret: str) -> str | None:
    """The digest a token is looked up by; None for a secret no token can have."""
    return token_digest(secret) if _well_formed(secret) else None


def live_caller(session: Session, secret: str, *, now: datetime) -> Caller | None:
    """``live_api_token`` in one read of plain columns: the caller, or None."""
    digest = digest_of(secret)
    if digest is None:
        return None
    return admitted(session, _CALLER.first(session, {"digest": digest}), now=now)


def admitted(session: Session, row: Any | None, *, now: datetime) -> Caller | None:
    """The caller of a row of ``caller_query`` (read alone or with a view's first read),
    when its token is live (its last use written at most once a minute); else None."""
    if row is None or not token_live(row.revoked_at, row.expires_at, now):
        return None
    if _stale(row.last_used_at, now):
        session.execute(
            update(ApiToken).where(ApiToken.id == row.token_id).values(last_used_at=now)
        )
    return Caller(*row[:6])


def require_scope(token: ApiToken | Caller, scope: Scope) -> None:
    """Raises InsufficientScope unless the token was given ``scope``."""
    if not token.allows(scope):
        raise InsufficientScope(
            "This needs an API token with the scope '%(scope)s'; this one has: %(scopes)s.",
            params={"scope": scope.value, "scopes": ", ".join(token.scope_list)},
        )


class OrganisationUnverified(Forbidden):
    code = "organisation_unverified"
    title = "Your organisation is not verified yet"


def require_verified_organisation(organisation: Organisation) -> None:
    """Raises OrganisationUnverified until an admin verified the organisation."""
    if organisation.verified_at is None:
        raise OrganisationUnverified(
            "An administrator verifies %(name)s against its registry entry first; "
            "complete its legal details on the organisation page.",
            params={"name": organisation.name},
        )


def require_role(user: User | Caller, *roles: Role) -> None:
    """Raises Forbidden unless the user has one of ``roles``."""
    if not user.has_role(*roles):
        raise Forbidden(
            "This needs the role %(roles)s.",
            params={"roles": " / ".join(r.value for r in roles)},
        )


def acts_for(user: User | None, organisation_id: int | None) -> bool:
    """Whether ``user`` is an entrepreneur of that (project-owning) organisation."""
    return (
        user is not None
        and user.role is Role.ENTREPRENEUR
        and organisation_id is not None
        and user.organisation_id == organisation_id
    )


def require_acting_for(user: User, organisation_id: int, refusal: str) -> None:
    """Raises Forbidden(``refusal``) unless ``user`` acts for that organisation."""
    if not acts_for(user, organisation_id):
        raise Forbidden(refusal)


def require_member_or_admin(user: User, organisation_id: int, refusal: str) -> None:
    """Raises Forbidden(``refusal``) unless ``user`` belongs to the organisation or is an admin."""
    if user.role is not Role.ADMIN and user.organisation_id != organisation_id:
        raise Forbidden(refusal)
