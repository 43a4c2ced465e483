"""Account use cases: register, create staff users, log in, API tokens.

Every function takes the session and ``now`` from its caller and only flushes;
the caller (a request, a CLI command) commits. Each documents what it raises.

Invariants:
- No user exists without an organisation, a valid role and a policy-compliant
  password hash; a refused registration writes nothing.
- Self-registration creates entrepreneurs and buyers only.
- After ``max_failures`` failed logins for one e-mail address within the window
  (or ten times as many from one address), further attempts are refused with
  ``RateLimited`` before the password is even checked.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.accounts.models import (
    SELF_REGISTRATION_ROLES,
    ApiToken,
    LoginAttempt,
    Organisation,
    Role,
    Scope,
    User,
)
from marketplace.accounts.names import name_key
from marketplace.accounts.passwords import PasswordHasher, PasswordPolicy
from marketplace.core.errors import (
    Conflict,
    NotFound,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from outcomes.db import affected

API_TOKEN_PREFIX = "som_"  # noqa: S105 - a public marker, not a secret


@dataclass(frozen=True)
class LoginThrottle:
    """How many failed log-ins are let through, and in which window.

    - one account from one address: ``max_failures`` per ``window``;
    - one account from addresses it has never signed in from: ``max_failures * 5``
      per ``window * 60`` (slower, for guessing from many places) - so an attacker
      elsewhere cannot lock the person out of the addresses they use;
    - one address, over all accounts: ``max_failures * 10`` per ``window``.
    """

    max_failures: int = 10
    window: timedelta = timedelta(seconds=60)
    # An address the account signed in from within this long is the person's own.
    known_for: timedelta = timedelta(days=90)

    @property
    def max_failures_per_address(self) -> int:
        return self.max_failures * 10

    @property
    def max_failures_per_account(self) -> int:
        return self.max_failures * 5

    @property
    def account_window(self) -> timedelta:
        return self.window * 60


@dataclass(frozen=True)
class AccountRules:
    """The account settings a service needs, built once by the application."""

    hasher: PasswordHasher
    policy: PasswordPolicy
    throttle: LoginThrottle


@dataclass(frozen=True)
class NewUser:
    email: str
    password: str
    name: str
    role: Role
    organisation: str


def normalise_email(email: str) -> str:
    return email.strip().lower()


def organisation_key(name: str) -> str:
    """The name's key for uniqueness: look-alike names share it (``accounts.names``)."""
    return name_key(name)


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"
    title = "The e-mail address or password is not correct"

    def __init__(self, *, warning: FailureWarning | None = None) -> None:
        super().__init__()
        # Many failures on a real account: the edge tells its person (a notice).
        self.warning = warning


def _check_password(rules: AccountRules, new: NewUser) -> None:
    problems = rules.policy.problems(new.password, email=new.email)
    if problems:
        raise ValidationFailed(errors={"password": problems})


def _find_organisation(session: Session, name: str) -> Organisation | None:
    return session.scalar(
        select(Organisation).where(Organisation.name_key == organisation_key(name))
    )


def _email_taken(session: Session, email: str) -> bool:
    return session.scalar(select(User.id).where(User.email == email)) is not None


def _email_taken_error() -> Conflict:
    return Conflict(
        "An account with this e-mail address already exists.",
        code="email_taken",
        errors={"email": ["An account with this e-mail address already exists."]},
    )


def _organisation_taken_error() -> Conflict:
    return Conflict(
        "An organisation with this name is already registered; ask its members to invite you.",
        code="organisation_taken",
        errors={"organisation": ["An organisation with this name is already registered."]},
    )


def _insert_user(
    session: Session,
    rules: AccountRules,
    new: NewUser,
    organisation: Organisation,
    now: datetime,
    *,
    owner: bool = False,
    verified: bool = False,
) -> User:
    user = User(
        email=normalise_email(new.email),
        name=new.name.strip(),
        role=new.role,
        organisation=organisation,
        password_hash=rules.hasher.hash(new.password),
        created_at=now,
        is_owner=owner,
        email_verified_at=now if verified else None,
    )
    session.add(user)
    return user


def register(session: Session, rules: AccountRules, new: NewUser, *, now: datetime) -> User:
    """Create an entrepreneur or buyer with a new organisation of its own.

    Raises ValidationFailed (role not open to registration, weak password) and
    Conflict ``email_taken`` or ``organisation_taken``.
    """
    if new.role not in SELF_REGISTRATION_ROLES:
        raise ValidationFailed(errors={"role": ["Choose entrepreneur or buyer."]})
    _check_password(rules, new)
    email = normalise_email(new.email)
    if _email_taken(session, email):
        raise _email_taken_error()
    if _find_organisation(session, new.organisation) is not None:
        raise _organisation_taken_error()
    try:
        with session.begin_nested():
            organisation = Organisation(
                name=" ".join(new.organisation.split()),
                name_key=organisation_key(new.organisation),
                created_at=now,
            )
            session.add(organisation)
            user = _insert_user(session, rules, new, organisation, now, owner=True)
            session.flush()
    except IntegrityError:
        # A concurrent registration won the race for the e-mail or the name.
        if _email_taken(session, email):
            raise _email_taken_error() from None
        raise _organisation_taken_error() from None
    return user


def create_user(session: Session, rules: AccountRules, new: NewUser, *, now: datetime) -> User:
    """Create a user of any role, joining the named organisation or creating it.

    For operators (CLI and admins), who may create admins and evaluators.
    Raises ValidationFailed (weak password) and Conflict ``email_taken``.
    """
    _check_password(rules, new)
    email = normalise_email(new.email)
    if _email_taken(session, email):
        raise _email_taken_error()
    organisation = _find_organisation(session, new.organisation)
    first = organisation is None
    if organisation is None:
        organisation = Organisation(
            name=" ".join(new.organisation.split()),
            name_key=organisation_key(new.organisation),
            created_at=now,
        )
        session.add(organisation)
    if new.role is Role.AUTHORITY and organisation.sroi_factor is None:
        # A contracting authority credits social return at face value until it
        # publishes another factor.
        organisation.sroi_factor = Decimal(1)
    # An operator vouches for the address of an account they make.
    user = _insert_user(session, rules, new, organisation, now, owner=first, verified=True)
    session.flush()
    return user


def _failures_since(session: Session, since: datetime, *conditions: Any) -> list[datetime]:
    rows = session.scalars(
        select(LoginAttempt.attempted_at)
        .where(LoginAttempt.attempted_at > since, LoginAttempt.succeeded.is_(False), *conditions)
        .order_by(LoginAttempt.attempted_at)
    )
    return list(rows)


def _last_success(session: Session, *conditions: Any) -> datetime | None:
    return session.scalar(
        select(func.max(LoginAttempt.attempted_at)).where(
            LoginAttempt.succeeded.is_(True), *conditions
        )
    )


def _check_throttle(
    session: Session, throttle: LoginThrottle, email: str, remote_addr: str, now: datetime
) -> None:
    pair = (LoginAttempt.email == email, LoginAttempt.remote_addr == remote_addr)
    window_start = now - throttle.window
    last_success = _last_success(session, *pair)
    since = max(window_start, last_success) if last_success else window_start
    limits = [
        (_failures_since(session, since, *pair), throttle.max_failures, throttle.window),
        (
            _failures_since(session, window_start, LoginAttempt.remote_addr == remote_addr),
            throttle.max_failures_per_address,
            throttle.window,
        ),
    ]
    if last_success is None or last_success < now - throttle.known_for:
        # An address this account does not know: the slower limit over all addresses.
        account_since = now - throttle.account_window
        since_success = _last_success(session, LoginAttempt.email == email)
        if since_success and since_success > account_since:
            account_since = since_success
        limits.append(
            (
                _failures_since(session, account_since, LoginAttempt.email == email),
                throttle.max_failures_per_account,
                throttle.account_window,
            )
        )
    for failures, limit, window in limits:
        if len(failures) >= limit:
            # The limit lifts once enough of these failures leave the window.
            lifts_at = failures[len(failures) - limit] + window
            wait = math.ceil((lifts_at - now).total_seconds())
            raise RateLimited(
                "Too many failed log-in attempts. Wait a minute and try again.",
                retry_after=wait,
            )


@dataclass(frozen=True)
class FailureWarning:
    """The person behind an account that sees many failed log-ins (to be told)."""

    user_id: int
    organisation_id: int
    failures: int


def _warning(
    session: Session, throttle: LoginThrottle, user: User, email: str, now: datetime
) -> FailureWarning | None:
    failures = _failures_since(session, now - throttle.account_window, LoginAttempt.email == email)
    if len(failures) < throttle.max_failures:
        return None
    return FailureWarning(user.id, user.organisation_id, len(failures))


def authenticate(
    session: Session,
    rules: AccountRules,
    email: str,
    password: str,
    *,
    remote_addr: str,
    now: datetime,
) -> User:
    """Check credentials and record the attempt.

    The attempt row is flushed even when this raises InvalidCredentials: the
    caller commits it so the throttle sees it. Raises RateLimited before any
    check when the account or address is throttled.
    """
    email = normalise_email(email)
    remote_addr = (remote_addr or "unknown")[:45]
    _check_throttle(session, rules.throttle, email, remote_addr, now)
    user = session.scalar(select(User).where(User.email == email))
    ok = rules.hasher.verify(user.password_hash if user else None, password)
    ok = ok and user is not None and user.is_active
    session.add(LoginAttempt(email=email, remote_addr=remote_addr, attempted_at=now, succeeded=ok))
    session.flush()
    if not ok or user is None:
        warning = _warning(session, rules.throttle, user, email, now) if user else None
        raise InvalidCredentials(warning=warning)
    if rules.hasher.needs_rehash(user.password_hash):
        user.password_hash = rules.hasher.hash(password)
    user.last_login_at = now
    return user


def token_digest(secret: str) -> str:
    """How a token is stored: its SHA-256 (tokens are random, so no slow hash is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_api_token(
    session: Session,
    user: User,
    name: str,
    *,
    now: datetime,
    scopes: Iterable[Scope] = tuple(Scope),
    expires_in_days: int | None = None,
) -> tuple[ApiToken, str]:
    """Create an API token; the secret is returned once and stored only hashed.

    ``scopes`` limit what it may do (all of them unless given); with
    ``expires_in_days`` it stops working that many days from ``now``.
    """
    chosen = {Scope(s) for s in scopes}
    if not chosen:
        raise ValidationFailed(errors={"scopes": ["Choose at least one scope."]})
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name.strip() or "API token",
        token_hash=token_digest(secret),
        prefix=secret[: len(API_TOKEN_PREFIX) + 4],
        created_at=now,
        scopes=" ".join(s.value for s in Scope if s in chosen),
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    session.add(token)
    session.flush()
    return token, secret


def list_api_tokens(session: Session, user: User) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
        )
    )


def revoke_api_token(session: Session, user: User, token_id: int, *, now: datetime) -> ApiToken:
    """Revoke one of the user's own tokens; revoking twice is harmless.

    Raises NotFound for a token that is not the user's.
    """
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound("No such API token.")
    if token.revoked_at is None:
        token.revoked_at = now
    return token


def list_users(session: Session, *, page: int, per_page: int) -> tuple[list[User], int]:
    total = session.scalar(select(func.count(User.id))) or 0
    users = session.scalars(
        select(User).order_by(User.id).offset((page - 1) * per_page).limit(per_page)
    )
    return list(users), total


LOGIN_ATTEMPT_RETENTION = timedelta(days=1)


def purge_login_attempts(session: Session, now: datetime) -> str:
    """Delete log-in attempts older than the retention period (a scheduler sweep)."""
    result = session.execute(
        delete(LoginAttempt).where(LoginAttempt.attempted_at < now - LOGIN_ATTEMPT_RETENTION)
    )
    return f"deleted {affected(result)} old log-in attempts"
