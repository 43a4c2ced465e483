"""API: assigning evaluators, recording and approving verified results, settlements."""

from __future__ import annotations

import base64
from urllib.parse import quote

import marshmallow as ma
from flask import Response, current_app, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from flask_smorest.fields import Upload

from marketplace.accounts.models import Role
from marketplace.api.auth import (
    api_user_or_none,
    authenticated,
    current_api_user,
    optionally_authenticated,
)
from marketplace.core import validate
from marketplace.core.clock import now
from marketplace.core.schemas import (
    PageArgsSchema,
    SaneDate,
    SingleLine,
    Text,
    WholeNumber,
    page_schema,
    row_id,
)
from marketplace.core.storage import Storage
from marketplace.evaluations import files, services
from marketplace.extensions import db
from marketplace.projects.models import Theme
from outcomes.evaluation import MAX_DECLARATION, MAX_NOTE, ResultInput
from outcomes.progress import MAX_TEXT
from valuation import EvidenceGrade

blp = Blueprint(
    "evaluations_api", __name__, url_prefix="/api/v1", description="Evaluation and settlement"
)


class AssignInSchema(ma.Schema):
    evaluator_id = row_id(required=True)


class ResultSchema(ma.Schema):
    outcome_id = row_id(required=True)
    verified_quantity = WholeNumber(required=True, validate=validate.Range(min=0, max=10**9))
    met_grade = ma.fields.Enum(
        EvidenceGrade,
        by_value=True,
        load_default=None,
        metadata={
            "description": "the grade the evidence met (A-D); the planned grade when left out"
        },
    )
    evidence_note = Text(required=True, validate=validate.Length(min=1, max=MAX_NOTE))


class DeclarationInSchema(ma.Schema):
    text = Text(required=True, validate=validate.Length(min=10, max=MAX_DECLARATION))


class ResultsInSchema(ma.Schema):
    results = ma.fields.List(
        ma.fields.Nested(ResultSchema), required=True, validate=validate.Length(min=1, max=100)
    )


class ReturnInSchema(ma.Schema):
    reason = Text(required=True, validate=validate.Length(min=1, max=2000))


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
    declaration = ma.fields.String(required=True)
    declared_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    results = ma.fields.Function(
        lambda e: [
            {
                "outcome_id": r.commitment_id,
                "verified_quantity": r.verified_quantity,
                "met_grade": r.met_grade.value,
                "evidence_note": r.evidence_note,
            }
            for r in e.results
        ],
        required=True,
    )


EvaluationPageSchema = page_schema(EvaluationOutSchema, "EvaluationPage")


@blp.route("/projects/<int:project_id>/evaluator")
class AssignEvaluator(MethodView):
    @authenticated(blp, Role.ADMIN)
    @blp.arguments(AssignInSchema)
    @blp.response(200, EvaluationOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(
        409,
        response="CONFLICT",
        description="conflict_of_interest, not_accredited, invalid_transition",
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


@blp.route("/evaluations/<int:evaluation_id>/declaration")
class Declaration(MethodView):
    @authenticated(blp, Role.EVALUATOR)
    @blp.arguments(DeclarationInSchema)
    @blp.response(200, EvaluationOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="already_declared, invalid_transition")
    def post(self, data, evaluation_id):
        """Sign the conflict-of-interest declaration: needed before any result is saved;
        shown on the public claim trail."""
        return services.declare(
            db.session, current_api_user(), evaluation_id, text=data["text"], now=now()
        )


@blp.route("/evaluations/<int:evaluation_id>/results")
class Results(MethodView):
    @authenticated(blp, Role.EVALUATOR)
    @blp.arguments(ResultsInSchema)
    @blp.response(200, EvaluationOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(
        409, response="CONFLICT", description="declaration_needed, invalid_transition"
    )
    def put(self, data, evaluation_id):
        """Record the verified quantity of each outcome, the grade its evidence met and
        its evidence note (after the declaration)."""
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


# ---------------------------------------------------------------- evidence files


class UploadInSchema(ma.Schema):
    file = Upload(required=True, metadata={"description": "PDF, PNG, JPEG, CSV or plain text"})


class EvidenceUploadSchema(UploadInSchema):
    outcome_id = row_id(
        load_default=None,
        metadata={"description": "the outcome commitment the file is evidence for"},
    )


class FileOutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    filename = ma.fields.String(required=True)
    content_type = ma.fields.String(required=True)
    size_bytes = ma.fields.Integer(required=True)
    sha256 = ma.fields.String(required=True)
    outcome_id = ma.fields.Integer(allow_none=True, attribute="commitment_id", required=True)
    uploaded_at = ma.fields.AwareDateTime(required=True)
    url = ma.fields.Function(
        lambda f: url_for("evaluations_api.FileContent", file_id=f.id, _external=True),
        required=True,
    )


def _upload(upload) -> tuple[str, bytes]:
    return upload.filename or "", upload.read()


def file_response(row, data: bytes) -> Response:
    """The bytes as a download, never rendered inline, with their digest (RFC 9530)."""
    response = Response(data, mimetype=row.content_type)
    response.headers["Content-Disposition"] = _disposition(row.filename)
    response.headers["Repr-Digest"] = "sha-256=:" + _b64(row.sha256) + ":"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def file_store() -> Storage:
    return current_app.extensions["evidence"]


@blp.route("/evaluations/<int:evaluation_id>/evidence")
class Evidence(MethodView):
    @authenticated(blp, Role.EVALUATOR)
    @blp.arguments(EvidenceUploadSchema, location="multipart")
    @blp.response(201, FileOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="invalid_transition")
    def post(self, upload, evaluation_id):
        """Add an evidence file (stored privately with its SHA-256) while results may change."""
        name, data = _upload(upload["file"])
        return files.add_evidence(
            db.session,
            file_store(),
            current_api_user(),
            evaluation_id,
            filename=name,
            data=data,
            outcome_id=upload["outcome_id"],
            now=now(),
        )

    @authenticated(blp, Role.EVALUATOR, Role.ADMIN)
    @blp.response(200, FileOutSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, evaluation_id):
        """The evaluation's evidence files."""
        evaluation = services.get_evaluation(db.session, current_api_user(), evaluation_id)
        return files.files_of_evaluation(db.session, evaluation.id)


@blp.route("/files/<int:file_id>")
class FileContent(MethodView):
    @authenticated(blp)
    @blp.response(200, description="The file's bytes, checked against its SHA-256")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, file_id):
        """Download an evidence file or attachment (evaluator, admins, owner; buyers for
        report attachments)."""
        row, data = files.open_file(db.session, file_store(), current_api_user(), file_id)
        return file_response(row, data)


# ---------------------------------------------------------------- progress reports


class FigureSchema(ma.Schema):
    outcome_id = row_id(required=True)
    quantity = WholeNumber(required=True, validate=validate.Range(min=0, max=10**9))


class ProgressReportInSchema(ma.Schema):
    text = Text(required=True, validate=validate.Length(min=1, max=MAX_TEXT))
    figures = ma.fields.List(
        ma.fields.Nested(FigureSchema), load_default=list, validate=validate.Length(max=100)
    )


class ProgressReportOutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    project_id = ma.fields.Integer(required=True)
    text = ma.fields.String(required=True)
    figures = ma.fields.List(ma.fields.Nested(FigureSchema), required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    attachments = ma.fields.List(
        ma.fields.Nested(FileOutSchema),
        required=True,
        metadata={"description": "only those the caller may read"},
    )
    attachment_count = ma.fields.Integer(required=True)


def _with_attachments(reports, user):
    attached = files.files_of_reports(db.session, [r.id for r in reports])
    return [
        {
            "id": r.id,
            "project_id": r.project_id,
            "text": r.text,
            "figures": [
                {"outcome_id": int(k), "quantity": v}
                for k, v in sorted(r.figures.items(), key=lambda kv: int(kv[0]))
            ],
            "created_at": r.created_at,
            "attachments": files.readable(db.session, user, attached[r.id]),
            "attachment_count": len(attached[r.id]),
        }
        for r in reports
    ]


@blp.route("/projects/<int:project_id>/progress-reports")
class ProgressReports(MethodView):
    @authenticated(blp, Role.ENTREPRENEUR)
    @blp.arguments(ProgressReportInSchema)
    @blp.response(201, ProgressReportOutSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="invalid_transition (not running)")
    def post(self, data, project_id):
        """Report on a running project (text and figures so far per outcome)."""
        user = current_api_user()
        report = services.post_progress_report(
            db.session,
            user,
            project_id,
            text=data["text"],
            figures={f["outcome_id"]: f["quantity"] for f in data["figures"]},
            now=now(),
        )
        return _with_attachments([report], user)[0]

    @optionally_authenticated(blp)
    @blp.response(200, ProgressReportOutSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, project_id):
        """A project's progress reports, newest first (public once listed)."""
        user = api_user_or_none()
        return _with_attachments(services.progress_reports(db.session, user, project_id), user)


@blp.route("/progress-reports/<int:report_id>/attachments")
class Attachments(MethodView):
    @authenticated(blp, Role.ENTREPRENEUR)
    @blp.arguments(UploadInSchema, location="multipart")
    @blp.response(201, FileOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="invalid_transition (not running)")
    def post(self, upload, report_id):
        """Attach a file to one of your progress reports while the project runs."""
        name, data = _upload(upload["file"])
        return files.add_attachment(
            db.session,
            file_store(),
            current_api_user(),
            report_id,
            filename=name,
            data=data,
            now=now(),
        )


# ---------------------------------------------------------------- accreditation


class AccreditationInSchema(ma.Schema):
    body = SingleLine(required=True, validate=validate.Length(min=1, max=200))
    reference = SingleLine(required=True, validate=validate.Length(min=1, max=100))
    themes = ma.fields.List(
        ma.fields.Enum(Theme, by_value=True),
        required=True,
        validate=validate.Length(min=1, max=len(Theme)),
    )
    valid_from = SaneDate(required=True)
    valid_until = SaneDate(required=True)


class AccreditationOutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    evaluator_id = ma.fields.Integer(attribute="user_id", required=True)
    body = ma.fields.String(required=True)
    reference = ma.fields.String(required=True)
    themes = ma.fields.List(ma.fields.String(), required=True)
    valid_from = ma.fields.Date(required=True)
    valid_until = ma.fields.Date(required=True)
    updated_at = ma.fields.AwareDateTime(required=True)


def accreditation_input(data: dict) -> services.AccreditationInput:
    return services.AccreditationInput(
        body=data["body"],
        reference=data["reference"],
        themes=tuple(t.value for t in data["themes"]),
        valid_from=data["valid_from"],
        valid_until=data["valid_until"],
    )


@blp.route("/evaluators/<int:evaluator_id>/accreditations")
class Accreditations(MethodView):
    @authenticated(blp, Role.ADMIN)
    @blp.response(200, AccreditationOutSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, evaluator_id):
        """An evaluator's accreditations, the latest ending first."""
        return services.evaluator_accreditations(db.session, current_api_user(), evaluator_id)

    @authenticated(blp, Role.ADMIN)
    @blp.arguments(AccreditationInSchema)
    @blp.response(201, AccreditationOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, data, evaluator_id):
        """Record an accreditation: body and reference, themes in scope, valid from/until."""
        return services.add_accreditation(
            db.session, current_api_user(), evaluator_id, accreditation_input(data), now=now()
        )


@blp.route("/accreditations/<int:accreditation_id>")
class OneAccreditation(MethodView):
    @authenticated(blp, Role.ADMIN)
    @blp.arguments(AccreditationInSchema)
    @blp.response(200, AccreditationOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def put(self, data, accreditation_id):
        """Change an accreditation (for example its end date when it is withdrawn)."""
        return services.update_accreditation(
            db.session, current_api_user(), accreditation_id, accreditation_input(data), now=now()
        )
