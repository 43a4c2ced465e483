"""API: matchfunding pools, opened by verified buyer organisations."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from marketplace.accounts.models import Organisation, Role, Scope
from marketplace.api.auth import authenticated, current_api_user
from marketplace.core import validate
from marketplace.core.clock import now
from marketplace.core.schemas import SingleLine, WholeNumber, row_id
from marketplace.dashboards.pools import PoolFigures, pool_figures
from marketplace.extensions import db
from marketplace.payments import services as payments
from marketplace.payments.models import BANK_TRANSFER
from marketplace.pools import services
from marketplace.rounds.models import THEMES, Round
from outcomes.errors import ValidationFailed

blp = Blueprint("pools_api", __name__, url_prefix="/api/v1", description="Matchfunding pools")

MAX_CENTS = 10**12


class PoolInSchema(ma.Schema):
    name = SingleLine(load_default="", validate=validate.Length(max=120))
    budget_cents = WholeNumber(required=True, validate=validate.Range(min=100, max=MAX_CENTS))
    match_ratio = ma.fields.Decimal(
        as_string=True,
        allow_nan=False,
        required=True,
        places=4,
        validate=validate.Range(min=0, max=10, min_inclusive=False),
        metadata={"description": "Tokens matched per token pledged: 1.0 doubles a pledge."},
    )
    cap_per_project_cents = WholeNumber(
        required=True, validate=validate.Range(min=100, max=MAX_CENTS)
    )
    round_id = row_id(allow_none=True)
    themes = ma.fields.List(ma.fields.String(validate=validate.OneOf(THEMES)), load_default=list)
    cities = ma.fields.List(
        SingleLine(validate=validate.Length(min=2, max=80)),
        load_default=list,
        validate=validate.Length(max=50),
    )
    payment_method = SingleLine(
        required=True,
        validate=validate.Length(min=3, max=255),
        metadata={
            "description": "A card or SEPA PaymentMethod id saved before (or a card to save "
            "now), or bank_transfer: each matched pledge is paid with it at close."
        },
    )


class PoolProjectSchema(ma.Schema):
    project_id = ma.fields.Integer(required=True)
    title = ma.fields.String(required=True)
    tokens = ma.fields.Integer(required=True)
    committed_cents = ma.fields.Integer(required=True)
    charged_cents = ma.fields.Integer(required=True)
    refunded_cents = ma.fields.Integer(required=True)
    tokens_paid = ma.fields.Integer(required=True)
    tokens_minted = ma.fields.Integer(allow_none=True, required=True)
    verified_value_cents = ma.fields.Integer(allow_none=True, required=True)


class PoolOutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    organisation_id = ma.fields.Integer(required=True)
    state = ma.fields.String(required=True)
    budget_cents = ma.fields.Integer(required=True)
    match_ratio = ma.fields.Decimal(as_string=True, required=True)
    cap_per_project_cents = ma.fields.Integer(required=True)
    round_id = ma.fields.Integer(allow_none=True, required=True)
    themes = ma.fields.List(ma.fields.String(), required=True)
    cities = ma.fields.List(ma.fields.String(), required=True)
    committed_cents = ma.fields.Integer(required=True)
    left_cents = ma.fields.Integer(required=True)
    charged_cents = ma.fields.Integer(required=True)
    refunded_cents = ma.fields.Integer(required=True)
    tokens_minted = ma.fields.Integer(required=True)
    verified_value_cents = ma.fields.Integer(required=True)
    projects = ma.fields.List(ma.fields.Nested(PoolProjectSchema), required=True)


def pool_body(figures: PoolFigures) -> dict[str, Any]:
    pool = figures.pool
    return {
        "id": pool.id,
        "name": pool.name,
        "organisation_id": pool.organisation_id,
        "state": pool.state.value,
        "budget_cents": pool.budget_cents,
        "match_ratio": pool.match_ratio,
        "cap_per_project_cents": pool.cap_per_project_cents,
        "round_id": pool.round_id,
        "themes": pool.themes,
        "cities": pool.cities,
        "committed_cents": figures.committed_cents,
        "left_cents": figures.left_cents,
        "charged_cents": figures.charged_cents,
        "refunded_cents": figures.refunded_cents,
        "tokens_minted": figures.tokens_minted,
        "verified_value_cents": figures.verified_value_cents,
        "projects": figures.projects,
    }


def fund_with(user: Any, data: dict[str, Any]) -> Any:
    """Open the pool a form or a request describes: the funder checked, its payment
    method saved (a process: Stripe outside the request's transaction), then the pool."""
    data = dict(data)
    if data.get("round_id") is not None and db.session.get(Round, data["round_id"]) is None:
        raise ValidationFailed(errors={"round_id": ["No such round."]})
    method = data.pop("payment_method")
    services.check_funder(db.session, user)
    if method == BANK_TRANSFER:
        saved = payments.bank_transfer_method(
            db.session, organisation_id=user.organisation_id, user_id=user.id, now=now()
        )
    else:
        name = db.session.scalar(
            select(Organisation.name).where(Organisation.id == user.organisation_id)
        )
        saved = payments.save_payment_method(
            db.for_process(),
            current_app.extensions["stripe"],
            organisation_id=user.organisation_id,
            organisation_name=name or "",
            user_id=user.id,
            payment_method=method,
            now=now(),
        )
    return services.open_pool(
        db.session, user, services.NewPool(**data), payment_setup_id=saved.id, now=now()
    )


@blp.route("/pools")
class Pools(MethodView):
    @authenticated(blp, Role.BUYER, scope=Scope.MONEY)
    @blp.arguments(PoolInSchema)
    @blp.response(201, PoolOutSchema)
    def post(self, data):
        """Open a matchfunding pool (a verified buyer organisation): each pledge of another
        buyer on an eligible project brings ``floor(n * match_ratio)`` tokens of the pool's,
        as far as its budget, its cap per project and the project's tokens allow."""
        return pool_body(pool_figures(db.session, fund_with(current_api_user(), data)))


@blp.route("/pools/<int:pool_id>")
class OnePool(MethodView):
    @authenticated(blp, Role.BUYER, Role.ADMIN)
    @blp.response(200, PoolOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, pool_id):
        """A pool's money and what it bought, per project (its funder, admins)."""
        pool = services.get_pool(db.session, current_api_user(), pool_id)
        return pool_body(pool_figures(db.session, pool))
