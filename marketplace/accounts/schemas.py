"""marshmallow schemas at the accounts boundary (JSON API, web forms, CLI).

They check shape: types, lengths, formats, choices. Rules that depend on
configuration or on the database (password policy, taken names) belong to the
services.
"""

from __future__ import annotations

import marshmallow as ma

from marketplace.accounts.models import SELF_REGISTRATION_ROLES, Role, Scope
from marketplace.accounts.passwords import PASSWORD_MAX_LENGTH
from marketplace.core import validate
from marketplace.core.schemas import SingleLine


def _password_policy(password: str) -> None:
    """The configured policy, so its errors arrive with every other field error."""
    from marketplace.accounts import account_rules

    problems = account_rules().policy.problems(password)
    if problems:
        raise ma.ValidationError(problems)


class RegistrationSchema(ma.Schema):
    email = SingleLine(
        required=True,
        validate=[validate.Length(max=254), validate.Email()],
        metadata={"example": "ana@buurtwerk.example"},
    )
    password = ma.fields.String(
        required=True,
        load_only=True,
        validate=_password_policy,
        metadata={"description": f"At least 10 and at most {PASSWORD_MAX_LENGTH} characters."},
    )
    name = SingleLine(required=True, validate=validate.Length(min=1, max=200))
    role = ma.fields.String(
        required=True, validate=validate.OneOf([r.value for r in SELF_REGISTRATION_ROLES])
    )
    organisation = SingleLine(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "The name of your organisation."},
    )


class StaffUserSchema(RegistrationSchema):
    role = ma.fields.String(required=True, validate=validate.OneOf([r.value for r in Role]))


class UserSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    email = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    role = ma.fields.String(required=True)
    organisation = ma.fields.Function(lambda user: user.organisation.name, required=True)
    organisation_id = ma.fields.Integer(required=True)
    # False until the link e-mailed at registration is opened (no submission or pledge).
    email_verified = ma.fields.Boolean(required=True)


class TokenOptionsSchema(ma.Schema):
    """What a new API token may do and how long it lives (the API's and the account page's)."""

    scopes = ma.fields.List(
        ma.fields.Enum(Scope, by_value=True),
        load_default=lambda: list(Scope),
        validate=[
            validate.Length(min=1, error="Choose at least one scope."),
            validate.Length(max=len(Scope)),
        ],
        metadata={
            "description": "What the token may do: read (GET requests), write (other changes), "
            "money (pledge, pay, cancel, close funding, retire tokens). All three unless given."
        },
    )
    expires_in_days = ma.fields.Integer(
        load_default=None,
        allow_none=False,  # absent means never; null is not a number of days
        validate=validate.Range(min=1, max=365),
        metadata={
            "description": "The token stops working after this many days; never unless given."
        },
    )


class VerificationSchema(ma.Schema):
    token = SingleLine(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "The secret at the end of the link e-mailed to the address."},
    )


class CredentialsSchema(TokenOptionsSchema):
    email = SingleLine(required=True, validate=validate.Length(min=1, max=254))
    password = ma.fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=1024)
    )
    name = SingleLine(
        load_default="API token",
        validate=validate.Length(max=100),
        metadata={"description": "A label for the token, such as the system using it."},
    )


class _TokenOutSchema(ma.Schema):
    """What every answer about a token says."""

    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    scopes = ma.fields.List(ma.fields.String(), attribute="scope_list", required=True)
    expires_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class NewTokenSchema(_TokenOutSchema):
    token = ma.fields.String(
        required=True, metadata={"description": "The secret; shown once, stored only hashed."}
    )


class TokenSchema(_TokenOutSchema):
    prefix = ma.fields.String(required=True)
    last_used_at = ma.fields.AwareDateTime(allow_none=True)
    revoked_at = ma.fields.AwareDateTime(allow_none=True)
