"""Notices to organisations and people: written with their cause, e-mailed after it commits.

Invariants:
- ``notify`` adds the notice in the caller's transaction: if that rolls back,
  the notice never existed, so nobody hears of a change that did not happen.
- Each notice has a ``key`` naming its event and recipient
  (``settled:project:42:org:7``); a second ``notify`` with the same key does
  nothing, so a sweep that runs twice notifies once.
- E-mail goes out only from ``deliver``, after the commit, and each notice is
  claimed (pending -> sending) by one conditional update before it is sent: it
  is e-mailed at most once, also with two schedulers.
"""

from __future__ import annotations

import functools
import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from babel.support import Translations
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from marketplace.accounts.models import User
from marketplace.core.exports import header_text
from marketplace.notifications.messages import render
from marketplace.notifications.models import MailState, Notification
from outcomes.db import affected

log = logging.getLogger("marketplace.mail")


def notify(
    session: Session,
    *,
    key: str,
    organisation_id: int,
    kind: str,
    message: tuple[str, str],
    params: dict,
    link: str,
    now: datetime,
    user_id: int | None = None,
) -> bool:
    """Add a notice unless one with ``key`` exists; True when added.

    ``message`` is a (subject, body) pair from ``notifications.messages``; the
    texts are stored as templates with ``params`` and rendered for each reader.
    """
    made = notice(key, organisation_id, kind, message, params, link, now, user_id)
    return notify_many(session, [made]) == 1


def notice(
    key: str,
    organisation_id: int,
    kind: str,
    message: tuple[str, str],
    params: dict[str, Any],
    link: str,
    now: datetime,
    user_id: int | None = None,
) -> dict[str, Any]:
    """One notice as ``notify_many`` takes it."""
    return {
        "key": key,
        "organisation_id": organisation_id,
        "user_id": user_id,
        "kind": kind,
        "message": message,
        "params": params,
        "link": link,
        "now": now,
    }


def notify_many(session: Session, notices: list[dict]) -> int:
    """Several notices (``notify``'s arguments each) in two statements: those whose key
    is new. Falls back to one at a time if a concurrent transaction added one of them."""
    if not notices:
        return 0
    known = set(
        session.scalars(
            select(Notification.key).where(Notification.key.in_([n["key"] for n in notices]))
        )
    )
    fresh = [n for n in notices if n["key"] not in known]
    if not fresh:
        return 0
    rows = [
        {
            "key": n["key"],
            "organisation_id": n["organisation_id"],
            "user_id": n.get("user_id"),
            "kind": n["kind"],
            "subject": n["message"][0],
            "body": n["message"][1],
            "params": n["params"],
            "link": n["link"],
            "created_at": n["now"],
            "mail_state": MailState.PENDING,
            "mail_error": "",
        }
        for n in fresh
    ]
    try:
        with session.begin_nested():
            session.execute(insert(Notification), rows)
    except IntegrityError:  # a concurrent transaction added one of them first
        if len(fresh) == 1:
            return 0
        return sum(notify_many(session, [n]) for n in fresh)
    return len(fresh)


@dataclass(frozen=True)
class Mailer:
    """SMTP when a host is configured; otherwise the message is written to the log."""

    settings: Settings

    @property
    def configured(self) -> bool:
        return bool(self.settings.smtp_host)

    def send(self, recipients: list[str], subject: str, text: str) -> MailState:
        if not self.configured:
            log.info("e-mail to %s: %s\n%s", ", ".join(recipients), subject, text)
            return MailState.LOGGED
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = ", ".join(recipients)
        message["Subject"] = header_text(subject)
        message.set_content(text)
        with smtplib.SMTP(self.settings.smtp_host, self.settings.smtp_port, timeout=30) as smtp:
            if self.settings.smtp_starttls:
                smtp.starttls()
            if self.settings.smtp_username:
                smtp.login(self.settings.smtp_username, self.settings.smtp_password)
            smtp.send_message(message)
        return MailState.SENT


def recipients(session: Session, notice: Notification) -> dict[str, list[str]]:
    """The active people a notice is for, by the language they read: {"nl": [e-mail, ...]}
    (leaving out who chose not to have this kind of notice by e-mail)."""
    query = select(User.email, User.language, User.email_off).where(
        User.is_active, User.organisation_id == notice.organisation_id
    )
    if notice.user_id is not None:
        query = query.where(User.id == notice.user_id)
    by_language: dict[str, list[str]] = {}
    for email, language, email_off in session.execute(query.order_by(User.id)):
        if notice.kind in email_off.split():  # they read it in the app only
            continue
        chosen = language if language in EMAIL_LANGUAGES else "en"
        by_language.setdefault(chosen, []).append(email)
    return by_language


TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"
# The languages e-mails are written in, and the locale their figures are formatted for.
EMAIL_LANGUAGES = {"en": "en_GB", "nl": "nl_NL"}


@functools.cache
def translator(language: str) -> Callable[[str], str]:
    return Translations.load(str(TRANSLATIONS), [language]).gettext


def _written(notice: Notification, language: str, settings: Settings) -> tuple[str, str]:
    """The notice's subject and text (with its link) in ``language``."""
    subject, body = (
        render(
            template,
            notice.params,
            translate=translator(language),
            locale=EMAIL_LANGUAGES[language],
            currency=settings.currency,
            zone=settings.timezone,
        )
        for template in (notice.subject, notice.body)
    )
    link = settings.public_url + notice.link if notice.link else ""
    return header_text(subject), body + (f"\n\n{link}" if link else "")


# A claim older than this belongs to a delivery that was killed mid-way.
INTERRUPTED_AFTER = timedelta(minutes=10)


def deliver(
    sessions: sessionmaker[Session], mailer: Mailer, *, now: datetime, limit: int = 500
) -> dict[str, int]:
    """E-mail the pending notices, each claimed first so it goes out at most once (process:
    a transaction for each claim and each outcome, none open while the mail goes out).

    A claim (``sending``, with ``mailed_at`` the moment it was claimed) that is
    older than ``INTERRUPTED_AFTER`` was left by a process that died between
    claiming and recording: whether the mail left is unknown, so it is marked
    failed with that reason for the team to look at, never sent again.
    """
    with sessions.begin() as session:
        interrupted = affected(
            session.execute(
                update(Notification)
                .where(
                    Notification.mail_state == MailState.SENDING,
                    Notification.mailed_at < now - INTERRUPTED_AFTER,
                )
                .values(
                    mail_state=MailState.FAILED,
                    mail_error="the delivery was interrupted; the e-mail may not have been sent",
                )
            )
        )
        pending = session.scalars(
            select(Notification.id)
            .where(Notification.mail_state == MailState.PENDING)
            .order_by(Notification.id)
            .limit(limit)
        ).all()
    counts = {"sent": 0, "logged": 0, "failed": 0, "nobody": 0, "interrupted": interrupted}
    for notice_id in pending:
        with sessions.begin() as session:
            claimed = affected(
                session.execute(
                    update(Notification)
                    .where(
                        Notification.id == notice_id, Notification.mail_state == MailState.PENDING
                    )
                    .values(mail_state=MailState.SENDING, mailed_at=now)
                )
            )
        if not claimed:
            continue  # another delivery has it
        state, error = MailState.LOGGED, ""
        try:
            with sessions() as session:
                notice = session.get_one(Notification, notice_id)
                readers = recipients(session, notice)
                letters = {
                    language: _written(notice, language, mailer.settings) for language in readers
                }
        except (KeyError, ValueError, TypeError) as broken:
            # A notice that cannot be written (bad parameters): it fails alone, the rest go.
            log.error("notice %s cannot be written: %s", notice_id, broken)
            readers, letters = {}, {}
            state, error = MailState.FAILED, f"cannot be written: {broken}"[:300]
        if error:
            counts["failed"] += 1
        elif not readers:
            counts["nobody"] += 1
            error = "no active user to write to"
        else:
            try:
                # One message per language, each in its readers' words and formats.
                for language, to in readers.items():
                    state = mailer.send(to, *letters[language])
            except (smtplib.SMTPException, OSError, ValueError) as failure:
                state, error = MailState.FAILED, str(failure)[:300]
                log.error("e-mail of notice %s failed: %s", notice_id, failure)
            counts[state.value] += 1
        with sessions.begin() as session:
            session.execute(
                update(Notification)
                .where(Notification.id == notice_id)
                .values(mail_state=state, mailed_at=now, mail_error=error)
            )
    return counts
