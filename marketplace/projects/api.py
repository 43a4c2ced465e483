"""API: projects, from draft to listing, and browsing."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from marketplace.accounts.models import Role
from marketplace.api.auth import (
    api_user_or_none,
    authenticated,
    current_api_user,
    optionally_authenticated,
)
from marketplace.core.clock import now, today
from marketplace.extensions import db
from marketplace.projects import services
from marketplace.projects.counts import count_cache
from marketplace.projects.models import ProjectState, Theme
from marketplace.projects.schemas import (
    HistoryOutSchema,
    ProjectInSchema,
    ProjectOutSchema,
    ProjectPageSchema,
    ProjectPatchSchema,
    ProjectQuerySchema,
    ReasonSchema,
    ValuationInSchema,
    WithdrawSchema,
)
from marketplace.projects.services import (
    CommitmentInput,
    Override,
    ProjectFilters,
    ProjectInput,
)

blp = Blueprint("projects_api", __name__, url_prefix="/api/v1", description="Projects")


def project_input(data: dict) -> ProjectInput:
    return ProjectInput(**{**data, "outcomes": [CommitmentInput(**c) for c in data["outcomes"]]})


def project_changes(data: dict) -> dict:
    if "outcomes" in data:
        return {**data, "outcomes": [CommitmentInput(**c) for c in data["outcomes"]]}
    return data


def filters_from(args: dict, user) -> ProjectFilters:
    return ProjectFilters(
        state=ProjectState(args["state"]) if args.get("state") else None,
        city=args.get("city") or None,
        theme=Theme(args["theme"]) if args.get("theme") else None,
        outcome_type=args.get("outcome_type") or None,
        q=args.get("q") or None,
        organisation_id=user.organisation_id if args.get("mine") and user else None,
        round_id=args.get("round_id"),
        sort=args["sort"],
        page=args["page"],
        per_page=args["per_page"],
    )


@blp.route("/projects")
class Projects(MethodView):
    @optionally_authenticated(blp)
    @blp.arguments(ProjectQuerySchema, location="query")
    @blp.response(200, ProjectPageSchema)
    def get(self, args):
        """Listed projects (and, with a token, your own drafts; admins see all)."""
        user = api_user_or_none()
        items, total = services.list_projects(
            db.session, user, filters_from(args, user), count_cache()
        )
        return {"items": items, "page": args["page"], "per_page": args["per_page"], "total": total}

    @authenticated(blp, Role.ENTREPRENEUR)
    @blp.arguments(ProjectInSchema)
    @blp.response(201, ProjectOutSchema)
    def post(self, data):
        """Create a draft project with its outcome commitments."""
        return services.create_draft(
            db.session, current_api_user(), project_input(data), now=now(), today=today()
        )


@blp.route("/projects/<int:project_id>")
class ProjectItem(MethodView):
    @optionally_authenticated(blp)
    @blp.response(200, ProjectOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, project_id):
        """One project, as far as you may see it."""
        return services.get_project(db.session, api_user_or_none(), project_id)

    @authenticated(blp, Role.ENTREPRENEUR)
    @blp.arguments(ProjectPatchSchema)
    @blp.response(200, ProjectOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="invalid_transition: not a draft")
    def patch(self, data, project_id):
        """Change a draft; `outcomes`, when given, replaces every line."""
        user = current_api_user()
        project = services.get_project(db.session, user, project_id)
        return services.update_draft(
            db.session, user, project, project_changes(data), now=now(), today=today()
        )


def _action(project_id: int, act) -> object:
    user = current_api_user()
    project = services.get_project(db.session, user, project_id)
    act(user, project)
    return project


@blp.route("/projects/<int:project_id>/submit")
class Submit(MethodView):
    @authenticated(blp, Role.ENTREPRENEUR)
    @blp.response(200, ProjectOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="invalid_transition")
    def post(self, project_id):
        """Send a draft to the expert panel."""
        return _action(
            project_id,
            lambda user, project: services.submit(
                db.session,
                user,
                project,
                now=now(),
                today=today(),
                rolling=current_app.extensions["settings"].rolling_submissions,
            ),
        )


@blp.route("/projects/<int:project_id>/withdraw")
class Withdraw(MethodView):
    @authenticated(blp, Role.ENTREPRENEUR)
    @blp.arguments(WithdrawSchema)
    @blp.response(200, ProjectOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="invalid_transition")
    def post(self, data, project_id):
        """Withdraw a project (draft, submitted, valued or funding)."""
        return _action(
            project_id,
            lambda user, project: services.withdraw(
                db.session, user, project, now=now(), reason=data["reason"]
            ),
        )


@blp.route("/projects/<int:project_id>/valuation")
class Valuation(MethodView):
    @authenticated(blp, Role.ADMIN)
    @blp.arguments(ValuationInSchema)
    @blp.response(200, ProjectOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="invalid_transition")
    def post(self, data, project_id):
        """Value a submitted project (or re-value a valued one); the snapshot is frozen."""
        overrides = [Override(**o) for o in data["overrides"]]
        return _action(
            project_id,
            lambda user, project: services.value_project(
                db.session,
                user,
                project,
                overrides=overrides,
                premium_rate=data.get("premium_rate"),
                now=now(),
            ),
        )


@blp.route("/projects/<int:project_id>/list")
class List(MethodView):
    @authenticated(blp, Role.ADMIN)
    @blp.response(200, ProjectOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(
        409,
        response="CONFLICT",
        description="invalid_transition, not_listable, funding_deadline_passed",
    )
    def post(self, project_id):
        """List a valued project for funding: it becomes public."""
        return _action(
            project_id,
            lambda user, project: services.list_for_funding(
                db.session, user, project, now=now(), today=today()
            ),
        )


@blp.route("/projects/<int:project_id>/reject")
class Reject(MethodView):
    @authenticated(blp, Role.ADMIN)
    @blp.arguments(ReasonSchema)
    @blp.response(200, ProjectOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="invalid_transition")
    def post(self, data, project_id):
        """Reject a submitted or valued project, with the reason."""
        return _action(
            project_id,
            lambda user, project: services.reject(
                db.session, user, project, reason=data["reason"], now=now()
            ),
        )


@blp.route("/projects/<int:project_id>/history")
class History(MethodView):
    @optionally_authenticated(blp)
    @blp.response(200, HistoryOutSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, project_id):
        """Every state change of the project: when, from, to, who and why."""
        project = services.get_project(db.session, api_user_or_none(), project_id)
        return services.history(db.session, project)
