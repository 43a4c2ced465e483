"""The admin's view of the books and of reconciliation with Stripe."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from marketplace.accounts.models import Organisation, Role
from marketplace.core.clock import now
from marketplace.core.errors import Forbidden
from marketplace.extensions import db
from marketplace.ledger.models import AccountKind, JournalEntry, LedgerAccount
from marketplace.projects.models import Project
from marketplace.reconciliation.checks import latest_runs, reconcile

bp = Blueprint("reconciliation", __name__)


def _require_admin() -> None:
    if current_user.role is not Role.ADMIN:
        raise Forbidden("Only the platform team sees the books.")


@bp.get("/admin/ledger")
@login_required
def ledger():
    _require_admin()
    accounts = list(db.session.scalars(select(LedgerAccount).order_by(LedgerAccount.code)))
    entries = list(
        db.session.scalars(select(JournalEntry).order_by(JournalEntry.id.desc()).limit(100))
    )
    organisations = dict(
        db.session.execute(
            select(Organisation.id, Organisation.name).where(
                Organisation.id.in_({a.organisation_id for a in accounts if a.organisation_id})
            )
        ).all()
    )
    projects = dict(
        db.session.execute(
            select(Project.id, Project.title).where(
                Project.id.in_({a.project_id for a in accounts if a.project_id})
            )
        ).all()
    )
    names = {a.id: _account_name(a, organisations, projects) for a in accounts}
    return render_template(
        "reconciliation/ledger.html",
        accounts=accounts,
        names=names,
        entries=entries,
        runs=latest_runs(db.session),
    )


def _account_name(account: LedgerAccount, organisations: dict, projects: dict) -> str:
    """The account as the books call it: what it holds and for whom."""
    kind = account.kind
    if kind is AccountKind.STRIPE_CLEARING:
        return _("Money at Stripe")
    if kind is AccountKind.PLATFORM_FEES:
        return _("Platform fees")
    if kind is AccountKind.ESCROW:
        return _("Escrow of %(project)s", project=projects.get(account.project_id, "?"))
    owner = organisations.get(account.organisation_id, "?")
    if kind is AccountKind.BUYER:
        return _("Paid by %(organisation)s, not yet spent or refunded", organisation=owner)
    return _("Owed to %(organisation)s", organisation=owner)


@bp.post("/admin/ledger/reconcile")
@login_required
def reconcile_now():
    _require_admin()
    run = reconcile(db.session, current_app.extensions["stripe"], now())
    if run.ok:
        flash(f"Checked {run.checked} Stripe objects: the books agree with Stripe.", "success")
    else:
        flash(f"{len(run.differences)} differences with Stripe: see below.", "error")
    return redirect(url_for("reconciliation.ledger"))
