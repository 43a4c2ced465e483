"""Password hashing with Argon2id and the password policy.

Invariants:
- Hashes are Argon2id with the configured cost; a hash made with a weaker cost
  is upgraded at the next successful login.
- Checking a password against an unknown account costs as much as a real
  check, so response time does not reveal which e-mail addresses exist.
"""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from outcomes.errors import Message

PASSWORD_MAX_LENGTH = 128
BREACHED_LIST = Path(__file__).parent / "data" / "common-passwords.txt.gz"


@functools.cache
def breached_passwords() -> frozenset[str]:
    """Passwords common in published breaches (data/README.md), lower case."""
    with gzip.open(BREACHED_LIST, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 10
    max_length: int = PASSWORD_MAX_LENGTH
    refuse_breached: bool = True

    def problems(self, password: str, *, email: str = "") -> list[str]:
        """The reasons this password is refused; empty when it is acceptable."""
        problems: list[str] = []
        if len(password) < self.min_length:
            problems.append(Message("Use at least %(n)s characters.", n=self.min_length))
        if len(password) > self.max_length:
            problems.append(Message("Use at most %(n)s characters.", n=self.max_length))
        if not password.strip():
            problems.append("The password cannot be only spaces.")
        elif len(set(password)) == 1:
            problems.append("The password cannot be one character repeated.")
        if email and password.strip().lower() == email.strip().lower():
            problems.append("The password must not be your e-mail address.")
        if self.refuse_breached and password.strip().lower() in breached_passwords():
            problems.append("This password is common in published data breaches; choose another.")
        return problems


class PasswordHasher:
    def __init__(self, *, time_cost: int, memory_cost_kib: int, parallelism: int) -> None:
        self._argon2 = _Argon2(
            time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism
        )
        self._dummy_hash = self._argon2.hash("not a real password, used for equal timing")

    def hash(self, password: str) -> str:
        return self._argon2.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; a missing hash still costs one check."""
        try:
            return self._argon2.verify(password_hash or self._dummy_hash, password) and bool(
                password_hash
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._argon2.check_needs_rehash(password_hash)
