"""Schemas of pledges and payouts at the API boundary."""

from __future__ import annotations

import marshmallow as ma

from marketplace.core import validate
from marketplace.core.schemas import PageArgsSchema, SingleLine, WholeNumber, page_schema, row_id

MAX_TOKENS = 10_000_000


class PledgeInSchema(ma.Schema):
    tokens = WholeNumber(required=True, validate=validate.Range(min=1, max=MAX_TOKENS))
    payment_method = SingleLine(
        required=True,
        validate=validate.Length(min=3, max=255),
        metadata={
            "description": "A Stripe PaymentMethod id, such as "
            "pm_card_visa in test mode, or the id "
            "of a card saved by an earlier pledge."
        },
    )


class PayInSchema(ma.Schema):
    payment_method = SingleLine(required=True, validate=validate.Length(min=3, max=255))


class NextActionSchema(ma.Schema):
    type = ma.fields.String(required=True, metadata={"example": "authenticate"})
    client_secret = ma.fields.String(
        required=True, metadata={"description": "Hand to Stripe.js handleNextAction."}
    )


class PledgeOutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    project_id = ma.fields.Integer(required=True)
    tokens = ma.fields.Integer(required=True)
    amount_cents = ma.fields.Integer(required=True)
    state = ma.fields.String(required=True, metadata={"example": "committed"})
    payment_method = ma.fields.String(
        required=True,
        metadata={
            "description": "The saved card: pass it to pledge again without entering it anew."
        },
    )
    card = ma.fields.String(required=True, metadata={"example": "Visa •••• 4242"})
    grace_until = ma.fields.DateTime(
        allow_none=True, metadata={"description": "For payment_failed: pay before this instant."}
    )
    created_at = ma.fields.DateTime(required=True)
    next_action = ma.fields.Nested(NextActionSchema, allow_none=True)


PledgePageSchema = page_schema(PledgeOutSchema, "PledgePage")


class PledgeQuerySchema(PageArgsSchema):
    project_id = row_id()


class PayoutAccountOutSchema(ma.Schema):
    account_id = ma.fields.String(allow_none=True)
    details_submitted = ma.fields.Boolean(required=True)
    payouts_enabled = ma.fields.Boolean(required=True)
    onboarding_url = ma.fields.String(allow_none=True)


class OnboardingInSchema(ma.Schema):
    return_url = ma.fields.Url(
        load_default=None,
        require_tld=False,
        metadata={"description": "Where Stripe sends the user back."},
    )
