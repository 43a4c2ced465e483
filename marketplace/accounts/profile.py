"""A person's own account: e-mailed links, verification, password reset, changes of
name, address and password, e-mail preferences, and colleagues.

Every function takes the session and ``now`` from its caller and only flushes; the
caller commits, then e-mails the link (``notifications.account_mail``): the secret of a link
exists only in that e-mail and in the response that sends it, never in the database.

Invariants:
- A link is spent once: by a conditional update on ``used_at IS NULL``, so two tabs
  opening it at once act once; it is refused after ``expires_at``. A new link of a
  purpose for an address spends the older ones.
- A new password (reset or change) ends every other session of that person (the
  session nonce changes) and spends their open reset links.
- A new address counts only once its link is opened; it must still be free then.
- Only the organisation's owner invites and removes colleagues; the owner cannot be
  removed; a removed person can no longer sign in or use their API tokens.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.accounts.models import (
    SELF_REGISTRATION_ROLES,
    AccountLink,
    LinkPurpose,
    Organisation,
    User,
    new_session_nonce,
)
from marketplace.accounts.services import (
    AccountRules,
    NewUser,
    _check_password,
    _email_taken,
    _email_taken_error,
    _insert_user,
    normalise_email,
    token_digest,
)
from marketplace.core.errors import Conflict, Forbidden, NotFound, RateLimited, ValidationFailed
from outcomes.db import affected
from outcomes.errors import Message

LINK_LIFETIME = {
    LinkPurpose.VERIFY_EMAIL: timedelta(days=3),
    LinkPurpose.RESET_PASSWORD: timedelta(hours=1),
    LinkPurpose.CHANGE_EMAIL: timedelta(days=1),
    LinkPurpose.INVITATION: timedelta(days=7),
}
LINK_PREFIX = "lnk_"
# A second link of one purpose to one address waits this long after the first.
RESEND_AFTER = timedelta(minutes=1)


class LinkClosed(Conflict):
    code = "link_closed"
    title = "This link has expired or was used already"


def issue_link(
    session: Session,
    purpose: LinkPurpose,
    email: str,
    *,
    now: datetime,
    user: User | None = None,
    organisation_id: int | None = None,
    invited_by: User | None = None,
) -> tuple[AccountLink, str]:
    """A new link and its secret (for the e-mail only); older open links of the same
    purpose for the same address are spent. Raises RateLimited when one was sent to
    that address for that purpose less than ``RESEND_AFTER`` ago (no mail bombs)."""
    email = normalise_email(email)
    last = session.scalar(
        select(func.max(AccountLink.created_at)).where(
            AccountLink.purpose == purpose, AccountLink.email == email
        )
    )
    if last is not None and now - last < RESEND_AFTER:
        raise RateLimited(
            "We sent you a link a moment ago. Wait a minute before asking for another.",
            retry_after=math.ceil((last + RESEND_AFTER - now).total_seconds()),
        )
    session.execute(
        update(AccountLink)
        .where(
            AccountLink.purpose == purpose,
            AccountLink.email == email,
            AccountLink.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    secret = LINK_PREFIX + secrets.token_urlsafe(32)
    link = AccountLink(
        purpose=purpose,
        token_hash=token_digest(secret),
        email=email,
        user_id=user.id if user else None,
        organisation_id=organisation_id,
        invited_by_id=invited_by.id if invited_by else None,
        created_at=now,
        expires_at=now + LINK_LIFETIME[purpose],
    )
    session.add(link)
    session.flush()
    return link, secret


def find_link(session: Session, purpose: LinkPurpose, secret: str, now: datetime) -> AccountLink:
    """The open link of that purpose (not spent), or LinkClosed."""
    link = None
    if secret.startswith(LINK_PREFIX) and len(secret) < 100:
        link = session.scalar(
            select(AccountLink).where(
                AccountLink.token_hash == token_digest(secret), AccountLink.purpose == purpose
            )
        )
    if link is None or not link.open_at(now):
        raise LinkClosed("This link has expired or was used already. Ask for a new one.")
    return link


def _spend(session: Session, link: AccountLink, now: datetime) -> None:
    spent = affected(
        session.execute(
            update(AccountLink)
            .where(AccountLink.id == link.id, AccountLink.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    if spent != 1:  # another request opened it a moment ago
        raise LinkClosed("This link has expired or was used already. Ask for a new one.")
    session.expire(link, ["used_at"])


# --- verification ------------------------------------------------------------------------------


def verification_link(session: Session, user: User, *, now: datetime) -> tuple[AccountLink, str]:
    if user.email_verified:
        raise Conflict("Your e-mail address is confirmed already.", code="already_verified")
    return issue_link(session, LinkPurpose.VERIFY_EMAIL, user.email, now=now, user=user)


def verify_email(session: Session, secret: str, *, now: datetime) -> User:
    link = find_link(session, LinkPurpose.VERIFY_EMAIL, secret, now)
    _spend(session, link, now)
    user = session.get_one(User, link.user_id)
    if user.email == link.email and user.email_verified_at is None:
        user.email_verified_at = now
    session.flush()
    return user


# --- passwords ---------------------------------------------------------------------------------


def reset_link(session: Session, email: str, *, now: datetime) -> tuple[AccountLink, str] | None:
    """A reset link for the active account of that address, or None (the page says the
    same either way, so it does not tell who has an account)."""
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None or not user.is_active:
        return None
    return issue_link(session, LinkPurpose.RESET_PASSWORD, user.email, now=now, user=user)


def _set_password(session: Session, rules: AccountRules, user: User, password: str) -> None:
    _check_password(rules, NewUser(user.email, password, user.name, user.role, ""))
    user.password_hash = rules.hasher.hash(password)
    user.session_nonce = new_session_nonce()  # every session of this person ends


def reset_password(
    session: Session, rules: AccountRules, secret: str, password: str, *, now: datetime
) -> User:
    """Raises LinkClosed and ValidationFailed (a weak password; the link stays open)."""
    link = find_link(session, LinkPurpose.RESET_PASSWORD, secret, now)
    user = session.get_one(User, link.user_id)
    if not user.is_active:
        raise LinkClosed("This link has expired or was used already. Ask for a new one.")
    _set_password(session, rules, user, password)
    _spend(session, link, now)
    # Opening the link proves the address as well as verifying it would.
    if user.email_verified_at is None and user.email == link.email:
        user.email_verified_at = now
    session.flush()
    return user


def change_password(
    session: Session, rules: AccountRules, user: User, current: str, password: str
) -> None:
    """Raises ValidationFailed (the current password is wrong, or the new one weak). The
    caller starts the person's own session again; their other sessions end."""
    if not rules.hasher.verify(user.password_hash, current):
        raise ValidationFailed(errors={"current_password": ["This is not your current password."]})
    _set_password(session, rules, user, password)
    session.flush()


# --- name, address, preferences ---------------------------------------------------------------


def _address(text: str) -> str:
    """An e-mail address as stored (trimmed, lower case), or ValidationFailed naming it."""
    email = normalise_email(text)
    if "@" not in email or len(email) > 254 or not email.isprintable() or " " in email:
        raise ValidationFailed(errors={"email": ["Give a valid e-mail address."]})
    return email


def change_name(session: Session, user: User, name: str) -> None:
    name = " ".join(name.split())
    if not name or len(name) > 200 or not name.isprintable():
        raise ValidationFailed(errors={"name": ["Give your name (at most 200 characters)."]})
    user.name = name
    session.flush()


def email_change_link(
    session: Session, rules: AccountRules, user: User, new_email: str, current: str, *, now
) -> tuple[AccountLink, str]:
    """A link to the new address; the address changes when it is opened. Raises
    ValidationFailed (wrong password, not an address, the same one) and Conflict
    ``email_taken``."""
    if not rules.hasher.verify(user.password_hash, current):
        raise ValidationFailed(errors={"current_password": ["This is not your current password."]})
    email = _address(new_email)
    if email == user.email:
        raise ValidationFailed(errors={"email": ["This is your address already."]})
    if _email_taken(session, email):
        raise _email_taken_error()
    return issue_link(session, LinkPurpose.CHANGE_EMAIL, email, now=now, user=user)


def confirm_email_change(session: Session, secret: str, *, now: datetime) -> User:
    link = find_link(session, LinkPurpose.CHANGE_EMAIL, secret, now)
    user = session.get_one(User, link.user_id)
    if _email_taken(session, link.email):
        raise _email_taken_error()
    _spend(session, link, now)
    try:
        with session.begin_nested():
            user.email, user.email_verified_at = link.email, now
            session.flush()
    except IntegrityError:  # taken by a registration a moment ago
        raise _email_taken_error() from None
    return user


def set_email_preferences(session: Session, user: User, off: list[str], known: list[str]) -> None:
    """E-mail for every notice kind in ``known`` except those in ``off``."""
    unknown = sorted(set(off) - set(known))
    if unknown:
        raise ValidationFailed(
            errors={"email_off": [Message("Unknown kind: %(kind)s.", kind=unknown[0])]}
        )
    user.email_off = " ".join(kind for kind in known if kind in off)
    session.flush()


# --- colleagues --------------------------------------------------------------------------------


def _require_owner(user: User) -> None:
    if not user.is_owner or user.role not in SELF_REGISTRATION_ROLES:
        raise Forbidden("Only your organisation's owner invites and removes colleagues.")


def colleagues(session: Session, user: User) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .where(User.organisation_id == user.organisation_id, User.is_active)
            .order_by(User.is_owner.desc(), User.name, User.id)
        )
    )


def open_invitations(session: Session, user: User, now: datetime) -> list[AccountLink]:
    return list(
        session.scalars(
            select(AccountLink)
            .where(
                AccountLink.purpose == LinkPurpose.INVITATION,
                AccountLink.organisation_id == user.organisation_id,
                AccountLink.used_at.is_(None),
                AccountLink.expires_at > now,
            )
            .order_by(AccountLink.id)
        )
    )


def invite(session: Session, owner: User, email: str, *, now: datetime) -> tuple[AccountLink, str]:
    """An invitation (7 days) to join the owner's organisation with its role. Raises
    Forbidden (not the owner), ValidationFailed and Conflict ``email_taken``."""
    _require_owner(owner)
    email = _address(email)
    if _email_taken(session, email):
        raise _email_taken_error()
    return issue_link(
        session,
        LinkPurpose.INVITATION,
        email,
        now=now,
        organisation_id=owner.organisation_id,
        invited_by=owner,
    )


def withdraw_invitation(session: Session, owner: User, link_id: int, *, now: datetime) -> None:
    _require_owner(owner)
    link = session.get(AccountLink, link_id)
    if (
        link is None
        or link.purpose is not LinkPurpose.INVITATION
        or link.organisation_id != owner.organisation_id
    ):
        raise NotFound("No such invitation.")
    if link.used_at is None:
        link.used_at = now
    session.flush()


@dataclass(frozen=True)
class Invitation:
    link: AccountLink
    organisation: Organisation
    invited_by: User


def invitation(session: Session, secret: str, *, now: datetime) -> Invitation:
    link = find_link(session, LinkPurpose.INVITATION, secret, now)
    organisation = session.get_one(Organisation, link.organisation_id)
    return Invitation(link, organisation, session.get_one(User, link.invited_by_id))


def accept_invitation(
    session: Session, rules: AccountRules, secret: str, name: str, password: str, *, now: datetime
) -> User:
    """The invited person's account, in the organisation with its owner's role, its
    address verified by the link. Raises LinkClosed, ValidationFailed, Conflict."""
    found = invitation(session, secret, now=now)
    inviter = found.invited_by
    if not inviter.is_active or not inviter.is_owner:
        raise LinkClosed("This link has expired or was used already. Ask for a new one.")
    if not " ".join(name.split()) or len(name) > 200:
        raise ValidationFailed(errors={"name": ["Give your name (at most 200 characters)."]})
    new = NewUser(found.link.email, password, name, inviter.role, found.organisation.name)
    _check_password(rules, new)
    if _email_taken(session, found.link.email):
        raise _email_taken_error()
    _spend(session, found.link, now)
    try:
        with session.begin_nested():
            user = _insert_user(session, rules, new, found.organisation, now, verified=True)
            user.name = " ".join(name.split())
            session.flush()
    except IntegrityError:
        raise _email_taken_error() from None
    return user


def remove_colleague(session: Session, owner: User, user_id: int) -> User:
    """The colleague can no longer sign in or use their tokens; their past acts stay theirs."""
    _require_owner(owner)
    member = session.get(User, user_id)
    if member is None or member.organisation_id != owner.organisation_id or not member.is_active:
        raise NotFound("No such colleague.")
    if member.id == owner.id:
        raise Conflict("You cannot remove yourself: you own the organisation.", code="owner")
    member.is_active = False
    member.session_nonce = new_session_nonce()
    session.flush()
    return member


# --- the organisation's profile ----------------------------------------------------------------

KVK_NUMBER = re.compile(r"^\d{8}$")
# Another country's registry: its two-letter country code, then the id (DE HRB 12345).
OTHER_REGISTRY = re.compile(r"^[A-Z]{2} [A-Z0-9][A-Z0-9 ./-]{1,36}$")
VAT_ID = re.compile(r"^[A-Z]{2}[A-Z0-9]{2,13}$")
DUTCH_VAT_ID = re.compile(r"^NL\d{9}B\d{2}$")


@dataclass(frozen=True)
class OrganisationProfile:
    legal_name: str = ""
    registry_id: str = ""
    address: str = ""
    vat_id: str = ""
    website: str = ""
    description: str = ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _registry_id(text: str) -> tuple[str, str | None]:
    """The id as stored, or an error."""
    cleaned = _one_line(text).upper()
    if not cleaned:
        return "", None
    digits = cleaned.replace(" ", "").replace(".", "")
    if digits.isdigit():
        if KVK_NUMBER.match(digits):
            return digits, None
        return cleaned, "A KvK number has 8 digits."
    if OTHER_REGISTRY.match(cleaned):
        return cleaned, None
    return cleaned, "Give a KvK number (8 digits), or another registry's country code and id."


def _website(text: str) -> tuple[str, str | None]:
    cleaned = text.strip()
    if not cleaned:
        return "", None
    if "://" not in cleaned:
        cleaned = "https://" + cleaned
    try:
        parts = urlsplit(cleaned)
    except ValueError:  # an unclosed [IPv6] bracket and the like
        return cleaned, "A web address such as https://buurtwerk.nl."
    if (
        parts.scheme not in ("http", "https")
        or "." not in (parts.hostname or "")
        or any(ch.isspace() for ch in cleaned)
        or len(cleaned) > 200
        or not cleaned.isprintable()
    ):
        return cleaned, "A web address such as https://buurtwerk.nl."
    return cleaned, None


def update_organisation(session: Session, owner: User, data: OrganisationProfile) -> Organisation:
    """The owner's organisation with its new profile (flushes). Raises Forbidden and
    ValidationFailed naming each field."""
    _require_owner(owner)
    errors: dict[str, list[str]] = {}
    legal_name = _one_line(data.legal_name)
    if len(legal_name) > 200 or not legal_name.isprintable():
        errors["legal_name"] = ["At most 200 characters, on one line."]
    registry_id, problem = _registry_id(data.registry_id)
    if problem:
        errors["registry_id"] = [problem]
    address = _one_line(data.address)
    if len(address) > 300 or not address.isprintable():
        errors["address"] = ["At most 300 characters, on one line."]
    vat_id = "".join(data.vat_id.split()).replace(".", "").upper()
    if vat_id and (
        not VAT_ID.match(vat_id) or (vat_id[:2] == "NL" and not DUTCH_VAT_ID.match(vat_id))
    ):
        errors["vat_id"] = ["A VAT id such as NL123456789B01."]
    website, problem = _website(data.website)
    if problem:
        errors["website"] = [problem]
    description = data.description.strip().replace("\r\n", "\n")
    if len(description) > 2000 or not all(ch.isprintable() or ch == "\n" for ch in description):
        errors["description"] = ["At most 2,000 characters."]
    if errors:
        raise ValidationFailed(errors=errors)
    organisation = session.get_one(Organisation, owner.organisation_id)
    if (legal_name, registry_id) != (organisation.legal_name, organisation.registry_id):
        # what was verified changed: an administrator verifies it again
        organisation.verified_at = None
    organisation.legal_name, organisation.registry_id = legal_name, registry_id
    organisation.address, organisation.vat_id = address, vat_id
    organisation.website, organisation.description = website, description
    session.flush()
    return organisation
