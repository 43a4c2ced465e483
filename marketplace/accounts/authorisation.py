"""Who may do what: API tokens and their scopes, roles, and acting for an organisation.

Every refusal on the grounds of *who* asks goes through these helpers (a refusal
on the grounds of *state* belongs to the state machine). Each raises Forbidden
(403) or answers a plain yes or no for a page that only hides a button; none
reads the request, so the domain and the web and API edges share them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import ApiToken, Organisation, Role, Scope, User
from marketplace.accounts.services import API_TOKEN_PREFIX, token_digest
from outcomes.errors import Forbidden

# A token's last use is written at most this often (not on every request).
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)
LONGEST_TOKEN = 200


class EmailUnverified(Forbidden):
    code = "email_unverified"
    title = "Confirm your e-mail address first"


def require_verified_email(user: User) -> None:
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


def live_api_token(session: Session, secret: str, *, now: datetime) -> ApiToken | None:
    """The token, when it is live (not revoked, not expired) and its user active; else None."""
    if not secret.startswith(API_TOKEN_PREFIX) or len(secret) > LONGEST_TOKEN:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(secret)))
    if token is None or not token.live_at(now) or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL:
        token.last_used_at = now
    return token


def require_scope(token: ApiToken, scope: Scope) -> None:
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


def require_role(user: User, *roles: Role) -> None:
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
