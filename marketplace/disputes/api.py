"""API: concerns about settled projects, their disputes, and the public buffer pool."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from marketplace.accounts.models import Role
from marketplace.api.auth import authenticated, current_api_user
from marketplace.core import validate
from marketplace.core.clock import now
from marketplace.core.schemas import PageArgsSchema, Text, WholeNumber, page_schema, row_id
from marketplace.disputes import services
from marketplace.disputes.models import MAX_REASON, MAX_TEXT, Concern, ConcernState
from marketplace.evaluations.api import FileOutSchema, UploadInSchema, file_store
from marketplace.extensions import db
from marketplace.registry import services as registry

blp = Blueprint("disputes_api", __name__, url_prefix="/api/v1", description="Concerns and disputes")


class ConcernInSchema(ma.Schema):
    text = Text(required=True, validate=validate.Length(min=20, max=MAX_TEXT))


class ReasonInSchema(ma.Schema):
    reason = Text(required=True, validate=validate.Length(min=10, max=MAX_REASON))


class CorrectionSchema(ma.Schema):
    outcome_id = row_id(required=True)
    verified_quantity = WholeNumber(required=True, validate=validate.Range(min=0, max=10**9))


class UpholdInSchema(ma.Schema):
    finding = Text(required=True, validate=validate.Length(min=10, max=MAX_TEXT))
    quantities = ma.fields.List(
        ma.fields.Nested(CorrectionSchema),
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "corrected verified quantities; outcomes left out stay"},
    )


class ConcernsArgsSchema(PageArgsSchema):
    state = ma.fields.Enum(ConcernState, by_value=True, load_default=None)


class DisputeOutSchema(ma.Schema):
    """What the public sees of a dispute: never the concern's text or who filed it."""

    id = ma.fields.Integer(required=True)
    project_id = ma.fields.Integer(required=True)
    state = ma.fields.Function(lambda c: c.state.value, required=True)
    dispute_reason = ma.fields.String(required=True)
    disputed_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    finding = ma.fields.String(required=True)
    resolved_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    v_verified_cents = ma.fields.Integer(allow_none=True, required=True)
    tokens_minted = ma.fields.Integer(allow_none=True, required=True)
    tokens_over = ma.fields.Integer(allow_none=True, required=True)
    tokens_cancelled = ma.fields.Integer(allow_none=True, required=True)
    shortfall = ma.fields.Integer(required=True)


class ConcernOutSchema(DisputeOutSchema):
    text = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    organisation_id = ma.fields.Integer(required=True)
    corrected = ma.fields.Function(
        lambda c: (
            [{"outcome_id": int(k), "verified_quantity": v} for k, v in c.corrected.items()]
            if c.corrected
            else None
        ),
        allow_none=True,
        required=True,
    )


ConcernPageSchema = page_schema(ConcernOutSchema, "ConcernPage")


class PoolRowSchema(ma.Schema):
    project_id = ma.fields.Integer(required=True)
    title = ma.fields.String(required=True)
    buffer = ma.fields.Integer(required=True, metadata={"description": "serials in the pool"})
    cancelled = ma.fields.Integer(required=True)


class CancellationSchema(ma.Schema):
    serial_block = ma.fields.String(required=True, attribute="serial")
    project_id = ma.fields.Integer(required=True)
    quantity = ma.fields.Integer(required=True)
    concern_id = ma.fields.Integer(required=True)


class BufferOutSchema(ma.Schema):
    held = ma.fields.Integer(required=True)
    cancelled = ma.fields.Integer(required=True)
    shortfall = ma.fields.Integer(required=True)
    projects = ma.fields.List(ma.fields.Nested(PoolRowSchema), required=True)
    cancellations = ma.fields.List(ma.fields.Nested(CancellationSchema), required=True)
    findings = ma.fields.List(ma.fields.Nested(DisputeOutSchema), required=True)


def buffer_document() -> dict[str, Any]:
    rows = registry.buffer_pool(db.session)
    findings = services.upheld(db.session)
    return {
        "held": sum(r.buffer for r in rows),
        "cancelled": sum(r.cancelled for r in rows),
        "shortfall": sum(c.shortfall for c in findings),
        "projects": rows,
        "cancellations": registry.cancelled_blocks(db.session),
        "findings": findings,
    }


@blp.route("/projects/<int:project_id>/concerns")
class ProjectConcerns(MethodView):
    @authenticated(blp)
    @blp.arguments(ConcernInSchema)
    @blp.response(201, ConcernOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="concern_window_closed")
    def post(self, data, project_id):
        """File a concern about a settled project (within 365 days of its settlement)."""
        return services.file_concern(
            db.session, current_api_user(), project_id, text=data["text"], now=now()
        )


@blp.route("/concerns/<int:concern_id>/files")
class ConcernFiles(MethodView):
    @authenticated(blp)
    @blp.arguments(UploadInSchema, location="multipart")
    @blp.response(201, FileOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="invalid_transition")
    def post(self, upload, concern_id):
        """Add a file supporting your concern (PDF, PNG, JPEG, CSV or text), stored
        privately with its SHA-256: only you and the administrators can open it."""
        stored = upload["file"]
        return services.add_file(
            db.session,
            file_store(),
            current_api_user(),
            concern_id,
            filename=stored.filename or "",
            data=stored.read(),
            now=now(),
        )


@blp.route("/projects/<int:project_id>/disputes")
class ProjectDisputes(MethodView):
    @blp.response(200, DisputeOutSchema(many=True))
    def get(self, project_id):
        """A project's disputes, open and decided, with their findings (public)."""
        return services.public_disputes(db.session, project_id)


@blp.route("/concerns")
class Concerns(MethodView):
    @authenticated(blp, Role.ADMIN)
    @blp.arguments(ConcernsArgsSchema, location="query")
    @blp.response(200, ConcernPageSchema)
    def get(self, args):
        """Concerns to triage: open disputes first, then filed concerns, then decided."""
        items, total = services.list_concerns(
            db.session,
            current_api_user(),
            state=args["state"],
            page=args["page"],
            per_page=args["per_page"],
        )
        return {"items": items, "page": args["page"], "per_page": args["per_page"], "total": total}


@blp.route("/concerns/<int:concern_id>")
class OneConcern(MethodView):
    @authenticated(blp)
    @blp.response(200, ConcernOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, concern_id):
        """One concern: for admins and the person who filed it."""
        return services.get_concern(db.session, current_api_user(), concern_id)


def _decision(name: str, doc: str, act):
    """One of the admin's decisions on a concern, as a route."""

    class Decision(MethodView):
        @authenticated(blp, Role.ADMIN)
        @blp.arguments(ReasonInSchema)
        @blp.response(200, ConcernOutSchema)
        @blp.alt_response(404, response="NOT_FOUND")
        @blp.alt_response(409, response="CONFLICT", description="invalid_transition")
        def post(self, data, concern_id) -> Concern:
            return act(db.session, current_api_user(), concern_id, reason=data["reason"], now=now())

    Decision.post.__doc__ = doc
    Decision.__name__ = name
    return Decision


blp.route("/concerns/<int:concern_id>/dispute")(
    _decision(
        "OpenDispute",
        "Open a dispute: the project shows disputed and its unretired serials freeze.",
        services.open_dispute,
    )
)
blp.route("/concerns/<int:concern_id>/dismiss")(
    _decision(
        "DismissConcern",
        "Dismiss a concern, or an open dispute (its serials unfreeze), with the reason.",
        services.dismiss,
    )
)


@blp.route("/concerns/<int:concern_id>/uphold")
class Uphold(MethodView):
    @authenticated(blp, Role.ADMIN)
    @blp.arguments(UpholdInSchema)
    @blp.response(200, ConcernOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(
        409, response="CONFLICT", description="invalid_transition, cancelled_concurrently"
    )
    def post(self, data, concern_id):
        """Uphold an open dispute with corrected verified quantities: the tokens minted in
        excess are cancelled from the buffer pool; money does not move back."""
        return services.uphold(
            db.session,
            current_api_user(),
            concern_id,
            finding=data["finding"],
            corrections=[services.Correction(**q) for q in data["quantities"]],
            now=now(),
        )


@blp.route("/registry/buffer")
class Buffer(MethodView):
    @blp.response(200, BufferOutSchema)
    def get(self):
        """The buffer pool: its serials per project, those cancelled and why, and any
        shortfall the pool could not cover (public)."""
        return buffer_document()
