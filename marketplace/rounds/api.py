"""API: funding rounds (public), opened, edited and closed by admins."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from marketplace.accounts.models import Role
from marketplace.api.auth import authenticated, current_api_user
from marketplace.core.clock import now, today
from marketplace.dashboards.rounds import round_figures
from marketplace.extensions import db
from marketplace.projects.models import Project
from marketplace.rounds import services
from marketplace.rounds.models import Round
from marketplace.rounds.schemas import (
    RoundCloseSchema,
    RoundInSchema,
    RoundOutSchema,
    RoundPatchSchema,
)

blp = Blueprint("rounds_api", __name__, url_prefix="/api/v1", description="Funding rounds")


def round_body(found: Round) -> dict[str, Any]:
    return {
        **{
            name: getattr(found, name)
            for name in RoundOutSchema._declared_fields
            if name not in ("state", "figures")
        },
        "state": found.state.value,
        "figures": round_figures(db.session, found.id),
    }


def has_listed_projects(round_id: int) -> bool:
    return (
        db.session.scalar(
            select(Project.id)
            .where(Project.round_id == round_id, Project.listed_at.is_not(None))
            .limit(1)
        )
        is not None
    )


@blp.route("/rounds")
class Rounds(MethodView):
    @blp.response(200, RoundOutSchema(many=True))
    def get(self):
        """Every funding round, the latest deadline first, with its figures (public)."""
        return [round_body(r) for r in services.list_rounds(db.session)]

    @authenticated(blp, Role.ADMIN)
    @blp.arguments(RoundInSchema)
    @blp.response(201, RoundOutSchema)
    @blp.alt_response(409, response="CONFLICT", description="round_exists")
    def post(self, data):
        """Open a funding round (admins): its window for submissions and the funding
        deadline its projects share."""
        made = services.open_round(
            db.session, current_api_user(), services.RoundInput(**data), now=now(), today=today()
        )
        return round_body(made)


@blp.route("/rounds/<int:round_id>")
class OneRound(MethodView):
    @blp.response(200, RoundOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, round_id):
        """A funding round with its figures (public)."""
        return round_body(services.get_round(db.session, round_id))

    @authenticated(blp, Role.ADMIN)
    @blp.arguments(RoundPatchSchema)
    @blp.response(200, RoundOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="round_closed, round_exists")
    def patch(self, data, round_id):
        """Change an open round (admins); its deadline only while none of its projects is
        listed."""
        given = request.get_json(silent=True) or {}
        changes = {name: value for name, value in data.items() if name in given}
        changed = services.edit_round(
            db.session,
            current_api_user(),
            round_id,
            changes,
            listed=has_listed_projects(round_id),
            now=now(),
            today=today(),
        )
        return round_body(changed)


@blp.route("/rounds/<int:round_id>/close")
class CloseRound(MethodView):
    @authenticated(blp, Role.ADMIN)
    @blp.arguments(RoundCloseSchema)
    @blp.response(200, RoundOutSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="invalid_transition")
    def post(self, data, round_id):
        """Close a round (admins): it takes no more submissions; its projects go on."""
        closed = services.close_round(
            db.session, current_api_user(), round_id, now=now(), reason=data["reason"]
        )
        return round_body(closed)
