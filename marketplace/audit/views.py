"""The audit log in the web app: who is acting in a request, the refusals and
administrators' changes a response shows, and the administrators' page."""

from __future__ import annotations

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    has_request_context,
    render_template,
    request,
    request_finished,
)
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict

from marketplace.accounts.models import Role
from marketplace.api import is_api_request
from marketplace.audit import services as audit
from marketplace.audit.models import KINDS
from marketplace.core.clock import now
from marketplace.core.errors import Forbidden
from marketplace.core.schemas import page_number, sane_day
from marketplace.extensions import db

bp = Blueprint("audit", __name__)
PER_PAGE = 100
SIGN_IN_ENDPOINTS = {"accounts.login", "accounts_api.Tokens"}
READS = {"GET", "HEAD", "OPTIONS"}
# Requests an administrator makes that change nothing of the platform's.
NOT_ADMIN_CHANGES = {"accounts.login", "accounts.logout", "web.choose_language"}


def _via() -> str:
    if request.path.startswith("/webhooks/"):
        return "webhook"
    return "api" if is_api_request() else "web"


def _request_user():
    """The person behind the request: the API token's, else the signed-in page's."""
    user = g.get("api_user") or g.get("api_caller")
    if user is None and current_user and current_user.is_authenticated:
        user = current_user
    return user


def request_actor() -> audit.Actor | None:
    if not has_request_context():
        return None
    user = _request_user()
    return audit.Actor(
        user_id=user.id if user is not None else None,
        label=user.email if user is not None else "anonymous",
        via=_via(),
        remote_addr=request.remote_addr,
        request_id=g.get("request_id"),
    )


def _submitted_email() -> str:
    """The e-mail address a failed sign-in gave (never the password)."""
    try:
        source = request.get_json(silent=True) if request.is_json else request.form
    except RecursionError:  # a body nested too deep to read has no e-mail to record
        return ""
    email = source.get("email") if isinstance(source, dict | MultiDict) else None
    return str(email or "")[:200]


def _refusal(response) -> tuple[str, str] | None:
    """(action, subject) when the response refused the caller, else None."""
    status = response.status_code
    endpoint = request.endpoint or "-"
    if endpoint in SIGN_IN_ENDPOINTS and request.method == "POST":
        if status in (401, 429) or (endpoint == "accounts.login" and status != 302):
            return "sign-in failed", f"email:{_submitted_email()}"
        return None
    if status in (401, 403):
        return f"{status} {request.method} {endpoint}", request.path
    return None


def init_audit(app: Flask) -> None:
    audit.use_request_actor(request_actor)
    app.register_blueprint(bp)

    @app.after_request
    def _admin_changes(response):
        """In the request's own transaction, committed with what it records."""
        if (
            request.method in READS
            or response.status_code >= 400
            or request.endpoint in NOT_ADMIN_CHANGES
        ):
            return response
        user = _request_user()
        if user is not None and user.role is Role.ADMIN:
            audit.record(
                db.session,
                "admin",
                f"{request.method} {request.endpoint or '-'}",
                request.path,
                now(),
                status=response.status_code,
            )
        return response

    @app.after_request
    def _note_refusal(response):
        """Who was refused is read now: the rollback that follows expires the user."""
        refused = _refusal(response)
        if refused is not None:
            g.audit_refusal = (request_actor(), *refused, response.status_code)
        return response

    def _refusals(sender, response, **_extra):
        """After the request's transaction ended (a refusal rolls its own work back)."""
        noted = g.pop("audit_refusal", None)
        if noted is not None:
            actor, action, subject, status = noted
            audit.on_its_own(db.engine, actor, "refused", action, subject, now(), status=status)

    request_finished.connect(_refusals, app, weak=False)


def filters_from(args, *, per_page: int) -> audit.AuditFilters:
    since, until = audit.period(sane_day(args.get("from"), "from"), sane_day(args.get("to"), "to"))
    return audit.AuditFilters(
        kind=args.get("kind") if args.get("kind") in KINDS else None,
        actor=(args.get("actor") or "")[:254] or None,
        subject=(args.get("subject") or "")[:200] or None,
        since=since,
        until=until,
        page=page_number(args.get("page")),
        per_page=per_page,
    )


@bp.get("/admin/audit")
@login_required
def log():
    if current_user.role is not Role.ADMIN:
        raise Forbidden("The audit log is for the administrators.")
    filters = filters_from(request.args, per_page=PER_PAGE)
    events, total = audit.search(db.session, filters)
    return render_template(
        "audit/log.html",
        events=events,
        total=total,
        filters=filters,
        kinds=KINDS,
        args={k: v for k, v in request.args.items() if k != "page"},
        per_page=PER_PAGE,
        zone=current_app.extensions["settings"].timezone,
    )
