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

from sqlalchemy import Boolean, Enum, ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from outcomes.db import Base, UTCDateTime


class Role(enum.StrEnum):
    ENTREPRENEUR = "entrepreneur"
    BUYER = "buyer"
    EVALUATOR = "evaluator"
    ADMIN = "admin"


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

    users: Mapped[list[User]] = relationship(back_populates="organisation")

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

    organisation: Mapped[Organisation] = relationship(back_populates="users", lazy="joined")

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles

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
        return [s.value for s in Scope if s.value in self.scopes.split()]

    def allows(self, scope: Scope) -> bool:
        return scope.value in self.scopes.split()

    def live_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


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
