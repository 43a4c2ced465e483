"""Web pages: funding rounds in public (each with its projects and totals), and the
admin's forms to open, edit and close them."""

from __future__ import annotations

import marshmallow as ma
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from marketplace.accounts.models import Role
from marketplace.api.problems import flatten_errors, status_of
from marketplace.core.clock import now, today
from marketplace.core.errors import Forbidden, MarketplaceError
from marketplace.dashboards.rounds import round_figures
from marketplace.extensions import db
from marketplace.projects.models import Project
from marketplace.rounds import services
from marketplace.rounds.api import has_listed_projects
from marketplace.rounds.models import THEMES, RoundState
from marketplace.rounds.schemas import RoundInSchema
from marketplace.web.review import confirmed, review_page

bp = Blueprint("rounds", __name__)

FIELDS = ("name", "description", "submissions_open", "submissions_close", "funding_deadline")


def _admin() -> None:
    if not current_user.is_authenticated or current_user.role is not Role.ADMIN:
        raise Forbidden("Only the platform team runs funding rounds.")


def _form_input() -> dict:
    """The form as the API's schema reads it: themes checked, cities one per line or comma."""
    form = request.form
    given: dict = {name: form.get(name, "") for name in FIELDS}
    given["themes"] = form.getlist("themes")
    given["cities"] = [c.strip() for c in form.get("cities", "").replace("\n", ",").split(",")]
    given["cities"] = [c for c in given["cities"] if c]
    return given


def _echo() -> dict:
    """The form as sent, to show again (every theme ticked)."""
    shown: dict = request.form.to_dict()
    shown["themes"] = request.form.getlist("themes")
    return shown


def _form_page(template_form: dict, errors: dict, status: int, found=None):
    return render_template(
        "rounds/form.html",
        form=template_form,
        errors=errors,
        found=found,
        themes=list(THEMES),
    ), status


@bp.get("/rounds")
def listing():
    rounds = services.list_rounds(db.session)
    return render_template(
        "rounds/list.html",
        rounds=rounds,
        figures={r.id: round_figures(db.session, r.id) for r in rounds},
        is_admin=current_user.is_authenticated and current_user.role is Role.ADMIN,
    )


@bp.get("/rounds/<int:round_id>")
def detail(round_id: int):
    found = services.get_round(db.session, round_id)
    projects = list(
        db.session.scalars(
            select(Project)
            .where(Project.round_id == round_id, Project.listed_at.is_not(None))
            .order_by(Project.listed_at, Project.id)
        )
    )
    return render_template(
        "rounds/detail.html",
        found=found,
        figures=round_figures(db.session, round_id),
        projects=projects,
        is_admin=current_user.is_authenticated and current_user.role is Role.ADMIN,
        is_open=found.state is RoundState.OPEN,
    )


@bp.route("/rounds/new", methods=["GET", "POST"])
@login_required
def new():
    _admin()
    if request.method == "GET":
        return _form_page({}, {}, 200)
    given = _form_input()
    try:
        data = RoundInSchema().load(given)
        made = services.open_round(
            db.session, current_user, services.RoundInput(**data), now=now(), today=today()
        )
    except ma.ValidationError as exc:
        return _form_page(_echo(), flatten_errors(exc.messages), 422)
    except MarketplaceError as exc:
        db.session.rollback()
        return _form_page(_echo(), exc.errors or {"_action": [exc.message]}, status_of(exc))
    flash(_("The round %(name)s is open.", name=made.name), "success")
    return redirect(url_for("rounds.detail", round_id=made.id))


@bp.route("/rounds/<int:round_id>/edit", methods=["GET", "POST"])
@login_required
def edit(round_id: int):
    _admin()
    found = services.get_round(db.session, round_id)
    if request.method == "GET":
        shown = {name: getattr(found, name) for name in FIELDS}
        shown["themes"], shown["cities"] = found.themes, ", ".join(found.cities)
        return _form_page(shown, {}, 200, found)
    try:
        data = RoundInSchema().load(_form_input())
        services.edit_round(
            db.session,
            current_user,
            round_id,
            data,
            listed=has_listed_projects(round_id),
            now=now(),
            today=today(),
        )
    except ma.ValidationError as exc:
        return _form_page(_echo(), flatten_errors(exc.messages), 422, found)
    except MarketplaceError as exc:
        db.session.rollback()
        errors = exc.errors or {"_action": [exc.message]}
        return _form_page(_echo(), errors, status_of(exc), found)
    flash(_("The round is changed."), "success")
    return redirect(url_for("rounds.detail", round_id=round_id))


@bp.post("/rounds/<int:round_id>/close")
@login_required
def close(round_id: int):
    _admin()
    found = services.get_round(db.session, round_id)
    if not confirmed():
        return review_page(
            title=_("Close %(round)s", round=found.name),
            consequences=[
                _("The round takes no more submissions; its projects go on as they are."),
                _("A closed round is not opened again."),
            ],
            confirm=_("Close the round"),
            back=url_for("rounds.detail", round_id=round_id),
            danger=True,
        )
    services.close_round(db.session, current_user, round_id, now=now())
    flash(_("The round is closed."), "success")
    return redirect(url_for("rounds.detail", round_id=round_id))
