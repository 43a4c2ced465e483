"""API: the audit log, for administrators."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from marketplace.accounts.models import Role
from marketplace.api.auth import authenticated
from marketplace.audit import services as audit
from marketplace.audit.models import KINDS
from marketplace.core import validate
from marketplace.core.schemas import PageArgsSchema, SaneDate, page_schema
from marketplace.extensions import db

blp = Blueprint("audit_api", __name__, url_prefix="/api/v1", description="Audit log")


class AuditQuerySchema(PageArgsSchema):
    kind = ma.fields.String(validate=validate.OneOf(KINDS))
    actor = ma.fields.String(
        validate=validate.Length(min=1, max=254),
        metadata={"description": "part of the e-mail (or scheduler, cli, anonymous)"},
    )
    subject = ma.fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "how the subject starts, e.g. project:42 or journal:"},
    )
    from_ = SaneDate(data_key="from", metadata={"description": "first day, inclusive"})
    to = SaneDate(metadata={"description": "last day, inclusive"})

    @ma.validates_schema
    def _period(self, data, **_kwargs):
        if data.get("from_") and data.get("to") and data["from_"] > data["to"]:
            raise ma.ValidationError("The period ends before it starts.", "to")


class AuditEventSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    at = ma.fields.AwareDateTime(required=True)
    kind = ma.fields.String(required=True)
    action = ma.fields.String(required=True)
    subject = ma.fields.String(required=True)
    actor_id = ma.fields.Integer(allow_none=True, required=True)
    actor = ma.fields.String(required=True)
    via = ma.fields.String(required=True)
    remote_addr = ma.fields.String(allow_none=True, required=True)
    request_id = ma.fields.String(allow_none=True, required=True)
    detail = ma.fields.Dict(required=True)


AuditPageSchema = page_schema(AuditEventSchema, "AuditEventPage")


@blp.route("/audit-events")
class AuditEvents(MethodView):
    @authenticated(blp, Role.ADMIN)
    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, AuditPageSchema)
    def get(self, args):
        """The audit log, newest first: money, transitions, refusals, admin changes."""
        since, until = audit.period(args.get("from_"), args.get("to"))
        filters = audit.AuditFilters(
            kind=args.get("kind"),
            actor=args.get("actor"),
            subject=args.get("subject"),
            since=since,
            until=until,
            page=args["page"],
            per_page=args["per_page"],
        )
        events, total = audit.search(db.session, filters)
        return {"items": events, "page": args["page"], "per_page": args["per_page"], "total": total}
