"""API: the outcome catalogue and the valuation preview."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from marketplace.accounts.models import Role
from marketplace.api.auth import authenticated
from marketplace.catalogue.schemas import (
    NewOutcomeTypeSchema,
    OutcomeTypeQuerySchema,
    OutcomeTypeSchema,
    PreviewResultSchema,
    PreviewSchema,
)
from marketplace.catalogue.services import preview_request, preview_result
from marketplace.core.clock import now
from marketplace.extensions import db
from outcomes.catalogue import (
    NewOutcomeType,
    add_outcome_type,
    get_outcome_type,
    list_outcome_types,
    retire_outcome_type,
)
from outcomes.valuations import preview
from valuation import Per

blp = Blueprint(
    "catalogue_api", __name__, url_prefix="/api/v1", description="Outcome catalogue and valuation"
)


@blp.route("/outcome-types")
class OutcomeTypes(MethodView):
    @blp.arguments(OutcomeTypeQuerySchema, location="query")
    @blp.response(200, OutcomeTypeSchema(many=True))
    def get(self, args):
        """The outcome catalogue: every proxy with its source, price year and basis."""
        return list_outcome_types(
            db.session,
            include_retired=args["include_retired"],
            basis=args.get("basis"),
            per=Per(args["per"]) if args.get("per") else None,
            q=args.get("q"),
        )

    @authenticated(blp, Role.ADMIN)
    @blp.arguments(NewOutcomeTypeSchema)
    @blp.response(201, OutcomeTypeSchema)
    @blp.alt_response(409, response="CONFLICT", description="outcome_type_exists")
    def post(self, data):
        """Add an outcome type to the value bank (admins)."""
        return add_outcome_type(db.session, NewOutcomeType(**data), now=now())


@blp.route("/outcome-types/<string:code>")
class OutcomeTypeItem(MethodView):
    @blp.response(200, OutcomeTypeSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, code):
        """One outcome type, retired or not."""
        return get_outcome_type(db.session, code)


@blp.route("/outcome-types/<string:code>/retire")
class RetireOutcomeType(MethodView):
    @authenticated(blp, Role.ADMIN)
    @blp.response(200, OutcomeTypeSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, code):
        """Retire an outcome type: new projects cannot choose it; valuations keep it."""
        return retire_outcome_type(db.session, code, now=now())


@blp.route("/valuations/preview")
class Preview(MethodView):
    @authenticated(blp)
    @blp.arguments(PreviewSchema)
    @blp.response(200, PreviewResultSchema)
    def post(self, data):
        """Value outcome lines with method version 1, with the sensitivity; stores nothing."""
        valuation, rows = preview(db.session, preview_request(data))
        return preview_result(valuation, rows)
