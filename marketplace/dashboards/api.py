"""API: an organisation's legal details (its owner) and its verification (admins)."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from marketplace.accounts import profile
from marketplace.accounts.models import Role
from marketplace.api.auth import authenticated, current_api_user
from marketplace.core import validate
from marketplace.core.clock import now
from marketplace.core.errors import NotFound
from marketplace.core.schemas import PageArgsSchema, SingleLine, Text
from marketplace.dashboards import open_data
from marketplace.dashboards.organisation import verify_organisation
from marketplace.extensions import db

blp = Blueprint("organisations_api", __name__, url_prefix="/api/v1", description="Organisations")


class LegalDetailsSchema(ma.Schema):
    legal_name = SingleLine(required=True, validate=validate.Length(min=1, max=200))
    registry_id = SingleLine(
        required=True,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "a KvK number (8 digits) or another registry's id"},
    )
    address = SingleLine(required=True, validate=validate.Length(min=1, max=300))
    vat_id = SingleLine(load_default="", validate=validate.Length(max=20))
    website = SingleLine(load_default="", validate=validate.Length(max=200))
    description = Text(load_default="", validate=validate.Length(max=2000))


class OrganisationOutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    legal_name = ma.fields.String(required=True)
    registry_id = ma.fields.String(required=True)
    address = ma.fields.String(required=True)
    vat_id = ma.fields.String(required=True)
    website = ma.fields.String(required=True)
    verified = ma.fields.Boolean(required=True)
    verified_at = ma.fields.AwareDateTime(allow_none=True, required=True)


@blp.route("/organisations/<int:organisation_id>")
class OneOrganisation(MethodView):
    @authenticated(blp)
    @blp.arguments(LegalDetailsSchema)
    @blp.response(200, OrganisationOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def put(self, data, organisation_id):
        """Your organisation's legal details (its owner). Changing the legal name or the
        registry id asks an administrator to verify it again."""
        user = current_api_user()
        if user.organisation_id != organisation_id:
            raise NotFound("No such organisation.")
        return profile.update_organisation(db.session, user, profile.OrganisationProfile(**data))


@blp.route("/organisations/<int:organisation_id>/verify")
class VerifyOrganisation(MethodView):
    @authenticated(blp, Role.ADMIN)
    @blp.response(200, OrganisationOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="legal_details_missing")
    def post(self, organisation_id):
        """Verify an organisation's legal details against its registry entry: a public
        badge, and the end of the limits of an unverified organisation."""
        return verify_organisation(db.session, current_api_user(), organisation_id, now=now())


class OpenDataArgsSchema(PageArgsSchema):
    """Pages of the export: up to 100 projects each."""


class OpenDataSchema(ma.Schema):
    format = ma.fields.String(required=True, metadata={"example": "som-open-data"})
    version = ma.fields.Integer(required=True)
    generated_at = ma.fields.String(required=True)
    currency = ma.fields.String(required=True)
    page = ma.fields.Integer(required=True)
    per_page = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True)
    projects = ma.fields.List(
        ma.fields.Dict(),
        required=True,
        metadata={
            "description": "Each listed project with its outcomes, prices, verified results, "
            "funders and its INDIGO mapping (README, Open data)."
        },
    )


@blp.route("/open-data/projects")
class OpenData(MethodView):
    @blp.arguments(OpenDataArgsSchema, location="query")
    @blp.response(200, OpenDataSchema)
    def get(self, args):
        """Every listed project as open data (public; README "Open data")."""
        return open_data.export(
            db.session,
            currency=current_app.extensions["settings"].currency,
            now=now(),
            page=args["page"],
            per_page=args["per_page"],
        )
