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
from flask_login import current_user, login_required
from sqlalchemy import select

from marketplace.accounts.models import Role
from marketplace.core.clock import now
from marketplace.core.errors import Forbidden
from marketplace.extensions import db
from marketplace.ledger.models import JournalEntry, LedgerAccount
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
    return render_template(
        "reconciliation/ledger.html",
        accounts=accounts,
        entries=entries,
        runs=latest_runs(db.session),
    )


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
