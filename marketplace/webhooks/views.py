"""Stripe's webhook endpoint.

It verifies Stripe's signature on the raw body before anything else: a bad or
missing signature is 400 and writes nothing. A verified event is handled once
(its id is stored) and answered 200 even when it is of no use to us, so Stripe
stops retrying it. After the event's transaction commits, a surplus payment it
revealed is refunded at once (the refund sweep retries what Stripe cannot take
now).
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from marketplace.core.clock import now
from marketplace.extensions import db
from marketplace.funding import charges
from marketplace.webhooks.events import NotAnEvent, handle_event, pledge_of_event

bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/stripe")
def stripe_webhook():
    gateway = current_app.extensions["stripe"]
    payload = request.get_data(cache=False)
    signature = request.headers.get("Stripe-Signature", "")
    try:
        event = gateway.parse_event(payload, signature)
    except ValueError:
        return jsonify({"error": "invalid signature or payload"}), 400
    at = now()
    try:
        outcome = handle_event(
            db.session,
            event,
            now=at,
            grace_hours=current_app.extensions["settings"].payment_grace_hours,
        )
    except NotAnEvent as error:
        return jsonify({"error": f"not an event: {error}"}), 400
    if "surplus" in outcome:
        pledge_id = pledge_of_event(db.session, event)
        sessions = db.for_process()
        if pledge_id is not None:
            charges.send_surplus_refunds(sessions, gateway, pledge_id, at)
    return jsonify({"received": event["id"], "outcome": outcome})
