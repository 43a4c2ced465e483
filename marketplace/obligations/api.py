"""API: social-return obligations, their credits, and the contracting authorities."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from marketplace.accounts.models import Role
from marketplace.api.auth import authenticated, current_api_user
from marketplace.core import validate
from marketplace.core.clock import now
from marketplace.core.schemas import (
    PageArgsSchema,
    SaneDate,
    SingleLine,
    Text,
    WholeNumber,
    page_schema,
    row_id,
)
from marketplace.extensions import db
from marketplace.obligations import services
from marketplace.obligations.models import MAX_REASON, ObligationState
from outcomes.errors import NotFound

blp = Blueprint(
    "obligations_api", __name__, url_prefix="/api/v1", description="Social-return obligations"
)


def _fraction(**kwargs: Any) -> ma.fields.Decimal:
    return ma.fields.Decimal(as_string=True, allow_nan=False, **kwargs)


class ObligationInSchema(ma.Schema):
    authority_organisation_id = row_id(required=True)
    contract_reference = SingleLine(required=True, validate=validate.Length(min=1, max=200))
    contract_title = SingleLine(required=True, validate=validate.Length(min=3, max=200))
    contract_value_cents = WholeNumber(
        required=True, validate=validate.Range(min=1, max=services.MAX_CONTRACT_VALUE_CENTS)
    )
    percentage = _fraction(
        required=True,
        validate=validate.Range(min=Decimal(0), max=Decimal(1), min_inclusive=False),
        metadata={"description": 'a fraction of the contract value: "0.05" is 5%'},
    )
    due_date = SaneDate(required=True)


class ObligationOutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    state = ma.fields.Function(lambda o: o.state.value, required=True)
    buyer_organisation_id = ma.fields.Integer(required=True)
    buyer = ma.fields.String(required=True, attribute="buyer_name")
    authority_organisation_id = ma.fields.Integer(required=True)
    authority = ma.fields.String(required=True, attribute="authority_name")
    contract_reference = ma.fields.String(required=True)
    contract_title = ma.fields.String(required=True)
    contract_value_cents = ma.fields.Integer(required=True)
    percentage = _fraction(required=True)
    obligation_cents = ma.fields.Integer(required=True)
    credited_cents = ma.fields.Integer(
        required=True, metadata={"description": "credits not rejected (pending and signed off)"}
    )
    signed_off_cents = ma.fields.Integer(required=True)
    remaining_cents = ma.fields.Integer(
        required=True, metadata={"description": "obligation_cents - credited_cents, at least 0"}
    )
    pending_credits = ma.fields.Integer(required=True)
    due_date = ma.fields.Date(required=True)
    reason = ma.fields.String(required=True, metadata={"description": "why it was rejected"})
    created_at = ma.fields.AwareDateTime(required=True)


ObligationPageSchema = page_schema(ObligationOutSchema, "ObligationPage")


class ObligationsArgsSchema(PageArgsSchema):
    state = ma.fields.Enum(ObligationState, by_value=True, load_default=None)


class DecisionInSchema(ma.Schema):
    reason = Text(
        load_default="",
        validate=validate.Length(max=MAX_REASON),
        metadata={"description": "required (10 characters or more) to reject"},
    )


class CreditOutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    obligation_id = ma.fields.Integer(required=True)
    retirement_id = ma.fields.Integer(required=True)
    state = ma.fields.Function(lambda c: c.state.value, required=True)
    tokens = ma.fields.Integer(required=True)
    price_cents = ma.fields.Integer(required=True)
    factor = _fraction(required=True)
    credit_cents = ma.fields.Integer(required=True)
    reason = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)


class AuthorityOutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    factor = _fraction(required=True, attribute="sroi_factor")


class FactorInSchema(ma.Schema):
    factor = _fraction(
        required=True,
        validate=validate.Range(min=services.FACTOR_RANGE[0], max=services.FACTOR_RANGE[1]),
    )


def _figures(obligation_id: int) -> services.Figures:
    return services.figures(db.session, current_api_user(), obligation_id)


@blp.route("/obligations")
class Obligations(MethodView):
    @authenticated(blp, Role.BUYER)
    @blp.arguments(ObligationInSchema)
    @blp.response(201, ObligationOutSchema)
    @blp.alt_response(409, response="CONFLICT", description="obligation_exists")
    def post(self, data):
        """Register a social-return obligation of a public contract, for its authority to
        accept. ``obligation_cents = round_half_even(contract_value_cents * percentage)``."""
        made = services.register(
            db.session, current_api_user(), services.NewObligation(**data), now=now()
        )
        return _figures(made.id)

    @authenticated(blp, Role.BUYER, Role.AUTHORITY)
    @blp.arguments(ObligationsArgsSchema, location="query")
    @blp.response(200, ObligationPageSchema)
    def get(self, args):
        """A buyer's own obligations, or an authority's: pending first, then by due date."""
        items, total = services.listing(
            db.session,
            current_api_user(),
            state=args["state"],
            page=args["page"],
            per_page=args["per_page"],
        )
        return {"items": items, "page": args["page"], "per_page": args["per_page"], "total": total}


@blp.route("/obligations/<int:obligation_id>")
class OneObligation(MethodView):
    @authenticated(blp, Role.BUYER, Role.AUTHORITY)
    @blp.response(200, ObligationOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, obligation_id):
        """One obligation, for its buyer and its authority."""
        return _figures(obligation_id)


@blp.route("/obligations/<int:obligation_id>/credits")
class ObligationCredits(MethodView):
    @authenticated(blp, Role.BUYER, Role.AUTHORITY)
    @blp.response(200, CreditOutSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, obligation_id):
        """The credits retirements earned toward an obligation, oldest first."""
        return [c for c, _ in services.credits(db.session, current_api_user(), obligation_id)]


def _decision(name: str, doc: str, act, out: type[ma.Schema]):
    class Decision(MethodView):
        @authenticated(blp, Role.AUTHORITY)
        @blp.arguments(DecisionInSchema)
        @blp.response(200, out)
        @blp.alt_response(404, response="NOT_FOUND")
        @blp.alt_response(409, response="CONFLICT", description="invalid_transition")
        def post(self, data, **ids):
            return act(data, *ids.values())

    Decision.post.__doc__ = doc
    Decision.__name__ = name
    return Decision


def _accept(data, obligation_id):
    services.accept(db.session, current_api_user(), obligation_id, now=now())
    return _figures(obligation_id)


def _reject(data, obligation_id):
    services.reject(db.session, current_api_user(), obligation_id, reason=data["reason"], now=now())
    return _figures(obligation_id)


def _sign_off(data, credit_id):
    return services.sign_off(db.session, current_api_user(), credit_id, now=now())


def _reject_credit(data, credit_id):
    return services.reject_credit(
        db.session, current_api_user(), credit_id, reason=data["reason"], now=now()
    )


blp.route("/obligations/<int:obligation_id>/accept")(
    _decision(
        "AcceptObligation",
        "Accept a pending obligation (its authority): retirements may count toward it.",
        _accept,
        ObligationOutSchema,
    )
)
blp.route("/obligations/<int:obligation_id>/reject")(
    _decision(
        "RejectObligation",
        "Reject a pending obligation (its authority), with the reason.",
        _reject,
        ObligationOutSchema,
    )
)
blp.route("/credits/<int:credit_id>/sign-off")(
    _decision(
        "SignOffCredit",
        "Sign off a credit toward one of your obligations (its authority).",
        _sign_off,
        CreditOutSchema,
    )
)
blp.route("/credits/<int:credit_id>/reject")(
    _decision(
        "RejectCredit",
        "Reject a credit (its authority), with the reason: it no longer counts toward the "
        "obligation; the retirement stays final.",
        _reject_credit,
        CreditOutSchema,
    )
)


@blp.route("/authorities")
class Authorities(MethodView):
    @blp.response(200, AuthorityOutSchema(many=True))
    def get(self):
        """The contracting authorities and their published conversion factors (public)."""
        return services.authorities(db.session)


@blp.route("/authorities/<int:organisation_id>/factor")
class AuthorityFactor(MethodView):
    @authenticated(blp, Role.AUTHORITY)
    @blp.arguments(FactorInSchema)
    @blp.response(200, AuthorityOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def put(self, data, organisation_id):
        """Publish your authority's conversion factor: later credits use it, earlier ones
        keep theirs."""
        user = current_api_user()
        if organisation_id != user.organisation_id:
            raise NotFound("No such authority.")
        return services.set_factor(db.session, user, data["factor"], now=now())
