"""The application factory.

``create_app(config)`` takes typed ``Settings`` (read from the environment when
omitted), binds the extensions, and registers the API, the web pages, the
error mapping and the CLI. It refuses to start with unsafe settings.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Flask,
    before_render_template,
    flash,
    jsonify,
    redirect,
    request,
    session,
    url_for,
)
from flask_babel import get_locale, gettext
from flask_login import current_user, logout_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from config import PROJECT_ROOT, Settings, load_settings
from config.settings import ConfigError
from marketplace.accounts.passwords import PasswordHasher, PasswordPolicy
from marketplace.accounts.services import AccountRules, LoginThrottle
from marketplace.api import init_api, is_api_request
from marketplace.api.problems import from_marketplace_error, status_of
from marketplace.core import idempotency as idempotent
from marketplace.core.clock import now, system_clock
from marketplace.core.errors import MarketplaceError, Unavailable
from marketplace.core.idempotency import Replayed
from marketplace.core.observability import init_request_ids
from marketplace.core.schemas import ROW_ID_MAX
from marketplace.core.storage import open_storage
from marketplace.extensions import babel, csrf, db, login_manager, migrate
from marketplace.payments.gateway import StripeGateway
from marketplace.payments.pacing import Limits, Pacer
from marketplace.web.messages import translated as _translated

SUPPORTED_LOCALES = ("en", "nl")
# A signed-in page session ends this long after sign-in, whatever the activity.
SESSION_HOURS = 12
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


log = logging.getLogger(__name__)


class DatabaseUnavailable(Unavailable):
    code = "database_unavailable"
    title = "The database is unavailable; please try again shortly"


class RowIdConverter(IntegerConverter):
    """``<int:id>`` in a path: a row id the database can hold (PostgreSQL ``integer``).

    A larger number is no page (404) rather than an overflow in the driver; the
    OpenAPI document states the bound, as flask-smorest reads ``max`` from here.
    """

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", ROW_ID_MAX)
        super().__init__(map, *args, **kwargs)


def create_app(config: Settings | None = None) -> Flask:
    settings = (config or load_settings()).check()
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.is_testing,
        SESSION_COOKIE_NAME="som_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=settings.session_cookie_secure,
        REMEMBER_COOKIE_SAMESITE="Lax",
        # The CSRF token lives as long as the session that holds it.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_CHECK_DEFAULT=False,
        MAX_CONTENT_LENGTH=(settings.evidence_max_mb + 6) * 1024 * 1024,
        BABEL_DEFAULT_LOCALE="en",
        BABEL_DEFAULT_TIMEZONE=settings.timezone,
    )
    app.extensions["settings"] = settings
    app.extensions["clock"] = system_clock
    app.extensions["account_rules"] = AccountRules(
        hasher=PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost_kib=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
        ),
        policy=PasswordPolicy(min_length=settings.password_min_length),
        throttle=LoginThrottle(
            max_failures=settings.login_max_failures,
            window=timedelta(seconds=settings.login_window_seconds),
        ),
    )

    try:
        app.extensions["evidence"] = open_storage(
            settings.storage_url,
            folder=settings.evidence_path,
            max_bytes=settings.evidence_max_mb * 1024 * 1024,
            endpoint_url=settings.storage_endpoint_url,
        )
    except ValueError as bad:
        raise ConfigError(str(bad)) from None
    db.init_app(
        app,
        settings.database_url,
        settings.db_pool_size,
        prepared_statements=settings.db_prepared_statements,
    )
    try:
        limits = Limits.parse(settings.stripe_rate_limit, settings.stripe_api_key)
    except ValueError as bad:
        raise ConfigError(f"STRIPE_RATE_LIMIT: {bad}") from None
    app.extensions["stripe"] = StripeGateway(
        settings.stripe_api_key,
        settings.stripe_api_base,
        settings.currency,
        settings.stripe_webhook_secret,
        # The buyer's browser comes back here after the bank's 3-D Secure page.
        return_url=settings.public_url + "/pledges",
        pacer=Pacer(app.extensions["db"].engine, limits) if limits else None,
    )
    migrate.init_app(
        app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True, compare_type=True
    )
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.session_protection = "strong"
    # Its notice on the login page, in the reader's language.
    login_manager.login_message = LOGIN_FIRST
    login_manager.login_message_category = "info"
    login_manager.localize_callback = gettext
    csrf.init_app(app)
    babel.init_app(app, locale_selector=_select_locale)

    if settings.trusted_proxies:
        # Behind a TLS-terminating proxy: the client's address (login throttle, audit
        # log) and https (secure cookies, HSTS) come from the proxy's headers.
        proxies = settings.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # Flask's documented way
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )
    # Before any route: every <int:...> in a path is a row id.
    app.url_map.converters["int"] = RowIdConverter
    init_request_ids(app)
    init_api(app)
    _register_web(app)
    _register_error_handlers(app)
    _register_cli(app)

    @app.before_request
    def _sign_out_when_idle():
        """Pages only (the API uses tokens): after ``SESSION_IDLE_MINUTES`` without a
        request the session ends, whatever is left of its 12 hours."""
        if is_api_request() or not current_user.is_authenticated:
            return None
        moment = now().timestamp()
        last = session.get("seen")
        session["seen"] = moment
        started = session.get("started")
        if not isinstance(started, int | float) or moment - started > SESSION_HOURS * 3600:
            logout_user()
            session.clear()
            flash(gettext("Your session has ended; please log in again."), "warning")
            return redirect(url_for("accounts.login", next=request.path))
        if last is not None and moment - last > settings.session_idle_minutes * 60:
            logout_user()
            session.clear()
            flash(gettext("You were signed out after a while without activity."), "warning")
            return redirect(url_for("accounts.login", next=request.path))
        return None

    @app.before_request
    def _protect_forms() -> None:
        # Pages use the session cookie and so need CSRF tokens; the API takes
        # bearer tokens only and is exempt.
        # Stripe's webhooks are signed instead (verified on the raw body).
        if not is_api_request() and not request.path.startswith("/webhooks/"):
            csrf.protect()

    # Forms may lead to Stripe's hosted onboarding (the payouts form redirects there);
    # a browser applies form-action to that redirect too.
    onboarding = "https://connect.stripe.com"
    if settings.stripe_api_base:
        parts = urlsplit(settings.stripe_api_base)
        onboarding += f" {parts.scheme}://{parts.netloc}"
    base_policy = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", f"form-action 'self' {onboarding}"
    )

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not is_api_request():
            policy = base_policy
            if settings.stripe_publishable_key:
                policy = policy.replace(
                    "script-src 'self'", "script-src 'self' https://js.stripe.com"
                ) + (
                    "; frame-src https://js.stripe.com https://hooks.stripe.com"
                    "; connect-src 'self' https://api.stripe.com"
                )
            response.headers.setdefault("Content-Security-Policy", policy)
        if request.is_secure:
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        return response

    return app


def _translate_messages(sender, template, context, **extra) -> None:
    """Pages show the services' field errors and error details: translate them on the way."""
    errors = context.get("errors")
    if isinstance(errors, dict):
        context["errors"] = {
            name: [_translated(m) for m in messages] if isinstance(messages, list) else messages
            for name, messages in errors.items()
        }
    if isinstance(context.get("message"), str):
        context["message"] = _translated(context["message"])


LOGIN_FIRST = "Log in to see this page."


def _select_locale() -> str | None:
    """The language the person chose (a cookie), else the browser's, else English."""
    chosen = request.cookies.get("som_lang")
    if chosen in SUPPORTED_LOCALES:
        return chosen
    return request.accept_languages.best_match(SUPPORTED_LOCALES) or "en"


def _register_web(app: Flask) -> None:
    from marketplace.accounts.views import bp as accounts_bp
    from marketplace.audit.views import init_audit
    from marketplace.catalogue.views import bp as catalogue_bp
    from marketplace.dashboards.views import bp as dashboards_bp
    from marketplace.disputes.views import bp as disputes_bp
    from marketplace.evaluations.views import bp as evaluations_bp
    from marketplace.funding.views import bp as funding_bp
    from marketplace.notifications.views import bp as notifications_bp
    from marketplace.notifications.views import notice_text, unread_count
    from marketplace.obligations.views import bp as obligations_bp
    from marketplace.pools.views import bp as pools_bp
    from marketplace.projects.views import bp as projects_bp
    from marketplace.receipts.views import bp as receipts_bp
    from marketplace.reconciliation.views import bp as reconciliation_bp
    from marketplace.registry.views import bp as registry_bp
    from marketplace.rounds.views import bp as rounds_bp
    from marketplace.settlement.views import bp as settlement_bp
    from marketplace.web.formatting import register_filters
    from marketplace.web.views import bp as web_bp
    from marketplace.webhooks.views import bp as webhooks_bp

    app.register_blueprint(web_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(catalogue_bp)
    app.register_blueprint(projects_bp)
    app.register_blueprint(funding_bp)
    app.register_blueprint(reconciliation_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(settlement_bp)
    app.register_blueprint(registry_bp)
    app.register_blueprint(evaluations_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(dashboards_bp)
    app.register_blueprint(disputes_bp)
    app.register_blueprint(obligations_bp)
    app.register_blueprint(rounds_bp)
    app.register_blueprint(pools_bp)
    app.register_blueprint(receipts_bp)
    init_audit(app)
    app.jinja_env.globals["unread_notices"] = unread_count
    app.jinja_env.globals["notice_text"] = notice_text
    app.jinja_env.filters["translated"] = _translated
    before_render_template.connect(_translate_messages, app)
    register_filters(app)

    @app.context_processor
    def _globals():
        return {"product_name": "Social Outcomes Marketplace", "get_locale": get_locale}


def _register_error_handlers(app: Flask) -> None:
    from marketplace.web.errors import render_error_page, render_marketplace_error

    @app.errorhandler(MarketplaceError)
    def _marketplace_error(error: MarketplaceError):
        db.session.rollback()
        if is_api_request():
            return from_marketplace_error(error)
        return render_marketplace_error(error, status_of(error))

    @app.errorhandler(Replayed)
    def _replayed(signal: Replayed):
        """An Idempotency-Key used before with this request: its first response again."""
        db.session.rollback()
        record = idempotent.replay(db.session, signal.idempotency)
        if record is None:  # cannot happen: Replayed is raised only once a record exists
            raise RuntimeError("a replayed key without its record")
        replayed = jsonify(record.response)
        replayed.status_code = record.status_code
        replayed.headers["Idempotent-Replayed"] = "true"
        return replayed

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError):
        return render_error_page(error)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_unreachable(error: DBAPIError):
        """The database went away mid-request (a restart, a failover): nothing was
        committed, the pool drops the dead connection, and the caller may retry."""
        log.warning("database unreachable: %s", error.orig)
        with contextlib.suppress(DBAPIError):
            db.session.rollback()
        answer = DatabaseUnavailable("The database cannot be reached just now; try again shortly.")
        response = _marketplace_error(answer)
        response = app.make_response(response)
        response.headers["Retry-After"] = "5"
        return response


def _register_cli(app: Flask) -> None:
    from marketplace.cli import register_commands

    register_commands(app)
