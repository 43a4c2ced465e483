"""Web pages: register, log in, log out, and the account page with API tokens.

Every state change is a POST carrying a CSRF token (CSRFProtect checks it
before the view runs). A refused form is shown again with its field errors
and the status that the JSON API would give (422, 409, 401, 429).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from marketplace.accounts import account_rules
from marketplace.accounts.models import Role, User, new_session_nonce
from marketplace.accounts.schemas import RegistrationSchema, TokenOptionsSchema
from marketplace.accounts.services import (
    InvalidCredentials,
    NewUser,
    authenticate,
    issue_api_token,
    list_api_tokens,
    register,
    revoke_api_token,
)
from marketplace.api.problems import status_of
from marketplace.core.clock import now
from marketplace.core.errors import Conflict, MarketplaceError, RateLimited, ValidationFailed
from marketplace.extensions import db, login_manager
from marketplace.notifications import notices
from marketplace.web.redirects import same_site_path

bp = Blueprint("accounts", __name__)

_registration = RegistrationSchema(unknown=ma.EXCLUDE)


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    user_id, _sep, nonce = session_id.partition(":")
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.is_active or user.session_nonce != nonce:
        return None
    return user


def _start_session(user: User) -> None:
    # A fresh session at log-in: nothing from before (including the CSRF
    # token) survives into the authenticated session.
    session.clear()
    login_user(user)
    session.permanent = True
    # The session's absolute start, signed in the cookie: it ends 12 hours after
    # sign-in whatever the activity (the idle limit is shorter still).
    session["started"] = now().timestamp()
    if user.language is None:
        # E-mails are written in the language of the pages the person uses.
        user.language = str(get_locale())


@bp.route("/register", methods=["GET", "POST"])
def register_page():
    if current_user.is_authenticated:
        return redirect(landing(current_user))
    form = {"role": request.args.get("role", "buyer")}
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        form = request.form.to_dict()
        form.pop("password", None)
        try:
            data = _registration.load(request.form)
            user = register(
                db.session,
                account_rules(),
                NewUser(**{**data, "role": Role(data["role"])}),
                now=now(),
            )
        except ma.ValidationError as exc:
            errors, status = _field_errors(exc.messages), 422
        except (ValidationFailed, Conflict) as exc:
            errors, status = exc.errors, status_of(exc)
        else:
            db.session.flush()
            _start_session(user)
            flash(_("Welcome, %(name)s. Your account is ready.", name=user.name), "success")
            return redirect(landing(user))
    return render_template("accounts/register.html", form=form, errors=errors), status


def landing(user: User) -> str:
    """Where a person starts after signing in: the page with their next task (the
    dashboard; an evaluator's queue of evaluations)."""
    if user.role is Role.EVALUATOR:
        return url_for("evaluations.queue")
    return url_for("dashboards.dashboard")


def _field_errors(messages) -> dict[str, list[str]]:
    return {str(k): (v if isinstance(v, list) else [str(v)]) for k, v in messages.items()}


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(landing(current_user))
    next_url = same_site_path(request.values.get("next"))
    email = ""
    error = None
    status = 200
    if request.method == "POST":
        email = request.form.get("email", "")[:254]
        try:
            user = authenticate(
                db.session,
                account_rules(),
                email,
                request.form.get("password", "")[:1024],
                remote_addr=request.remote_addr or "",
                now=now(),
            )
        except InvalidCredentials as refused:
            notices.many_failed_logins(db.session, refused.warning, now=now())
            db.session.commit()  # keep the failed attempt for the throttle
            error, status = _("The e-mail address or password is not correct."), 401
        except RateLimited as exc:
            error, status = _("Too many failed attempts. Wait a minute and try again."), 429
            response = render_template(
                "accounts/login.html", email=email, error=error, next=next_url
            )
            return response, status, {"Retry-After": str(exc.retry_after)}
        else:
            _start_session(user)
            return redirect(next_url or landing(user))
    return render_template("accounts/login.html", email=email, error=error, next=next_url), status


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        # A copy of the cookie taken before now is worth nothing: the session's
        # identity carries the nonce, and the nonce changes.
        current_user.session_nonce = new_session_nonce()
        db.session.flush()
    logout_user()
    session.clear()
    flash(_("You have logged out."), "info")
    return redirect(url_for("web.home"))


@bp.get("/account")
@login_required
def account():
    return _account_page()


def _account_page(status: int = 200, **extra: Any) -> tuple[str, int]:
    values: dict[str, Any] = {
        "tokens": list_api_tokens(db.session, current_user),
        "new_secret": None,
        "now": now(),
        "token_errors": {},
        "scope_hints": [
            ("read", _("GET requests")),
            ("write", _("other changes")),
            ("money", _("pledge, pay, cancel, close funding, retire tokens")),
        ],
    }
    return render_template("accounts/account.html", **(values | extra)), status


@bp.post("/account/tokens")
@login_required
def create_token():
    name = request.form.get("name", "").strip()[:100] or "API token"
    try:
        chosen: dict[str, Any] = {"scopes": request.form.getlist("scopes")}
        if request.form.get("expires_in_days"):  # "never" is the empty choice
            chosen["expires_in_days"] = request.form["expires_in_days"]
        data = TokenOptionsSchema().load(chosen)
        token, secret = issue_api_token(
            db.session,
            current_user,
            name,
            now=now(),
            scopes=data["scopes"],
            expires_in_days=data["expires_in_days"],
        )
    except ma.ValidationError as exc:
        return _account_page(422, token_errors=exc.normalized_messages())
    except ValidationFailed as exc:
        return _account_page(422, token_errors=exc.errors)
    # Shown once, in this response only; never put in the session or a URL.
    response, _status = _account_page(new_secret=secret, new_token=token)
    return response, 201, {"Cache-Control": "no-store"}


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    try:
        token = revoke_api_token(db.session, current_user, token_id, now=now())
    except MarketplaceError:
        abort(404)
    flash(_("The token “%(name)s” is revoked.", name=token.name), "success")
    return redirect(url_for("accounts.account"))
