"""Notices in the app: each person's (their organisation's and their own), and the
admins' view of the e-mail outbox."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, or_, select, update

from marketplace.accounts.models import Role
from marketplace.core.clock import now
from marketplace.core.errors import Forbidden
from marketplace.core.schemas import page_number
from marketplace.extensions import db
from marketplace.notifications.messages import render
from marketplace.notifications.models import MailState, Notification

bp = Blueprint("notifications", __name__)
PER_PAGE = 50


def mine():
    """The notices a person sees: its organisation's, and those addressed to it."""
    return (Notification.organisation_id == current_user.organisation_id) & or_(
        Notification.user_id.is_(None), Notification.user_id == current_user.id
    )


def notice_text(template: str, params: dict | None) -> str:
    """A notice's subject or body in the reader's language and locale."""
    settings = current_app.extensions["settings"]
    return render(
        template,
        params,
        translate=gettext,
        locale=str(get_locale()),
        currency=settings.currency,
        zone=settings.timezone,
    )


def unread_count() -> int:
    if not current_user.is_authenticated:
        return 0
    unread = db.session.scalar(
        select(func.count()).select_from(Notification).where(mine(), Notification.read_at.is_(None))
    )
    return unread or 0


@bp.get("/notices")
@login_required
def notices():
    page = page_number(request.args.get("page"))
    total = db.session.scalar(select(func.count()).select_from(Notification).where(mine()))
    items = db.session.scalars(
        select(Notification)
        .where(mine())
        .order_by(Notification.id.desc())
        .limit(PER_PAGE)
        .offset((page - 1) * PER_PAGE)
    ).all()
    return render_template(
        "notifications/notices.html", notices=items, page=page, total=total, per_page=PER_PAGE
    )


@bp.post("/notices/read")
@login_required
def mark_read():
    db.session.execute(
        update(Notification)
        .where(mine(), Notification.read_at.is_(None))
        .values(read_at=now())
        .execution_options(synchronize_session=False)
    )
    flash(_("All notices are marked as read."), "success")
    return redirect(url_for("notifications.notices"))


@bp.get("/admin/outbox")
@login_required
def outbox():
    if current_user.role is not Role.ADMIN:
        raise Forbidden("The outbox is for the administrators.")
    page = page_number(request.args.get("page"))
    state = request.args.get("state", "")
    query = select(Notification)
    if state in {s.value for s in MailState}:
        query = query.where(Notification.mail_state == MailState(state))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    items = db.session.scalars(
        query.order_by(Notification.id.desc()).limit(PER_PAGE).offset((page - 1) * PER_PAGE)
    ).all()
    counts = dict(
        db.session.execute(
            select(Notification.mail_state, func.count()).group_by(Notification.mail_state)
        ).all()
    )
    return render_template(
        "notifications/outbox.html",
        notices=items,
        page=page,
        total=total,
        per_page=PER_PAGE,
        counts=counts,
        state=state,
        states=MailState,
    )
