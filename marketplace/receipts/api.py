"""API: the receipts and credit notes of the buyer's organisation."""

from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from marketplace.accounts.models import Role
from marketplace.api.auth import authenticated, current_api_user
from marketplace.extensions import db
from marketplace.receipts import services

blp = Blueprint("receipts_api", __name__, url_prefix="/api/v1", description="Receipts")


class ReceiptOutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    number = ma.fields.String(required=True, metadata={"example": "SOM-2027-000123"})
    kind = ma.fields.Function(
        lambda r: r.kind.value, required=True, metadata={"description": "receipt | credit_note"}
    )
    pledge_id = ma.fields.Integer(required=True)
    payment_id = ma.fields.Integer(required=True)
    refund_id = ma.fields.Integer(allow_none=True, required=True)
    refers_to = ma.fields.Function(
        lambda r: r.details.get("refers_to"),
        allow_none=True,
        required=True,
        metadata={"description": "a credit note's receipt number"},
    )
    amount_cents = ma.fields.Integer(required=True)
    currency = ma.fields.String(required=True)
    language = ma.fields.String(required=True)
    issued_at = ma.fields.AwareDateTime(required=True)
    sha256 = ma.fields.String(required=True, metadata={"description": "of the PDF"})
    pdf_url = ma.fields.Function(
        lambda r: url_for("receipts.pdf", receipt_id=r.id, _external=True), required=True
    )


@blp.route("/receipts")
class Receipts(MethodView):
    @authenticated(blp, Role.BUYER, Role.ADMIN)
    @blp.response(200, ReceiptOutSchema(many=True))
    def get(self):
        """Your organisation's receipts and credit notes, newest first (admins: all)."""
        return services.of_organisation(db.session, current_api_user())


@blp.route("/receipts/<int:receipt_id>")
class OneReceipt(MethodView):
    @authenticated(blp, Role.BUYER, Role.ADMIN)
    @blp.response(200, ReceiptOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, receipt_id):
        """One receipt or credit note; its PDF is at ``pdf_url``."""
        return services.get(db.session, current_api_user(), receipt_id)
