"""Stripe's webhook endpoint and the admin's view of the books.

The webhook verifies Stripe's signature on the raw body before anything else:
a bad or missing signature is 400 and writes nothing. A verified event is
handled once (its id is stored) and answered 200 even when it is of no use to
us, so Stripe stops retrying it.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select

from marketplace.accounts.models import Role
from marketplace.core.clock import now
from marketplace.core.errors import Forbidden
from marketplace.extensions import db
from marketplace.ledger.models import JournalEntry, LedgerAccount
from marketplace.payments.reconcile import latest_runs, reconcile
from marketplace.payments.webhooks import NotAnEvent, handle_event

bp = Blueprint("payments", __name__)


@bp.post("/webhooks/stripe")
def stripe_webhook():
    payload = request.get_data(cache=False)
    signature = request.headers.get("Stripe-Signature", "")
    try:
        event = current_app.extensions["stripe"].parse_event(payload, signature)
    except ValueError:
        return jsonify({"error": "invalid signature or payload"}), 400
    try:
        outcome = handle_event(
            db.session,
            event,
            now=now(),
            grace_hours=current_app.extensions["settings"].payment_grace_hours,
        )
    except NotAnEvent as error:
        return jsonify({"error": f"not an event: {error}"}), 400
    return jsonify({"received": event["id"], "outcome": outcome})


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
        "payments/ledger.html", accounts=accounts, entries=entries, runs=latest_runs(db.session)
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
    return redirect(url_for("payments.ledger"))
