"""Web pages: register, log in, log out, the account page (profile, address, password,
e-mail preferences, API tokens), the e-mailed links, and colleagues.

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
    current_app,
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
from marketplace.accounts import profile as accounts
from marketplace.accounts.models import LinkPurpose, Role, User, new_session_nonce
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
from marketplace.audit import services as audit
from marketplace.core.clock import now
from marketplace.core.errors import (
    Conflict,
    Forbidden,
    MarketplaceError,
    RateLimited,
    ValidationFailed,
)
from marketplace.core.errors import NotFound as NotFoundError
from marketplace.extensions import db, login_manager
from marketplace.notifications import notices
from marketplace.notifications.account_mail import send_link
from marketplace.web.formatting import NOTICE_KINDS
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
            link, secret = accounts.verification_link(db.session, user, now=now())
            db.session.commit()
            flash(_("Welcome, %(name)s. Your account is ready.", name=user.name), "success")
            _mail(link.purpose, user.email, secret, user.language, name=user.name)
            return redirect(landing(user))
    return render_template("accounts/register.html", form=form, errors=errors), status


def landing(user: User) -> str:
    """Where a person starts after signing in: the page with their next task (the
    dashboard; an evaluator's queue of evaluations)."""
    if user.role is Role.EVALUATOR:
        return url_for("evaluations.queue")
    if user.role is Role.AUTHORITY:
        return url_for("obligations.listing")
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


# Kinds of notice a person may choose not to receive by e-mail (a warning of failed
# sign-ins always goes out).
OPTIONAL_MAIL = [kind for kind in NOTICE_KINDS if kind != "failed_logins"]


def _account_page(status: int = 200, **extra: Any) -> tuple[str, int]:
    values: dict[str, Any] = {
        "errors": {},
        "form": {},
        "mail_kinds": [(kind, NOTICE_KINDS[kind]) for kind in OPTIONAL_MAIL],
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


# --- e-mailed links ------------------------------------------------------------------------------


def _mail(purpose: LinkPurpose, to: str, secret: str, language: str | None, **params) -> bool:
    """Send a link's e-mail after the commit; tell the person if it could not go."""
    settings = current_app.extensions["settings"]
    if send_link(settings, purpose, to, secret, language or str(get_locale()), **params):
        return True
    flash(_("We could not send the e-mail just now. Please try again in a few minutes."), "error")
    return False


def _audit(action: str, user: User, **detail: Any) -> None:
    audit.record(db.session, "account", action, f"user:{user.id}", now(), **detail)


def _link_closed(status: int = 410) -> tuple[str, int]:
    message = _("This link has expired or was used already. Ask for a new one.")
    return render_template("accounts/link_closed.html", message=message), status


@bp.post("/account/verify")
@login_required
def send_verification():
    try:
        link, secret = accounts.verification_link(db.session, current_user, now=now())
    except RateLimited as exc:
        flash(_("We sent you a link a moment ago. Wait a minute before asking for another."))
        response = redirect(landing(current_user), 303)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except Conflict:
        return redirect(landing(current_user))
    db.session.commit()
    if _mail(
        link.purpose, current_user.email, secret, current_user.language, name=current_user.name
    ):
        flash(_("We sent a new link to %(email)s.", email=current_user.email), "success")
    return redirect(landing(current_user))


@bp.route("/account/verify/<secret>", methods=["GET", "POST"])
def verify(secret: str):
    try:
        if request.method == "GET":  # a mail scanner that follows the link spends nothing
            accounts.find_link(db.session, LinkPurpose.VERIFY_EMAIL, secret, now())
            return render_template("accounts/confirm_link.html", purpose="verify")
        user = accounts.verify_email(db.session, secret, now=now())
    except accounts.LinkClosed:
        db.session.rollback()
        return _link_closed()
    _audit("e-mail address verified", user)
    flash(_("Thank you: your e-mail address is confirmed."), "success")
    if current_user.is_authenticated:
        return redirect(landing(current_user))
    return redirect(url_for("accounts.login"))


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password():
    sent_to = None
    if request.method == "POST":
        email = request.form.get("email", "").strip()[:254]
        if "@" not in email:
            errors = {"email": [_("Give the e-mail address you sign in with.")]}
            return render_template("accounts/forgot.html", email=email, errors=errors), 422
        try:
            made = accounts.reset_link(db.session, email, now=now())
        except RateLimited:
            made = None  # the first link is on its way; say the same as always
        db.session.commit()
        if made is not None:
            link, secret = made
            user = db.session.get_one(User, link.user_id)
            _mail(link.purpose, user.email, secret, user.language, name=user.name, email=user.email)
        sent_to = email
    return render_template("accounts/forgot.html", email="", errors={}, sent_to=sent_to)


@bp.route("/password/reset/<secret>", methods=["GET", "POST"])
def reset_password(secret: str):
    if request.method == "GET":
        try:
            accounts.find_link(db.session, LinkPurpose.RESET_PASSWORD, secret, now())
        except accounts.LinkClosed:
            return _link_closed()
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            user = accounts.reset_password(
                db.session,
                account_rules(),
                secret,
                request.form.get("password", "")[:1024],
                now=now(),
            )
        except ValidationFailed as exc:
            db.session.rollback()
            errors = exc.errors
        except accounts.LinkClosed:
            db.session.rollback()
            return _link_closed()
        else:
            _audit("password reset by e-mail", user)
            db.session.flush()
            _start_session(user)
            flash(_("Your new password is set. Any other session of yours has ended."), "success")
            return redirect(landing(user))
    status = 422 if errors else 200
    return render_template("accounts/reset.html", errors=errors), status


# --- the account page's forms --------------------------------------------------------------------


@bp.post("/account/name")
@login_required
def change_name():
    try:
        accounts.change_name(db.session, current_user, request.form.get("name", "")[:1000])
    except ValidationFailed as exc:
        db.session.rollback()
        return _account_page(422, errors=exc.errors, form=request.form.to_dict())
    flash(_("Your name is changed."), "success")
    return redirect(url_for("accounts.account"), 303)


@bp.post("/account/password")
@login_required
def change_password():
    user = current_user._get_current_object()
    try:
        accounts.change_password(
            db.session,
            account_rules(),
            user,
            request.form.get("current_password", "")[:1024],
            request.form.get("password", "")[:1024],
        )
    except ValidationFailed as exc:
        db.session.rollback()
        return _account_page(422, errors=exc.errors)
    _audit("password changed", user)
    login_user(user)  # this session goes on under the new nonce; the others end
    flash(_("Your password is changed. Any other session of yours has ended."), "success")
    return redirect(url_for("accounts.account"), 303)


@bp.post("/account/email")
@login_required
def change_email():
    user = current_user._get_current_object()
    new_email = request.form.get("email", "")[:300]
    try:
        link, secret = accounts.email_change_link(
            db.session,
            account_rules(),
            user,
            new_email,
            request.form.get("current_password", "")[:1024],
            now=now(),
        )
    except (ValidationFailed, Conflict) as exc:
        db.session.rollback()
        return _account_page(status_of(exc), errors=exc.errors, form={"email": new_email})
    except RateLimited as exc:
        db.session.rollback()
        errors = {"email": [exc.message]}
        return _account_page(429, errors=errors, form={"email": new_email})
    db.session.commit()
    if _mail(link.purpose, link.email, secret, user.language, name=user.name, email=link.email):
        flash(
            _(
                "We sent a link to %(email)s. Your address changes when you open it.",
                email=link.email,
            ),
            "success",
        )
    return redirect(url_for("accounts.account"), 303)


@bp.route("/account/email/<secret>", methods=["GET", "POST"])
def confirm_email(secret: str):
    try:
        link = accounts.find_link(db.session, LinkPurpose.CHANGE_EMAIL, secret, now())
        if request.method == "GET":
            return render_template("accounts/confirm_link.html", purpose="email", email=link.email)
        user = accounts.confirm_email_change(db.session, secret, now=now())
    except accounts.LinkClosed:
        db.session.rollback()
        return _link_closed()
    except Conflict as exc:
        db.session.rollback()
        return render_template("accounts/link_closed.html", message=exc.message), 409
    _audit("e-mail address changed", user, email=user.email)
    flash(_("Your e-mail address is now %(email)s.", email=user.email), "success")
    return redirect(
        url_for("accounts.account") if current_user.is_authenticated else url_for("accounts.login")
    )


@bp.post("/account/notifications")
@login_required
def email_preferences():
    wanted = set(request.form.getlist("email_on"))
    accounts.set_email_preferences(
        db.session, current_user, [k for k in OPTIONAL_MAIL if k not in wanted], OPTIONAL_MAIL
    )
    flash(_("Your e-mail choices are saved."), "success")
    return redirect(url_for("accounts.account") + "#notifications", 303)


# --- colleagues ----------------------------------------------------------------------------------


def _colleagues_page(status: int = 200, **extra: Any) -> tuple[str, int]:
    values = {
        "members": accounts.colleagues(db.session, current_user),
        "invitations": accounts.open_invitations(db.session, current_user, now()),
        "errors": {},
        "form": {},
    }
    return render_template("accounts/colleagues.html", **(values | extra)), status


@bp.get("/account/colleagues")
@login_required
def colleagues():
    return _colleagues_page()


@bp.post("/account/colleagues")
@login_required
def invite():
    owner = current_user._get_current_object()
    email = request.form.get("email", "")[:300]
    try:
        link, secret = accounts.invite(db.session, owner, email, now=now())
    except (ValidationFailed, Conflict, Forbidden) as exc:
        db.session.rollback()
        errors = exc.errors or {"email": [exc.message]}
        return _colleagues_page(status_of(exc), errors=errors, form={"email": email})
    except RateLimited as exc:
        db.session.rollback()
        return _colleagues_page(429, errors={"email": [exc.message]}, form={"email": email})
    _audit("colleague invited", owner, email=link.email)
    db.session.commit()
    params = {"inviter": owner.name, "organisation": owner.organisation.name}
    if _mail(link.purpose, link.email, secret, owner.language, **params):
        flash(
            _("We sent an invitation to %(email)s. It is valid for 7 days.", email=link.email),
            "success",
        )
    return redirect(url_for("accounts.colleagues"), 303)


@bp.post("/account/invitations/<int:link_id>/withdraw")
@login_required
def withdraw_invitation(link_id: int):
    try:
        accounts.withdraw_invitation(db.session, current_user, link_id, now=now())
    except (NotFoundError, Forbidden):
        abort(404)
    flash(_("The invitation is withdrawn."), "success")
    return redirect(url_for("accounts.colleagues"), 303)


@bp.post("/account/colleagues/<int:user_id>/remove")
@login_required
def remove_colleague(user_id: int):
    owner = current_user._get_current_object()
    try:
        member = accounts.remove_colleague(db.session, owner, user_id)
    except (NotFoundError, Forbidden):
        abort(404)
    except Conflict as exc:
        return _colleagues_page(409, errors={"members": [exc.message]})
    _audit("colleague removed", owner, member=member.email)
    flash(_("%(name)s can no longer sign in for your organisation.", name=member.name), "success")
    return redirect(url_for("accounts.colleagues"), 303)


@bp.route("/invitations/<secret>", methods=["GET", "POST"])
def accept_invitation(secret: str):
    try:
        found = accounts.invitation(db.session, secret, now=now())
    except accounts.LinkClosed:
        return _link_closed()
    if current_user.is_authenticated:
        return render_template(
            "accounts/invitation.html", found=found, signed_in=True, errors={}, form={}
        )
    errors: dict[str, list[str]] = {}
    form = {"name": ""}
    status = 200
    if request.method == "POST":
        form = {"name": request.form.get("name", "")[:300]}
        try:
            user = accounts.accept_invitation(
                db.session,
                account_rules(),
                secret,
                form["name"],
                request.form.get("password", "")[:1024],
                now=now(),
            )
        except accounts.LinkClosed:
            db.session.rollback()
            return _link_closed()
        except (ValidationFailed, Conflict) as exc:
            db.session.rollback()
            errors, status = exc.errors or {"email": [exc.message]}, status_of(exc)
        else:
            _audit("joined by invitation", user, organisation=found.organisation.name)
            db.session.flush()
            _start_session(user)
            flash(
                _(
                    "Welcome, %(name)s. You have joined %(organisation)s.",
                    name=user.name,
                    organisation=found.organisation.name,
                ),
                "success",
            )
            return redirect(landing(user))
    return render_template(
        "accounts/invitation.html", found=found, signed_in=False, errors=errors, form=form
    ), status


# --- the organisation's profile ------------------------------------------------------------------

PROFILE_FIELDS = ("legal_name", "registry_id", "address", "vat_id", "website", "description")


@bp.route("/organisation", methods=["GET", "POST"])
@login_required
def organisation_profile():
    """The owner edits the organisation's public profile; colleagues read it."""
    owner = current_user._get_current_object()
    organisation = owner.organisation
    form = {name: getattr(organisation, name) for name in PROFILE_FIELDS}
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        form = {name: request.form.get(name, "")[:5000] for name in PROFILE_FIELDS}
        try:
            accounts.update_organisation(db.session, owner, accounts.OrganisationProfile(**form))
        except Forbidden:
            abort(403)
        except ValidationFailed as exc:
            db.session.rollback()
            errors, status = exc.errors, 422
        else:
            _audit("organisation profile changed", owner, organisation=organisation.id)
            flash(_("The profile of %(name)s is saved.", name=organisation.name), "success")
            return redirect(url_for("accounts.organisation_profile"), 303)
    page = render_template(
        "accounts/organisation.html", organisation=organisation, form=form, errors=errors
    )
    return page, status
