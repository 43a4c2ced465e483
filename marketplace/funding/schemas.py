"""Schemas of pledges and payouts at the API boundary."""

from __future__ import annotations

import marshmallow as ma

from marketplace.core import validate
from marketplace.core.schemas import PageArgsSchema, SingleLine, WholeNumber, page_schema, row_id
from marketplace.payments.services import iban_valid

MAX_TOKENS = 10_000_000


class PledgeInSchema(ma.Schema):
    tokens = WholeNumber(required=True, validate=validate.Range(min=1, max=MAX_TOKENS))
    payment_method = SingleLine(
        required=True,
        validate=validate.Length(min=3, max=255),
        metadata={
            "description": "A Stripe PaymentMethod id (a card such as pm_card_visa in test "
            "mode, a SEPA account, or one saved by an earlier pledge); sepa_debit to debit "
            "the account given as iban and account_holder; or bank_transfer to transfer the "
            "amount when funding closes (a virtual IBAN and reference, on an invoice)."
        },
    )
    iban = SingleLine(
        load_default=None,
        validate=validate.Length(max=42),
        metadata={"description": "For sepa_debit: the account to debit (spaces allowed)."},
    )
    account_holder = SingleLine(
        load_default=None,
        validate=validate.Length(min=2, max=140),
        metadata={"description": "For sepa_debit: the account holder's name."},
    )
    mandate_accepted = ma.fields.Boolean(
        load_default=False,
        metadata={
            "description": "For a SEPA account not saved before: true when the buyer has "
            "accepted the SEPA Direct Debit mandate shown to them."
        },
    )

    @ma.validates_schema
    def _debit(self, data, **_kwargs):
        if data["payment_method"] != "sepa_debit":
            return
        errors: dict[str, list[str]] = {}
        iban = "".join((data.get("iban") or "").split()).upper()
        if not iban:
            errors["iban"] = ["Give the IBAN of the account to debit."]
        elif not iban_valid(iban):
            errors["iban"] = ["Not a valid IBAN: check the letters and digits."]
        if not data.get("account_holder"):
            errors["account_holder"] = ["Give the account holder's name."]
        if not data.get("mandate_accepted"):
            errors["mandate_accepted"] = ["Accept the SEPA Direct Debit mandate to pay by debit."]
        if errors:
            raise ma.ValidationError(errors)
        data["iban"] = iban


class BankTransferSchema(ma.Schema):
    iban = ma.fields.String(required=True, metadata={"example": "NL16STRP2101988819"})
    bic = ma.fields.String(required=True)
    account_holder_name = ma.fields.String(required=True)
    reference = ma.fields.String(
        required=True, metadata={"description": "Quote it with the transfer."}
    )
    amount_cents = ma.fields.Integer(required=True)
    received_cents = ma.fields.Integer(required=True)
    remaining_cents = ma.fields.Integer(required=True)
    pay_before = ma.fields.DateTime(allow_none=True)
    invoice_url = ma.fields.String(required=True)


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
    payment_type = ma.fields.String(
        required=True, metadata={"description": "card, sepa_debit or bank_transfer"}
    )
    matched = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        allow_none=True,
        metadata={
            "description": "The pledge a matchfunding pool made beside this one: "
            "{pool_id, pledge_id, tokens}; null when none."
        },
    )
    bank_transfer = ma.fields.Nested(
        BankTransferSchema,
        allow_none=True,
        metadata={"description": "While a bank transfer is awaited: where to pay, and how much."},
    )
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
