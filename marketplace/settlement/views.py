"""The settlement page of a project (the owner, admins and the project's buyers)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import select

from marketplace.accounts.models import Organisation
from marketplace.extensions import db
from marketplace.projects.models import Project
from marketplace.settlement import services as settlement

bp = Blueprint("settlement", __name__)


@bp.get("/projects/<int:project_id>/settlement")
@login_required
def settlement_page(project_id: int) -> str:
    found = settlement.get_settlement(db.session, current_user, project_id)
    shares = settlement.visible_shares(db.session, found, current_user)
    project = db.session.get_one(Project, project_id)
    names = dict(
        db.session.execute(
            select(Organisation.id, Organisation.name).where(
                Organisation.id.in_([s.organisation_id for s in shares])
            )
        ).all()
    )
    return render_template(
        "settlement/settlement.html",
        settlement=found,
        project=project,
        names=names,
        shares=shares,
    )
