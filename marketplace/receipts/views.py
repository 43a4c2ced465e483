"""Web pages: a receipt's or credit note's PDF, as it was issued."""

from __future__ import annotations

from flask import Blueprint, Response
from flask_login import current_user, login_required

from marketplace.extensions import db
from marketplace.receipts import services

bp = Blueprint("receipts", __name__)


@bp.get("/receipts/<int:receipt_id>.pdf")
@login_required
def pdf(receipt_id: int):
    """The stored PDF, never made again: for the buyer's organisation and admins."""
    found = services.get(db.session, current_user, receipt_id)
    return Response(
        found.pdf,
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f"inline; filename={found.number}.pdf",
            "ETag": f'"{found.sha256}"',
        },
    )
