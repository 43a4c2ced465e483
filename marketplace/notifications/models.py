"""Notices: what an organisation (or one of its people) is told, in the app and by e-mail."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from outcomes.db import Base, UTCDateTime, str_enum


class MailState(enum.StrEnum):
    PENDING = "pending"  # to be e-mailed by the delivery sweep
    SENDING = "sending"  # claimed by one delivery; never sent again
    SENT = "sent"  # handed to the SMTP server
    LOGGED = "logged"  # no SMTP server configured: written to the log instead
    FAILED = "failed"  # the SMTP server refused it; shown to the admins
    SKIPPED = "skipped"  # made before e-mail existed


class Notification(Base):
    """A notice to an organisation (or one of its users): shown in the app, and e-mailed.

    Written in the transaction that causes it (so a rolled-back change notifies
    nobody), unique by ``key`` (so a repeated sweep notifies once), and e-mailed
    after the commit by the delivery sweep, which claims each row first.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index(None, "organisation_id", "id"),
        Index(None, "mail_state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str | None] = mapped_column(String(160), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mail_state: Mapped[MailState] = mapped_column(
        str_enum(MailState, "mail_state"), default=MailState.PENDING
    )
    mailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mail_error: Mapped[str] = mapped_column(String(300), default="")
    # The parameters of the subject and body templates (None: stored as final text).
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
