"""API: assigning evaluators, recording and approving verified results, settlements."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import validate
from sqlalchemy import select

from marketplace.accounts.models import Organisation, Role
from marketplace.api.auth import authenticated, current_api_user
from marketplace.core.clock import now
from marketplace.core.schemas import PageArgsSchema, Trimmed, WholeNumber, page_schema
from marketplace.evaluations import services
from marketplace.extensions import db
from marketplace.settlement import services as settlement
from outcomes.evaluation import MAX_NOTE, ResultInput

blp = Blueprint(
    "evaluations_api", __name__, url_prefix="/api/v1", description="Evaluation and settlement"
)


class AssignInSchema(ma.Schema):
    evaluator_id = WholeNumber(required=True, validate=validate.Range(min=1))


class ResultSchema(ma.Schema):
    outcome_id = WholeNumber(required=True, validate=validate.Range(min=1))
    verified_quantity = WholeNumber(required=True, validate=validate.Range(min=0, max=10**9))
    evidence_note = Trimmed(required=True, validate=validate.Length(min=1, max=MAX_NOTE))


class ResultsInSchema(ma.Schema):
    results = ma.fields.List(
        ma.fields.Nested(ResultSchema), required=True, validate=validate.Length(min=1, max=100)
    )


class ReturnInSchema(ma.Schema):
    reason = Trimmed(required=True, validate=validate.Length(min=1, max=2000))


class EvaluationOutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    project_id = ma.fields.Integer(required=True)
    evaluator_id = ma.fields.Integer(required=True)
    state = ma.fields.Function(
        lambda e: e.state.value, required=True, metadata={"example": "submitted"}
    )
    assigned_at = ma.fields.AwareDateTime(required=True)
    submitted_at = ma.fields.AwareDateTime(allow_none=True)
    approved_at = ma.fields.AwareDateTime(allow_none=True)
    return_reason = ma.fields.String()
    results = ma.fields.Function(
        lambda e: [
            {
                "outcome_id": r.commitment_id,
                "verified_quantity": r.verified_quantity,
                "evidence_note": r.evidence_note,
            }
            for r in e.results
        ],
        required=True,
    )


EvaluationPageSchema = page_schema(EvaluationOutSchema, "EvaluationPage")


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
    raised_cents = ma.fields.Integer(required=True)
    cost_tranche_cents = ma.fields.Integer(required=True)
    premium_payout_cents = ma.fields.Integer(required=True)
    refund_total_cents = ma.fields.Integer(required=True)
    fees_cents = ma.fields.Integer(required=True)
    buyers = ma.fields.List(ma.fields.Nested(BuyerShareSchema), required=True)


@blp.route("/projects/<int:project_id>/evaluator")
class AssignEvaluator(MethodView):
    @authenticated(blp, Role.ADMIN)
    @blp.arguments(AssignInSchema)
    @blp.response(200, EvaluationOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(
        409, response="CONFLICT", description="conflict_of_interest, invalid_transition"
    )
    def post(self, data, project_id):
        """Assign an evaluator to a running or evaluating project."""
        return services.assign_evaluator(
            db.session, current_api_user(), project_id, data["evaluator_id"], now=now()
        )


@blp.route("/evaluations")
class Evaluations(MethodView):
    @authenticated(blp, Role.EVALUATOR, Role.ADMIN)
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, EvaluationPageSchema)
    def get(self, args):
        """Your evaluations (admins: all), newest first."""
        items, total = services.list_evaluations(
            db.session, current_api_user(), page=args["page"], per_page=args["per_page"]
        )
        return {"items": items, "page": args["page"], "per_page": args["per_page"], "total": total}


@blp.route("/evaluations/<int:evaluation_id>")
class OneEvaluation(MethodView):
    @authenticated(blp, Role.EVALUATOR, Role.ADMIN)
    @blp.response(200, EvaluationOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, evaluation_id):
        """One evaluation."""
        return services.get_evaluation(db.session, current_api_user(), evaluation_id)


@blp.route("/evaluations/<int:evaluation_id>/results")
class Results(MethodView):
    @authenticated(blp, Role.EVALUATOR)
    @blp.arguments(ResultsInSchema)
    @blp.response(200, EvaluationOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="invalid_transition")
    def put(self, data, evaluation_id):
        """Record the verified quantity of each outcome with its evidence note."""
        results = [ResultInput(**r) for r in data["results"]]
        return services.record_results(
            db.session, current_api_user(), evaluation_id, results, now=now()
        )


@blp.route("/evaluations/<int:evaluation_id>/submit")
class Submit(MethodView):
    @authenticated(blp, Role.EVALUATOR)
    @blp.response(200, EvaluationOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="invalid_transition")
    def post(self, evaluation_id):
        """Send the results for approval (every outcome needs one)."""
        return services.submit(db.session, current_api_user(), evaluation_id, now=now())


@blp.route("/evaluations/<int:evaluation_id>/approve")
class Approve(MethodView):
    @authenticated(blp, Role.ADMIN)
    @blp.response(200, EvaluationOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="invalid_transition")
    def post(self, evaluation_id):
        """Approve a submitted evaluation (not your own); the project is then settled."""
        return services.approve(db.session, current_api_user(), evaluation_id, now=now())


@blp.route("/evaluations/<int:evaluation_id>/return")
class SendBack(MethodView):
    @authenticated(blp, Role.ADMIN)
    @blp.arguments(ReturnInSchema)
    @blp.response(200, EvaluationOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="invalid_transition")
    def post(self, data, evaluation_id):
        """Return a submitted evaluation to its evaluator with a reason."""
        return services.send_back(
            db.session, current_api_user(), evaluation_id, reason=data["reason"], now=now()
        )


@blp.route("/projects/<int:project_id>/settlement")
class ProjectSettlement(MethodView):
    @authenticated(blp)
    @blp.response(200, SettlementOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, project_id):
        """The settlement: for the owner, admins and the project's buyers."""
        found = settlement.get_settlement(db.session, current_api_user(), project_id)
        names = dict(
            db.session.execute(
                select(Organisation.id, Organisation.name).where(
                    Organisation.id.in_([s.organisation_id for s in found.shares])
                )
            ).all()
        )
        return {
            "state": "settled" if found.finished_at else "computed",
            "v_target_cents": found.v_target_cents,
            "v_verified_cents": found.v_verified_cents,
            "tokens_minted": found.tokens_minted,
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
                for s in found.shares
            ],
        }
