"""Web pages: the marketplace, a project's page, the entrepreneur's project forms,
and the expert panel's review queue and valuation form.

Each page calls the same services as the JSON API; a refused form is shown
again with its field errors and the API's status.
"""

from __future__ import annotations

import math
from typing import Any

import marshmallow as ma
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from marketplace.accounts.authorisation import acts_for
from marketplace.accounts.models import Role
from marketplace.api.problems import flatten_errors, status_of
from marketplace.catalogue.schemas import GRADES
from marketplace.core.clock import now, today
from marketplace.core.errors import MarketplaceError, ValidationFailed
from marketplace.extensions import db
from marketplace.projects import services
from marketplace.projects.api import filters_from, project_changes, project_input
from marketplace.projects.counts import count_cache
from marketplace.projects.models import PUBLIC_STATES, ProjectState, Theme
from marketplace.projects.progress import funding_bar
from marketplace.projects.schemas import (
    ProjectInSchema,
    ProjectQuerySchema,
    ReasonSchema,
    ValuationInSchema,
)
from marketplace.projects.services import Override
from marketplace.rounds.models import RoundState
from marketplace.rounds.services import list_rounds
from marketplace.web.formatting import number
from marketplace.web.forms import (
    collect_rows,
    euros_to_cents,
    percent_to_rate,
    row_count,
    row_errors,
    with_fractions,
)
from marketplace.web.panels import project_panels
from marketplace.web.review import confirmed, rehearse, review_page
from outcomes.catalogue import list_outcome_types

bp = Blueprint("projects", __name__)

OUTCOME_FIELDS = ("outcome_type", "target_quantity", "evidence_grade")
OVERRIDE_FIELDS = (
    "evidence_grade",
    "deadweight",
    "displacement",
    "attribution",
    "drop_off",
    "duration_years",
    "reason",
)
PROJECT_FIELDS = ("title", "summary", "city", "theme", "funding_deadline", "start_date", "end_date")
PER_PAGE = 12


def _user():
    return current_user if current_user.is_authenticated else None


def _is(role: Role) -> bool:
    return current_user.is_authenticated and current_user.role is role


# ---------------------------------------------------------------- browsing


@bp.get("/projects")
def marketplace():
    """Projects open for funding first; every other stage is a filter away ("Any")."""
    errors: dict[str, list[str]] = {}
    query = request.args.to_dict()
    if "state" not in query:
        query["state"] = ProjectState.FUNDING.value
    try:
        args = ProjectQuerySchema().load({**query, "per_page": PER_PAGE}, unknown=ma.EXCLUDE)
    except ma.ValidationError as exc:
        # The page still lists, without the filters it could not read, and says which.
        errors = flatten_errors(exc.messages)
        bad = set(errors)
        args = ProjectQuerySchema().load(
            {k: v for k, v in query.items() if k not in bad} | {"per_page": PER_PAGE},
            unknown=ma.EXCLUDE,
        )
    user = _user()
    items, total = services.list_projects(db.session, user, filters_from(args, user), count_cache())
    pages = max(1, math.ceil(total / PER_PAGE))
    return render_template(
        "projects/marketplace.html",
        projects=items,
        total=total,
        args=args,
        page=args["page"],
        pages=pages,
        cities=services.cities(db.session),
        themes=list(Theme),
        states=PUBLIC_STATES,
        outcome_types=list_outcome_types(db.session),
        rounds=list_rounds(db.session),
        bars={p.id: funding_bar(p, compact=True) for p in items},
        errors=errors,
    ), (422 if errors else 200)


@bp.get("/projects/<int:project_id>")
def detail(project_id: int, *, status: int = 200, errors=None, form=None):
    project = services.get_project(db.session, _user(), project_id)
    is_owner = acts_for(_user(), project.organisation_id)
    return render_template(
        "projects/detail.html",
        **project_panels(project, _user(), is_owner),
        project=project,
        history=services.history(db.session, project),
        bar=funding_bar(project),
        is_owner=is_owner,
        is_admin=_is(Role.ADMIN),
        errors=errors or {},
        form=form or {},
        states=ProjectState,
    ), status


@bp.get("/my/projects")
@login_required
def mine():
    if not _is(Role.ENTREPRENEUR):
        abort(403)
    items, total = services.list_projects(
        db.session,
        current_user,
        services.ProjectFilters(organisation_id=current_user.organisation_id, per_page=200),
    )
    return render_template("projects/mine.html", projects=items, total=total)


@bp.get("/review")
@login_required
def review():
    if not _is(Role.ADMIN):
        abort(403)
    queues = {}
    for state in (ProjectState.SUBMITTED, ProjectState.VALUED):
        queues[state], _total = services.list_projects(
            db.session,
            current_user,
            services.ProjectFilters(state=state, sort="deadline", per_page=200),
        )
    rounds = {r.id: r for r in list_rounds(db.session)}

    def by_round(projects: list) -> list[tuple]:
        """The queue in groups: each round's projects together (valued and listed together),
        rounds by deadline, then the projects outside rounds."""
        groups: dict = {}
        for project in projects:
            groups.setdefault(project.round_id, []).append(project)
        order = sorted(
            groups, key=lambda r: (r is None, rounds[r].funding_deadline if r else None, r or 0)
        )
        return [(rounds.get(r) if r else None, groups[r]) for r in order]

    return render_template(
        "projects/review.html", queues={s: by_round(items) for s, items in queues.items()}
    )


# ---------------------------------------------------------------- the entrepreneur's form


def _form_body(values) -> tuple[dict, list[int], dict[str, list[str]]]:
    """The API body a project form describes, the row of each line, and form-only errors."""
    rows = row_count(values, 3)
    body: dict = {name: values.get(name, "").strip() for name in PROJECT_FIELDS}
    errors: dict[str, list[str]] = {}
    cents = euros_to_cents(values.get("budget", ""))
    if cents is None:
        errors["budget"] = [_("Give the budget in euros, such as 60000 or 60000.50.")]
    else:
        body["budget_cents"] = cents
    rate = percent_to_rate(values.get("premium", "25"))
    if rate is None:
        errors["premium"] = [_("Give the premium as a percentage, such as 25.")]
    else:
        body["premium_rate"] = str(rate)
    body["outcomes"], row_of_line = collect_rows(
        values, "outcomes", OUTCOME_FIELDS, rows, ("evidence_grade",)
    )
    # A round chosen: its deadline replaces the one typed (so none need be typed).
    body["round_id"] = values.get("round_id", "").strip() or None
    if body["round_id"] and not body["funding_deadline"]:
        body.pop("funding_deadline")
    return body, row_of_line, errors


FORM_NAMES = {"budget_cents": "budget", "premium_rate": "premium"}


def _to_form_errors(errors: dict[str, list[str]], row_of_line: list[int]) -> dict:
    named = {FORM_NAMES.get(k, k): v for k, v in errors.items()}
    return row_errors(named, "outcomes", row_of_line)


def _render_form(project, values, errors, status):
    rows = row_count(values, max(3, len(project.outcomes) if project else 3))
    return render_template(
        "projects/form.html",
        project=project,
        values=values,
        errors=errors,
        rows=rows,
        themes=list(Theme),
        grades=GRADES,
        outcome_types=list_outcome_types(db.session),
        rounds=[
            r for r in list_rounds(db.session, RoundState.OPEN) if r.takes_submissions(today())
        ],
    ), status


def _values_of(project) -> dict[str, str]:
    values = {
        name: str(getattr(project, name).value if name == "theme" else getattr(project, name))
        for name in PROJECT_FIELDS
    }
    euros, cents = divmod(project.budget_cents, 100)
    values["budget"] = f"{euros}.{cents:02d}" if cents else str(euros)
    values["premium"] = str((project.premium_rate * 100).normalize())
    for i, line in enumerate(project.outcomes):
        values[f"outcomes-{i}-outcome_type"] = line.outcome_type.code
        values[f"outcomes-{i}-target_quantity"] = str(line.target_quantity)
        values[f"outcomes-{i}-evidence_grade"] = line.evidence_grade.value
    values["rows"] = str(max(3, len(project.outcomes)))
    values["round_id"] = str(project.round_id or "")
    return values


@bp.route("/projects/new", methods=["GET", "POST"])
@login_required
def new():
    if not _is(Role.ENTREPRENEUR):
        abort(403)
    values = request.form.to_dict() if request.method == "POST" else {"premium": "25"}
    if request.method == "GET" or request.form.get("action") != "save":
        return _render_form(None, values, {}, 200)
    body, row_of_line, errors = _form_body(request.form)
    try:
        data = ProjectInSchema().load(body, unknown=ma.EXCLUDE)
        if errors:
            raise ma.ValidationError({})
        project = services.create_draft(
            db.session, current_user, project_input(data), now=now(), today=today()
        )
    except ma.ValidationError as exc:
        return _render_form(
            None,
            values,
            _to_form_errors({**flatten_errors(exc.messages), **errors}, row_of_line),
            422,
        )
    except MarketplaceError as exc:
        return _render_form(
            None, values, _to_form_errors({**exc.errors, **errors}, row_of_line), status_of(exc)
        )
    flash(_("Your draft is saved. Submit it when it is ready for the expert panel."), "success")
    return redirect(url_for("projects.detail", project_id=project.id))


@bp.route("/projects/<int:project_id>/edit", methods=["GET", "POST"])
@login_required
def edit(project_id: int):
    project = services.get_project(db.session, current_user, project_id)
    if not acts_for(current_user, project.organisation_id):
        abort(403)
    if project.state is not ProjectState.DRAFT:
        flash(_("Only a draft can be edited."), "info")
        return redirect(url_for("projects.detail", project_id=project.id))
    if request.method == "GET":
        return _render_form(project, _values_of(project), {}, 200)
    values = request.form.to_dict()
    if request.form.get("action") != "save":
        return _render_form(project, values, {}, 200)
    body, row_of_line, errors = _form_body(request.form)
    try:
        data = ProjectInSchema().load(body, unknown=ma.EXCLUDE)
        if errors:
            raise ma.ValidationError({})
        services.update_draft(
            db.session, current_user, project, project_changes(data), now=now(), today=today()
        )
    except ma.ValidationError as exc:
        return _render_form(
            project,
            values,
            _to_form_errors({**flatten_errors(exc.messages), **errors}, row_of_line),
            422,
        )
    except MarketplaceError as exc:
        return _render_form(
            project, values, _to_form_errors({**exc.errors, **errors}, row_of_line), status_of(exc)
        )
    flash(_("Your changes are saved."), "success")
    return redirect(url_for("projects.detail", project_id=project.id))


# ---------------------------------------------------------------- actions


def _act(project_id: int, act, done: str):
    project = services.get_project(db.session, current_user, project_id)
    try:
        act(project)
    except MarketplaceError as exc:
        db.session.rollback()
        errors = exc.errors or {"_action": [exc.message]}
        return detail(project_id, status=status_of(exc), errors=errors, form=request.form.to_dict())
    flash(done, "success")
    return redirect(url_for("projects.detail", project_id=project_id))


@bp.post("/projects/<int:project_id>/submit")
@login_required
def submit(project_id: int):
    return _act(
        project_id,
        lambda p: services.submit(
            db.session,
            current_user,
            p,
            now=now(),
            today=today(),
            rolling=current_app.extensions["settings"].rolling_submissions,
        ),
        _("Submitted: the expert panel will value your project."),
    )


@bp.post("/projects/<int:project_id>/withdraw")
@login_required
def withdraw(project_id: int):
    reason = request.form.get("reason", "").strip()[:2000]
    if not reason:
        project = services.get_project(db.session, current_user, project_id)
        if not acts_for(current_user, project.organisation_id):
            abort(403)
        errors = {"reason": [_("Say why the project is withdrawn; the reason is public.")]}
        return detail(project_id, status=422, errors=errors, form=request.form.to_dict())
    if not confirmed():
        return _review_withdraw(project_id, reason)
    return _act(
        project_id,
        lambda p: services.withdraw(db.session, current_user, p, now=now(), reason=reason),
        _("The project is withdrawn."),
    )


def _review_withdraw(project_id: int, reason: str):
    def act() -> tuple[str, bool, int]:
        project = services.get_project(db.session, current_user, project_id)
        funding, pledged = project.state is ProjectState.FUNDING, project.tokens_pledged
        services.withdraw(db.session, current_user, project, now=now(), reason=reason)
        return project.title, funding, pledged

    try:
        title, funding, tokens = rehearse(act)
    except MarketplaceError as exc:
        return detail(project_id, status=status_of(exc), errors={"_action": [exc.message]})
    consequences = [
        _("%(project)s leaves the marketplace for good; it cannot be listed again.", project=title),
        _("The reason is shown in its public history: “%(reason)s”", reason=reason),
    ]
    if funding and tokens:
        consequences.append(
            _(
                "The pledges for %(tokens)s tokens are released and their buyers told; "
                "nothing was charged.",
                tokens=number(tokens),
            )
        )
    return review_page(
        title=_("Withdraw %(project)s", project=title),
        consequences=consequences,
        confirm=_("Withdraw the project"),
        back=url_for("projects.detail", project_id=project_id),
        danger=True,
    )


@bp.post("/projects/<int:project_id>/valuation")
@login_required
def value(project_id: int):
    def run(project):
        overrides, row_of_line = collect_rows(
            with_fractions(request.form.to_dict()),
            "overrides",
            ("outcome_type", *OVERRIDE_FIELDS),
            len(project.outcomes),
            ("outcome_type",),
        )
        # A row counts only when the admin changed an adjustment or wrote a reason.
        body: dict[str, Any] = {"overrides": overrides}
        premium = request.form.get("premium", "").strip()
        if premium:
            rate = percent_to_rate(premium)
            if rate is None:
                raise ValidationFailed(
                    errors={"premium": [_("Give the premium as a percentage, such as 25.")]}
                )
            body["premium_rate"] = str(rate)
        try:
            data = ValuationInSchema().load(body)
        except ma.ValidationError as exc:
            raise ValidationFailed(
                errors=row_errors(flatten_errors(exc.messages), "overrides", row_of_line)
            ) from None
        try:
            services.value_project(
                db.session,
                current_user,
                project,
                overrides=[Override(**o) for o in data["overrides"]],
                premium_rate=data.get("premium_rate"),
                now=now(),
            )
        except ValidationFailed as exc:
            raise ValidationFailed(
                errors=row_errors(exc.errors, "overrides", row_of_line)
            ) from None

    return _act(project_id, run, _("Valued. Check the figures, then list or reject it."))


@bp.post("/projects/<int:project_id>/list")
@login_required
def list_project(project_id: int):
    return _act(
        project_id,
        lambda p: services.list_for_funding(db.session, current_user, p, now=now(), today=today()),
        _("Listed: the project is open for funding."),
    )


@bp.post("/projects/<int:project_id>/reject")
@login_required
def reject(project_id: int):
    def run(project):
        try:
            data = ReasonSchema().load({"reason": request.form.get("reason", "")})
        except ma.ValidationError as exc:
            raise ValidationFailed(errors=flatten_errors(exc.messages)) from None
        services.reject(db.session, current_user, project, reason=data["reason"], now=now())

    return _act(project_id, run, _("The project is rejected; the entrepreneur sees why."))
