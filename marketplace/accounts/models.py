"""Organisations, users, API tokens and login attempts.

Invariants:
- A user belongs to exactly one organisation and has exactly one role.
- E-mail addresses are stored normalised (trimmed, lower case) and are unique;
  organisation names are unique ignoring case and surrounding space.
- Passwords are stored only as Argon2id hashes, API tokens only as SHA-256
  digests: the database never holds a usable secret.
- Revoking a token sets ``revoked_at``; token rows are never deleted, so an
  audit can always say which token acted.
"""

from __future__ import annotations

import enum
import secrets
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, Enum, ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from outcomes.db import Base, ExactDecimal, UTCDateTime


class Role(enum.StrEnum):
    ENTREPRENEUR = "entrepreneur"
    BUYER = "buyer"
    EVALUATOR = "evaluator"
    ADMIN = "admin"
    # A contracting authority: accepts suppliers' social-return obligations, signs off
    # the credits retirements earn toward them.
    AUTHORITY = "authority"


SELF_REGISTRATION_ROLES = (Role.ENTREPRENEUR, Role.BUYER)


def new_session_nonce() -> str:
    return secrets.token_hex(16)


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # casefolded name: uniqueness ignores case and spacing variants
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Shown by name as a token holder in the public registry (else "private holder").
    registry_public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The public profile, kept by the owner (product.md "People and roles").
    legal_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # A KvK number (8 digits) or another registry's id with its country.
    registry_id: Mapped[str] = mapped_column(String(40), default="", server_default="")
    address: Mapped[str] = mapped_column(String(300), default="", server_default="")
    vat_id: Mapped[str] = mapped_column(String(20), default="", server_default="")
    website: Mapped[str] = mapped_column(String(200), default="", server_default="")
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Verified by an admin against its registry entry (product.md "People and roles"):
    # until then it submits no project and pledges at most UNVERIFIED_PLEDGE_LIMIT_CENTS.
    # Who verified it is in the audit log ("organisation verified").
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A contracting authority's published conversion factor for social-return credits
    # (product.md "Social-return obligations"); None: not an authority.
    sroi_factor: Mapped[Decimal | None] = mapped_column(ExactDecimal(6, 4))

    users: Mapped[list[User]] = relationship(back_populates="organisation")

    @property
    def verified(self) -> bool:
        return self.verified_at is not None

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.name!r}>"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(
        Enum(
            Role,
            name="role",
            native_enum=False,
            length=20,
            create_constraint=True,
            values_callable=lambda roles: [r.value for r in roles],
        )
    )
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # Part of the login session's identity: changing it ends every session.
    session_nonce: Mapped[str] = mapped_column(String(32), default=new_session_nonce)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The language of the pages the person last chose or signed in with: e-mails
    # are written in it ("en" when unknown).
    language: Mapped[str | None] = mapped_column(String(5))
    # When the person opened the link sent to their address (None: not yet; they
    # may look around but not submit a project or pledge).
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The organisation's first person: invites and removes colleagues.
    is_owner: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Notice kinds the person does not want by e-mail (space-separated); the app
    # shows every notice whatever this says.
    email_off: Mapped[str] = mapped_column(String(1000), default="", server_default="")

    organisation: Mapped[Organisation] = relationship(back_populates="users", lazy="joined")

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    def wants_email(self, kind: str) -> bool:
        return kind not in self.email_off.split()

    # The protocol Flask-Login expects of a user object.
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        """The login session's identity; it stops matching when the nonce changes."""
        return f"{self.id}:{self.session_nonce}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


class Scope(enum.StrEnum):
    """What a token may do; a request needs the scope of its kind.

    ``read``: GET requests. ``write``: other changes (projects, reports,
    evaluations, the panel's decisions). ``money``: whatever moves money or
    tokens (pledge, pay, cancel a pledge, close funding, retire tokens).
    """

    READ = "read"
    WRITE = "write"
    MONEY = "money"


ALL_SCOPES = " ".join(s.value for s in Scope)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, shown so a person can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Space-separated Scope values; tokens made before scopes existed have them all.
    scopes: Mapped[str] = mapped_column(String(40), default=ALL_SCOPES, server_default=ALL_SCOPES)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def scope_list(self) -> list[str]:
        return scopes_listed(self.scopes)

    def allows(self, scope: Scope) -> bool:
        return grants(self.scopes, scope)

    def live_at(self, now: datetime) -> bool:
        return token_live(self.revoked_at, self.expires_at, now)


def scopes_listed(scopes: str) -> list[str]:
    """A token's scopes (space-separated) as a list, in Scope's order."""
    return [s.value for s in Scope if s.value in scopes.split()]


def grants(scopes: str, scope: Scope) -> bool:
    return scope.value in scopes.split()


def token_live(revoked_at: datetime | None, expires_at: datetime | None, now: datetime) -> bool:
    """Neither revoked nor expired at ``now``."""
    return revoked_at is None and (expires_at is None or now < expires_at)


class LoginAttempt(Base):
    """One try to log in, kept for throttling; purged by a scheduler sweep."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index(None, "email", "attempted_at"),
        Index(None, "remote_addr", "attempted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    remote_addr: Mapped[str] = mapped_column(String(45))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    succeeded: Mapped[bool] = mapped_column(Boolean)


class LinkPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose, not a secret
    CHANGE_EMAIL = "change_email"
    INVITATION = "invitation"


class AccountLink(Base):
    """A single-use link e-mailed to an address: verify it, reset a password, confirm
    a new address, or join an organisation. Only the SHA-256 digest of its secret is
    kept; it is spent by one conditional update (``used_at IS NULL``), so a link
    opened twice at once acts once."""

    __tablename__ = "account_links"
    __table_args__ = (Index(None, "purpose", "email", "used_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[LinkPurpose] = mapped_column(
        Enum(
            LinkPurpose,
            name="link_purpose",
            native_enum=False,
            length=20,
            create_constraint=True,
            values_callable=lambda kinds: [k.value for k in kinds],
        )
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    # The person it is for (None for an invitation: they have no account yet).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # An invitation's organisation and who sent it.
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def open_at(self, now: datetime) -> bool:
        return self.used_at is None and now < self.expires_at
