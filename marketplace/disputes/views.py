"""Web pages: raising a concern, the admins' triage, a project's disputes, and the
public buffer pool."""

from __future__ import annotations

import marshmallow as ma
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from marketplace.accounts.models import Role, User
from marketplace.api.problems import flatten_errors, status_of
from marketplace.core.clock import now
from marketplace.core.errors import Forbidden, MarketplaceError
from marketplace.disputes import services
from marketplace.disputes.api import (
    ConcernInSchema,
    ReasonInSchema,
    UpholdInSchema,
    buffer_document,
)
from marketplace.disputes.models import ConcernState
from marketplace.evaluations.api import file_store
from marketplace.extensions import db
from marketplace.projects.models import Project
from marketplace.settlement.models import Settlement
from marketplace.web.panels import project_panel
from outcomes.evaluation import Evaluation

bp = Blueprint("disputes", __name__)


@project_panel
def disputes_panel(project, viewer, is_owner) -> dict:
    """The project page's disputes (public) and whether the viewer may raise a concern."""
    settlement = db.session.scalar(select(Settlement).where(Settlement.project_id == project.id))
    may_raise = (
        settlement is not None
        and project.state.value == "settled"
        and services.open_for_concerns(settlement, now())
    )
    return {"disputes": services.public_disputes(db.session, project.id), "may_raise": may_raise}


def _concern_page(project_id: int, status: int = 200, errors=None, form=None):
    project, _settlement = services.settled_project(db.session, project_id)
    return render_template(
        "disputes/new.html", project=project, errors=errors or {}, form=form or {}
    ), status


@bp.get("/projects/<int:project_id>/concerns/new")
@login_required
def new_concern(project_id: int):
    return _concern_page(project_id)


@bp.post("/projects/<int:project_id>/concerns")
@login_required
def file_concern(project_id: int):
    values = request.form.to_dict()
    upload = request.files.get("file")
    try:
        data = ConcernInSchema().load({"text": values.get("text", "")})
        concern = services.file_concern(
            db.session, current_user, project_id, text=data["text"], now=now()
        )
        if upload is not None and upload.filename:  # in the same transaction: both or neither
            services.add_file(
                db.session,
                file_store(),
                current_user,
                concern.id,
                filename=upload.filename,
                data=upload.read(),
                now=now(),
            )
    except ma.ValidationError as exc:
        return _concern_page(project_id, 422, flatten_errors(exc.messages), values)
    except MarketplaceError as exc:
        db.session.rollback()
        return _concern_page(
            project_id, status_of(exc), exc.errors or {"_action": [exc.message]}, values
        )
    flash(_("Your concern is filed. The platform's administrators will look into it."), "success")
    return redirect(url_for("projects.detail", project_id=project_id))


def _admin() -> None:
    if current_user.role is not Role.ADMIN:
        raise Forbidden("This page is for the platform's administrators.")


@bp.get("/admin/concerns")
@login_required
def concerns():
    _admin()
    raw = request.args.get("state", "")
    state = ConcernState(raw) if raw in {s.value for s in ConcernState} else None
    items, total = services.list_concerns(
        db.session, current_user, state=state, page=1, per_page=200
    )
    titles = dict(
        db.session.execute(
            select(Project.id, Project.title).where(Project.id.in_({c.project_id for c in items}))
        ).all()
    )
    return render_template(
        "disputes/list.html",
        concerns=items,
        total=total,
        titles=titles,
        state=raw if state else "",
        states=[s.value for s in ConcernState],
    )


def _detail(concern_id: int, status: int = 200, errors=None, form=None):
    _admin()
    concern = services.get_concern(db.session, current_user, concern_id)
    project = db.session.get_one(Project, concern.project_id)
    settlement = db.session.scalar(
        select(Settlement).where(Settlement.project_id == concern.project_id)
    )
    evaluation = db.session.get(Evaluation, settlement.evaluation_id) if settlement else None
    verified = {r.commitment_id: r for r in evaluation.results} if evaluation else {}
    return render_template(
        "disputes/detail.html",
        concern=concern,
        project=project,
        settlement=settlement,
        verified=verified,
        standing=services.minted_now(db.session, settlement) if settlement else 0,
        history=services.history(db.session, concern.id),
        files=services.files_of(db.session, concern.id),
        raiser=db.session.get_one(User, concern.user_id),
        errors=errors or {},
        form=form or {},
    ), status


@bp.get("/admin/concerns/<int:concern_id>")
@login_required
def concern(concern_id: int):
    return _detail(concern_id)


def _decide(concern_id: int, act, done: str):
    _admin()
    values = request.form.to_dict()
    try:
        data = ReasonInSchema().load({"reason": values.get("reason", "")})
        act(db.session, current_user, concern_id, reason=data["reason"], now=now())
    except ma.ValidationError as exc:
        return _detail(concern_id, 422, flatten_errors(exc.messages), values)
    except MarketplaceError as exc:
        db.session.rollback()
        return _detail(concern_id, status_of(exc), exc.errors or {"_action": [exc.message]}, values)
    flash(done, "success")
    return redirect(url_for("disputes.concern", concern_id=concern_id))


@bp.post("/admin/concerns/<int:concern_id>/dispute")
@login_required
def open_dispute(concern_id: int):
    return _decide(
        concern_id,
        services.open_dispute,
        _("The dispute is open: the project shows disputed and its tokens are frozen."),
    )


@bp.post("/admin/concerns/<int:concern_id>/dismiss")
@login_required
def dismiss(concern_id: int):
    return _decide(concern_id, services.dismiss, _("Dismissed."))


@bp.post("/admin/concerns/<int:concern_id>/uphold")
@login_required
def uphold(concern_id: int):
    _admin()
    values = request.form.to_dict()
    concern = services.get_concern(db.session, current_user, concern_id)
    project = db.session.get_one(Project, concern.project_id)
    quantities = [
        {"outcome_id": c.id, "verified_quantity": values.get(f"quantity-{c.id}", "")}
        for c in project.outcomes
        if values.get(f"quantity-{c.id}", "").strip()
    ]
    try:
        data = UpholdInSchema().load(
            {"finding": values.get("finding", ""), "quantities": quantities}
        )
        services.uphold(
            db.session,
            current_user,
            concern_id,
            finding=data["finding"],
            corrections=[services.Correction(**q) for q in data["quantities"]],
            now=now(),
        )
    except ma.ValidationError as exc:
        return _detail(
            concern_id, 422, _quantity_errors(flatten_errors(exc.messages), quantities), values
        )
    except MarketplaceError as exc:
        db.session.rollback()
        errors = (
            _quantity_errors(exc.errors, quantities) if exc.errors else {"_action": [exc.message]}
        )
        return _detail(concern_id, status_of(exc), errors, values)
    flash(_("Upheld. The excess tokens are cancelled from the buffer pool."), "success")
    return redirect(url_for("disputes.concern", concern_id=concern_id))


def _quantity_errors(errors: dict, quantities: list[dict]) -> dict:
    """``quantities.0.verified_quantity`` -> ``quantity-<outcome id>``."""
    mapped = {}
    for name, messages in errors.items():
        parts = name.split(".")
        if (
            len(parts) == 3
            and parts[0] == "quantities"
            and parts[1].isdigit()
            and int(parts[1]) < len(quantities)
        ):
            mapped[f"quantity-{quantities[int(parts[1])]['outcome_id']}"] = messages
        else:
            mapped[name] = messages
    return mapped


@bp.get("/registry/buffer")
def buffer():
    document = buffer_document()
    titles = {row.project_id: row.title for row in document["projects"]}
    return render_template("disputes/buffer.html", titles=titles, **document)
