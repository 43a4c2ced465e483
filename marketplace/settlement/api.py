"""API: a project's settlement (the owner, admins and the project's buyers)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from marketplace.accounts.models import Organisation
from marketplace.api.auth import authenticated, current_api_user
from marketplace.extensions import db
from marketplace.settlement import services as settlement

blp = Blueprint("settlement_api", __name__, url_prefix="/api/v1", description="Settlement")


class BuyerShareSchema(ma.Schema):
    organisation = ma.fields.String(required=True)
    tokens_paid = ma.fields.Integer(required=True)
    tokens_minted = ma.fields.Integer(required=True)
    refund_cents = ma.fields.Integer(required=True)


class SettlementOutSchema(ma.Schema):
    state = ma.fields.String(required=True, metadata={"description": "computed or settled"})
    v_target_cents = ma.fields.Integer(required=True)
    v_verified_cents = ma.fields.Integer(required=True)
    tokens_minted = ma.fields.Integer(required=True)
    buffer_tokens = ma.fields.Integer(
        required=True, metadata={"description": "of the minted, kept in the buffer pool"}
    )
    tokens_buffer = ma.fields.Integer(
        required=True,
        metadata={"description": "the same as buffer_tokens (its first name)", "deprecated": True},
    )
    raised_cents = ma.fields.Integer(required=True)
    cost_tranche_cents = ma.fields.Integer(required=True)
    premium_payout_cents = ma.fields.Integer(required=True)
    refund_total_cents = ma.fields.Integer(required=True)
    fees_cents = ma.fields.Integer(required=True)
    buyers = ma.fields.List(ma.fields.Nested(BuyerShareSchema), required=True)


@blp.route("/projects/<int:project_id>/settlement")
class ProjectSettlement(MethodView):
    @authenticated(blp)
    @blp.response(200, SettlementOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, project_id: int) -> dict[str, Any]:
        """The settlement: for the owner, admins and the project's buyers."""
        user = current_api_user()
        found = settlement.get_settlement(db.session, user, project_id)
        shares = settlement.visible_shares(db.session, found, user)
        names = dict(
            db.session.execute(
                select(Organisation.id, Organisation.name).where(
                    Organisation.id.in_([s.organisation_id for s in shares])
                )
            ).all()
        )
        return {
            "state": "settled" if found.finished_at else "computed",
            "v_target_cents": found.v_target_cents,
            "v_verified_cents": found.v_verified_cents,
            "tokens_minted": found.tokens_minted,
            "buffer_tokens": found.tokens_buffer,
            "tokens_buffer": found.tokens_buffer,
            "raised_cents": found.raised_cents,
            "cost_tranche_cents": found.cost_tranche_cents,
            "premium_payout_cents": found.premium_payout_cents,
            "refund_total_cents": found.refund_total_cents,
            "fees_cents": found.fees_cents,
            "buyers": [
                {
                    "organisation": names[s.organisation_id],
                    "tokens_paid": s.tokens_paid,
                    "tokens_minted": s.tokens_minted,
                    "refund_cents": s.refund_cents,
                }
                for s in shares
            ],
        }
