"""API: pledges, on-session payment, closing funding early, payout accounts."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request, url_for
from flask.views import MethodView
from flask_babel import get_locale
from flask_smorest import Blueprint

from marketplace.accounts.models import Role, Scope
from marketplace.api.auth import admit_reading, authenticated, current_api_user, current_caller
from marketplace.core import idempotency as idempotent
from marketplace.core.clock import now, today
from marketplace.core.errors import NotFound, ValidationFailed
from marketplace.extensions import db
from marketplace.funding import one_statement, services
from marketplace.funding.models import Pledge
from marketplace.funding.schemas import (
    OnboardingInSchema,
    PayInSchema,
    PayoutAccountOutSchema,
    PledgeInSchema,
    PledgeOutSchema,
    PledgePageSchema,
    PledgeQuerySchema,
)
from marketplace.funding.services import NewPledge
from marketplace.payments import services as payments
from marketplace.payments.gateway import MandateAcceptance
from marketplace.payments.services import SepaAccount
from marketplace.projects.schemas import ProjectOutSchema
from marketplace.receipts import document
from marketplace.receipts import services as receipts
from marketplace.web.redirects import same_origin

blp = Blueprint("funding_api", __name__, url_prefix="/api/v1", description="Funding")


def gateway():
    return current_app.extensions["stripe"]


def settings():
    return current_app.extensions["settings"]


def pledge_body(pledge: Pledge | NewPledge, next_action: dict | None = None) -> dict[str, Any]:
    """The pledge's fields, for PledgeOutSchema."""
    return {
        "id": pledge.id,
        "project_id": pledge.project_id,
        "tokens": pledge.tokens,
        "amount_cents": pledge.amount_cents,
        "state": pledge.state.value,
        "payment_method": pledge.payment_method,
        "card": pledge.card,
        "grace_until": pledge.grace_until,
        "created_at": pledge.created_at,
        "next_action": next_action,
        "payment_type": pledge.payment_type,
        "matched": pledge.matched,
        "bank_transfer": transfer_body(pledge) if isinstance(pledge, Pledge) else None,
    }


def transfer_body(pledge: Pledge) -> dict[str, Any] | None:
    """Where and how much to transfer, while a bank transfer is awaited."""
    shown = services.transfer_details(pledge)
    if shown is None:
        return None
    return {**shown, "invoice_url": url_for("funding_api.PledgeInvoice", pledge_id=pledge.id)}


def invoice_pdf(pledge: Pledge) -> Response:
    """The invoice of a bank transfer awaited: rendered now, in the reader's language, with
    what has arrived so far (NotFound when none is awaited)."""
    shown = services.transfer_details(pledge)
    if shown is None:
        raise NotFound("This pledge has no bank transfer awaited.")
    settings = current_app.extensions["settings"]
    issuer = receipts.Issuer.of(settings)
    text = document.invoice_words(
        issued_at=now(),
        details=receipts.invoice_facts(db.session, pledge, issuer),
        transfer=shown,
        language=str(get_locale() or "en"),
        currency=settings.currency,
        zone=settings.timezone,
    )
    return current_app.response_class(
        document.render(text, author=issuer.legal_name),
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f"inline; filename=invoice-{shown['reference']}.pdf",
            "Cache-Control": "private, no-store",
        },
    )


def debit_terms(data: dict[str, Any], user: Any) -> dict[str, Any]:
    """The SEPA details of a pledge request: the account typed (``sepa_debit``) and the
    buyer's acceptance of the mandate, recorded with the request's address and browser,
    and Stripe's limit per debit."""
    typed = data["payment_method"] == "sepa_debit"
    accepted = bool(data.get("mandate_accepted"))
    limit = current_app.extensions["settings"].sepa_limit_cents
    if not (typed or accepted):  # a saved card's or account's pledge: no mandate to record
        return {"sepa": None, "mandate": None, "sepa_limit_cents": limit}
    acceptance = MandateAcceptance(
        ip_address=request.remote_addr or "",
        user_agent=(request.user_agent.string or "unknown")[:500],
    )
    return {
        "sepa": (
            SepaAccount(data["iban"], data["account_holder"], user.email, acceptance)
            if typed
            else None
        ),
        "mandate": acceptance if accepted else None,
        "sepa_limit_cents": limit,
    }


_STORED = PledgeOutSchema()


def stored_body(pledge: NewPledge) -> dict[str, Any]:
    """The JSON an idempotent replay returns: exactly the first response's."""
    return _STORED.dump(pledge_body(pledge))


@blp.route("/projects/<int:project_id>/pledges")
class Pledges(MethodView):
    @authenticated(blp, Role.BUYER, scope=Scope.MONEY, caller=True, first_read=True)
    @blp.arguments(PledgeInSchema())  # one instance: none made per request
    @blp.response(201, PledgeOutSchema)
    @blp.alt_response(402, response="PAYMENT_REQUIRED", description="payment_method_declined")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(
        409,
        response="CONFLICT",
        description="insufficient_tokens, funding_closed, idempotency_conflict",
    )
    @blp.alt_response(
        503,
        response="SERVICE_UNAVAILABLE",
        description="payment_provider_unavailable: nothing was pledged; retry",
    )
    @blp.doc(parameters=[idempotent.OPENAPI_PARAMETER])
    def post(self, data, project_id):
        """Pledge tokens: the card is saved now and charged when funding closes."""
        session = db.session
        method = data["payment_method"]
        ahead = None
        if one_statement.reads_ahead(session, method):  # the caller read with it
            user, ahead = admit_reading(
                lambda digest: one_statement.read_ahead_as_caller(
                    session,
                    digest=digest,
                    project_id=project_id,
                    payment_method=method,
                    key=idempotent.key_of_request(),
                )
            )
        else:
            user = current_caller()
        key = idempotent.from_request(user.id)
        pledge = services.create_pledge(
            db.session,
            gateway(),
            user,
            project_id,
            tokens=data["tokens"],
            payment_method=data["payment_method"],
            now=now(),
            today=today(),
            idempotency=key,
            respond=stored_body,
            hand_over=db.for_process,
            limit_cents=current_app.extensions["settings"].unverified_pledge_limit_cents,
            ahead=ahead,
            **debit_terms(data, user),
        )
        db.commit_now()  # the project's row is let go before the answer is made
        return pledge_body(pledge)


@blp.route("/pledges")
class OwnPledges(MethodView):
    @authenticated(blp, Role.BUYER, Role.ADMIN)
    @blp.arguments(PledgeQuerySchema, location="query")
    @blp.response(200, PledgePageSchema)
    def get(self, args):
        """Your organisation's pledges, newest first."""
        items, total = services.list_pledges(
            db.session,
            current_api_user(),
            page=args["page"],
            per_page=args["per_page"],
            project_id=args.get("project_id"),
        )
        return {
            "items": [pledge_body(p) for p in items],
            "page": args["page"],
            "per_page": args["per_page"],
            "total": total,
        }


@blp.route("/pledges/<int:pledge_id>")
class OnePledge(MethodView):
    @authenticated(blp, Role.BUYER, Role.ADMIN)
    @blp.response(200, PledgeOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, pledge_id):
        """One of your pledges."""
        return pledge_body(services.get_pledge(db.session, current_api_user(), pledge_id))


@blp.route("/pledges/<int:pledge_id>/invoice.pdf")
class PledgeInvoice(MethodView):
    @authenticated(blp, Role.BUYER, Role.ADMIN)
    @blp.doc(
        responses={
            "200": {"description": "The invoice", "content": {"application/pdf": {}}},
            "404": {"description": "No such pledge, or no bank transfer awaited"},
        }
    )
    def get(self, pledge_id):
        """The invoice of a bank transfer awaited (PDF, in your language)."""
        pledge = services.get_pledge(db.session, current_api_user(), pledge_id)
        return invoice_pdf(pledge)


@blp.route("/pledges/<int:pledge_id>/cancel")
class CancelPledge(MethodView):
    @authenticated(blp, Role.BUYER, scope=Scope.MONEY)
    @blp.response(200, PledgeOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="invalid_transition, funding_closed")
    def post(self, pledge_id):
        """Cancel a committed pledge while funding is open."""
        pledge = services.cancel_pledge(
            db.session, current_api_user(), pledge_id, now=now(), today=today()
        )
        return pledge_body(pledge)


@blp.route("/pledges/<int:pledge_id>/pay")
class PayPledge(MethodView):
    @authenticated(blp, Role.BUYER, scope=Scope.MONEY)
    @blp.arguments(PayInSchema)
    @blp.response(200, PledgeOutSchema)
    @blp.alt_response(402, response="PAYMENT_REQUIRED", description="payment_method_declined")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(
        503, response="SERVICE_UNAVAILABLE", description="payment_provider_unavailable"
    )
    @blp.alt_response(
        409,
        response="CONFLICT",
        description="invalid_transition (not payment_failed), funding_closed "
        "(the grace period is over)",
    )
    def post(self, data, pledge_id):
        """Pay a pledge whose charge failed, within its grace period.

        When the bank asks for authentication the pledge stays ``payment_failed``
        with ``next_action``: confirm it in the browser with Stripe.js.
        """
        user = current_api_user()
        outcome = services.pay_pledge(
            db.for_process(),
            gateway(),
            user,
            pledge_id,
            payment_method=data["payment_method"],
            now=now(),
            grace_hours=settings().payment_grace_hours,
        )
        action = None
        if outcome.state.value == "requires_action":
            action = {"type": "authenticate", "client_secret": outcome.client_secret}
        return pledge_body(services.get_pledge(db.session, user, pledge_id), action)


@blp.route("/projects/<int:project_id>/close-funding")
class CloseFunding(MethodView):
    @authenticated(blp, Role.ENTREPRENEUR, scope=Scope.MONEY)
    @blp.response(200, ProjectOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="threshold_not_met, invalid_transition")
    def post(self, project_id):
        """Close funding early once the threshold is met; the pledges are then charged."""
        return services.close_funding_early(db.session, current_api_user(), project_id, now=now())


def _account_body(account, url: str | None = None) -> dict[str, Any]:
    return {
        "account_id": account.account_id if account else None,
        "details_submitted": bool(account and account.details_submitted),
        "payouts_enabled": bool(account and account.payouts_enabled),
        "onboarding_url": url,
    }


@blp.route("/payouts/account")
class PayoutAccount(MethodView):
    @authenticated(blp, Role.ENTREPRENEUR)
    @blp.response(200, PayoutAccountOutSchema)
    def get(self):
        """Your organisation's payout account (Stripe Connect) and whether it is ready."""
        user = current_api_user()
        account = payments.connected_account(db.session, user.organisation_id)
        if account is not None and not account.ready:
            account = payments.refresh_account(db.session, gateway(), account, now())
        return _account_body(account)

    @authenticated(blp, Role.ENTREPRENEUR)
    @blp.arguments(OnboardingInSchema)
    @blp.response(200, PayoutAccountOutSchema)
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    def post(self, data):
        """Start (or continue) onboarding at Stripe; open ``onboarding_url`` in a browser."""
        user = current_api_user()
        back = data.get("return_url") or url_for("funding.payouts", _external=True)
        # Stripe sends the person back there: only to this site (as configured, or as
        # this request reached it).
        if not any(same_origin(back, home) for home in (settings().public_url, request.host_url)):
            raise ValidationFailed(errors={"return_url": ["Use an address of this site."]})
        name, email = user.organisation.name, user.email
        link = payments.start_onboarding(
            db.for_process(),
            gateway(),
            organisation_id=user.organisation_id,
            organisation_name=name,
            email=email,
            return_url=back,
            refresh_url=back,
            now=now(),
        )
        return _account_body(payments.connected_account(db.session, user.organisation_id), link)
