"""Web pages: the evaluator's queue and evaluation form, the panel's assignment and
approval, and a project's settlement."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import exists, select

from marketplace.accounts.models import Role, User
from marketplace.api.problems import flatten_errors, status_of
from marketplace.core.clock import now
from marketplace.core.errors import Forbidden, MarketplaceError
from marketplace.evaluations import files, services
from marketplace.evaluations.api import (
    AccreditationInSchema,
    DeclarationInSchema,
    ProgressReportInSchema,
    ResultsInSchema,
    ReturnInSchema,
    accreditation_input,
    file_response,
    file_store,
)
from marketplace.extensions import db
from marketplace.projects.models import Project, ProjectState, Theme
from marketplace.projects.views import detail
from marketplace.web.formatting import number
from marketplace.web.panels import project_panel
from marketplace.web.review import confirmed, rehearse, review_page
from outcomes.evaluation import Evaluation, ResultInput

bp = Blueprint("evaluations", __name__)


def _require(*roles: Role) -> None:
    if current_user.role not in roles:
        raise Forbidden("This page is for the expert panel and evaluators.")


@bp.get("/evaluations")
@login_required
def queue(status: int = 200, errors=None):
    _require(Role.EVALUATOR, Role.ADMIN)
    items, _total = services.list_evaluations(db.session, current_user, page=1, per_page=200)
    projects = {
        p.id: p
        for p in db.session.scalars(
            select(Project).where(Project.id.in_({e.project_id for e in items}))
        )
    }
    unassigned, evaluators = [], {}
    if current_user.role is Role.ADMIN:
        unassigned = list(
            db.session.scalars(
                select(Project)
                .where(
                    Project.state.in_((ProjectState.RUNNING, ProjectState.EVALUATING)),
                    ~exists().where(Evaluation.project_id == Project.id),
                )
                .order_by(Project.end_date)
            )
        )
        # Per project: accredited, independent evaluators first, the least busy first.
        evaluators = {
            p.id: services.candidates(db.session, current_user, p, day=now().date())
            for p in unassigned
        }
    return render_template(
        "evaluations/queue.html",
        evaluations=items,
        projects=projects,
        unassigned=unassigned,
        evaluators=evaluators,
        errors=errors or {},
    ), status


@bp.post("/projects/<int:project_id>/evaluator")
@login_required
def assign(project_id: int):
    _require(Role.ADMIN)
    try:
        evaluator_id = int(request.form.get("evaluator_id", ""))
        services.assign_evaluator(db.session, current_user, project_id, evaluator_id, now=now())
    except ValueError:
        return queue(422, {"evaluator_id": [_("Choose an evaluator.")]})
    except MarketplaceError as exc:
        db.session.rollback()
        return queue(status_of(exc), exc.errors or {"_action": [exc.message]})
    flash(_("The evaluator is assigned."), "success")
    return redirect(url_for("evaluations.queue"))


def _form_page(evaluation_id: int, status: int = 200, errors=None, form=None):
    evaluation = services.get_evaluation(db.session, current_user, evaluation_id)
    project = db.session.get(Project, evaluation.project_id)
    recorded = {r.commitment_id: r for r in evaluation.results}
    evaluator = db.session.get(User, evaluation.evaluator_id)
    return render_template(
        "evaluations/form.html",
        evaluation=evaluation,
        project=project,
        recorded=recorded,
        evaluator=evaluator,
        evidence=files.files_of_evaluation(db.session, evaluation.id),
        errors=errors or {},
        form=form or {},
    ), status


@bp.get("/evaluations/<int:evaluation_id>")
@login_required
def form(evaluation_id: int):
    _require(Role.EVALUATOR, Role.ADMIN)
    return _form_page(evaluation_id)


@bp.post("/evaluations/<int:evaluation_id>/results")
@login_required
def save_results(evaluation_id: int):
    """The evaluator's one form: results, and evidence files uploaded with them, so what
    was typed is never lost to an upload. ``action``: save, submit or upload."""
    _require(Role.EVALUATOR)
    values = request.form.to_dict()
    evaluation = services.get_evaluation(db.session, current_user, evaluation_id)
    project = db.session.get_one(Project, evaluation.project_id)
    upload = request.files.get("file")
    stored = None
    if upload is not None and upload.filename:
        stored = _store_evidence(evaluation_id, upload, values.get("outcome_id", ""), values)
        if not isinstance(stored, str):
            return stored  # the file was refused: the page again, with what was typed
    elif values.get("action") == "upload":
        return _form_page(evaluation_id, 422, {"file": [_("Choose a file.")]}, values)
    if values.get("action") == "upload":
        flash(_("%(name)s is stored with its SHA-256.", name=stored), "success")
        if not any(
            values.get(f"{k}-{c.id}") for c in project.outcomes for k in ("verified", "note")
        ):
            return redirect(url_for("evaluations.form", evaluation_id=evaluation_id) + "#evidence")
    lines = [
        {
            "outcome_id": c.id,
            "verified_quantity": values.get(f"verified-{c.id}", ""),
            "met_grade": values.get(f"grade-{c.id}") or c.evidence_grade.value,
            "evidence_note": values.get(f"note-{c.id}", ""),
        }
        for c in project.outcomes
    ]
    try:
        data = ResultsInSchema().load({"results": lines})
        services.record_results(
            db.session,
            current_user,
            evaluation_id,
            [ResultInput(**r) for r in data["results"]],
            now=now(),
        )
        if values.get("action") == "submit":
            services.submit(db.session, current_user, evaluation_id, now=now())
    except ma.ValidationError as exc:
        # A file stored with results not yet complete: keep the file (200) and what was typed.
        status = 200 if stored else 422
        return _form_page(
            evaluation_id, status, _row_errors(flatten_errors(exc.messages), project), values
        )
    except MarketplaceError as exc:
        if stored:  # keep the file; the results stay on the page as typed
            errors = _row_errors(exc.errors, project) if exc.errors else {"_action": [exc.message]}
            return _form_page(evaluation_id, 200, errors, values)
        db.session.rollback()
        errors = _row_errors(exc.errors, project) if exc.errors else {"_action": [exc.message]}
        return _form_page(evaluation_id, status_of(exc), errors, values)
    if values.get("action") != "upload":
        flash(
            _("Submitted for approval.") if values.get("action") == "submit" else _("Saved."),
            "success",
        )
    return redirect(url_for("evaluations.form", evaluation_id=evaluation_id))


def _store_evidence(evaluation_id: int, upload, raw_outcome: str, values: dict):
    """Store an uploaded evidence file: its name, or the page again with the reason."""
    try:
        outcome_id = int(raw_outcome) if raw_outcome else None
    except ValueError:
        return _form_page(evaluation_id, 422, {"outcome_id": [_("Choose an outcome.")]}, values)
    try:
        row = files.add_evidence(
            db.session,
            file_store(),
            current_user,
            evaluation_id,
            filename=upload.filename,
            data=upload.read(),
            outcome_id=outcome_id,
            now=now(),
        )
    except MarketplaceError as exc:
        db.session.rollback()
        errors = exc.errors or {"_action": [exc.message]}
        return _form_page(evaluation_id, status_of(exc), errors, values)
    return row.filename


def _row_errors(errors: dict[str, list[str]], project: Project) -> dict[str, list[str]]:
    """``results.1.evidence_note`` -> ``note-<commitment id>`` (the form's field names)."""
    fields = {
        "verified_quantity": "verified",
        "evidence_note": "note",
        "met_grade": "grade",
        "outcome_id": "verified",
    }
    mapped = {}
    for name, messages in errors.items():
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == "results" and parts[1].isdigit():
            commitment = project.outcomes[int(parts[1])]
            mapped[f"{fields.get(parts[2], 'verified')}-{commitment.id}"] = messages
        else:
            mapped[name] = messages
    return mapped


@bp.post("/evaluations/<int:evaluation_id>/declaration")
@login_required
def declare(evaluation_id: int):
    """The evaluator signs the conflict-of-interest declaration (the statement, ticked,
    and any interests it wants on record)."""
    _require(Role.EVALUATOR)
    values = request.form.to_dict()
    if values.get("confirm") != "yes":
        return _form_page(
            evaluation_id,
            422,
            {"confirm": [_("Tick the statement to sign the declaration.")]},
            values,
        )
    try:
        data = DeclarationInSchema().load({"text": declaration_text(values.get("interests", ""))})
        services.declare(db.session, current_user, evaluation_id, text=data["text"], now=now())
    except ma.ValidationError as exc:
        errors = flatten_errors(exc.messages)
        return _form_page(evaluation_id, 422, {"interests": errors.get("text", [])}, values)
    except MarketplaceError as exc:
        db.session.rollback()
        return _form_page(
            evaluation_id, status_of(exc), exc.errors or {"_action": [exc.message]}, values
        )
    flash(_("Declaration signed. You can record the results now."), "success")
    return redirect(url_for("evaluations.form", evaluation_id=evaluation_id))


def declaration_text(interests: str) -> str:
    """The statement signed, in the evaluator's language, with the interests it declares."""
    statement = _(
        "I declare that neither I nor my organisation has a financial or personal interest "
        "in this project, its organisation or its buyers, other than stated here."
    )
    interests = interests.strip()
    return f"{statement}\n{_('Interests declared:')} {interests}" if interests else statement


@bp.post("/evaluations/<int:evaluation_id>/approve")
@login_required
def approve(evaluation_id: int):
    _require(Role.ADMIN)
    try:
        if not confirmed():
            return _review_approval(evaluation_id)
        services.approve(db.session, current_user, evaluation_id, now=now())
    except MarketplaceError as exc:
        db.session.rollback()
        return _form_page(evaluation_id, status_of(exc), {"_action": [exc.message]})
    flash(_("Approved. The project is settled by the scheduler within minutes."), "success")
    return redirect(url_for("evaluations.form", evaluation_id=evaluation_id))


def _review_approval(evaluation_id: int):
    def act() -> tuple[str, list[str]]:
        evaluation = services.approve(db.session, current_user, evaluation_id, now=now())
        project = db.session.get_one(Project, evaluation.project_id)
        verified = {r.commitment_id: r.verified_quantity for r in evaluation.results}
        lines = [
            _(
                "%(outcome)s: %(verified)s of %(target)s verified.",
                outcome=c.outcome_type.name,
                verified=number(verified.get(c.id, 0)),
                target=number(c.target_quantity),
            )
            for c in project.outcomes
        ]
        return project.title, lines

    title, lines = rehearse(act)
    return review_page(
        title=_("Approve the results for %(project)s", project=title),
        consequences=[
            *lines,
            _(
                "The scheduler then settles the project: the entrepreneur is paid for what "
                "was verified, the buyers are refunded the rest, and verified tokens are "
                "issued. This cannot be undone."
            ),
        ],
        confirm=_("Approve the results"),
        back=url_for("evaluations.form", evaluation_id=evaluation_id),
        danger=True,
    )


@bp.post("/evaluations/<int:evaluation_id>/return")
@login_required
def send_back(evaluation_id: int):
    _require(Role.ADMIN)
    try:
        data = ReturnInSchema().load({"reason": request.form.get("reason", "")})
        services.send_back(
            db.session, current_user, evaluation_id, reason=data["reason"], now=now()
        )
    except ma.ValidationError as exc:
        return _form_page(evaluation_id, 422, flatten_errors(exc.messages))
    except MarketplaceError as exc:
        db.session.rollback()
        return _form_page(evaluation_id, status_of(exc), {"_action": [exc.message]})
    flash(_("Returned to the evaluator."), "success")
    return redirect(url_for("evaluations.form", evaluation_id=evaluation_id))


# ---------------------------------------------------------------- evidence files


@bp.post("/evaluations/<int:evaluation_id>/evidence")
@login_required
def upload_evidence(evaluation_id: int):
    _require(Role.EVALUATOR)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _form_page(evaluation_id, 422, {"file": [_("Choose a file.")]})
    stored = _store_evidence(evaluation_id, upload, request.form.get("outcome_id", ""), {})
    if not isinstance(stored, str):
        return stored
    flash(_("%(name)s is stored with its SHA-256.", name=stored), "success")
    return redirect(url_for("evaluations.form", evaluation_id=evaluation_id) + "#evidence")


@bp.get("/files/<int:file_id>")
@login_required
def download(file_id: int):
    row, data = files.open_file(db.session, file_store(), current_user, file_id)
    return file_response(row, data)


# ---------------------------------------------------------------- progress reports


@project_panel
def progress_context(project: Project, user: User | None, is_owner: bool) -> dict:
    """What the project page shows of its reports, and whether the viewer may post one."""
    reports = services.progress_reports(db.session, user, project.id)
    attached = files.files_of_reports(db.session, [r.id for r in reports])
    return {
        "reports": reports,
        "attachments": {i: files.readable(db.session, user, rows) for i, rows in attached.items()},
        "attachment_counts": {i: len(rows) for i, rows in attached.items()},
        "can_report": is_owner and project.state is ProjectState.RUNNING,
    }


@bp.post("/projects/<int:project_id>/progress-reports")
@login_required
def post_report(project_id: int):
    values = request.form.to_dict()
    project = db.session.get(Project, project_id)
    outcomes = project.outcomes if project else []
    figures = [
        {"outcome_id": c.id, "quantity": values[f"figure-{c.id}"]}
        for c in outcomes
        if values.get(f"figure-{c.id}", "").strip()
    ]
    uploads = [u for u in request.files.getlist("file") if u.filename]
    try:
        data = ProgressReportInSchema().load({"text": values.get("text", ""), "figures": figures})
        report = services.post_progress_report(
            db.session,
            current_user,
            project_id,
            text=data["text"],
            figures={f["outcome_id"]: f["quantity"] for f in data["figures"]},
            now=now(),
        )
        for upload in uploads:
            files.add_attachment(
                db.session,
                file_store(),
                current_user,
                report.id,
                filename=upload.filename or "",
                data=upload.read(),
                now=now(),
            )
    except ma.ValidationError as exc:
        errors = _figure_errors(flatten_errors(exc.messages), figures)
        return detail(project_id, status=422, errors=errors, form=values)
    except MarketplaceError as exc:
        db.session.rollback()
        errors = _figure_errors(exc.errors, figures) if exc.errors else {"_action": [exc.message]}
        return detail(project_id, status=status_of(exc), errors=errors, form=values)
    flash(_("Your progress report is published."), "success")
    return redirect(url_for("projects.detail", project_id=project_id) + "#reports-title")


def _figure_errors(errors: dict[str, list[str]], figures: list[dict]) -> dict[str, list[str]]:
    """``figures.0.quantity`` (or the domain's ``figures.<id>``) -> ``figure-<id>``."""
    mapped = {}
    for name, messages in errors.items():
        parts = name.split(".")
        if parts[0] == "figures" and len(parts) == 3 and parts[1].isdigit():
            mapped[f"figure-{figures[int(parts[1])]['outcome_id']}"] = messages
        elif parts[0] == "figures" and len(parts) == 2:
            mapped[f"figure-{parts[1]}"] = messages
        else:
            mapped[name] = messages
    return mapped


# ---------------------------------------------------------------- accreditation (admins)


def _accreditation_body(values) -> dict:
    return {
        "body": values.get("body", ""),
        "reference": values.get("reference", ""),
        "themes": values.getlist("themes"),
        "valid_from": values.get("valid_from", ""),
        "valid_until": values.get("valid_until", ""),
    }


@bp.get("/admin/evaluators")
@login_required
def evaluators(status: int = 200, errors=None, form=None, target: str = ""):
    _require(Role.ADMIN)
    people = db.session.scalars(
        select(User).where(User.role == Role.EVALUATOR).order_by(User.name)
    ).all()
    return render_template(
        "evaluations/evaluators.html",
        people=people,
        accreditations={p.id: services.accreditations(db.session, p.id) for p in people},
        themes=[t.value for t in Theme],
        today=now().date(),
        errors=errors or {},
        form=form,
        target=target,
    ), status


def _save_accreditation(target: str, act) -> Any:
    _require(Role.ADMIN)
    try:
        data = AccreditationInSchema().load(_accreditation_body(request.form))
        act(accreditation_input(data))
    except ma.ValidationError as exc:
        return evaluators(422, flatten_errors(exc.messages), request.form, target)
    except MarketplaceError as exc:
        db.session.rollback()
        return evaluators(
            status_of(exc), exc.errors or {"_action": [exc.message]}, request.form, target
        )
    flash(_("The accreditation is saved."), "success")
    return redirect(url_for("evaluations.evaluators") + f"#{target}")


@bp.post("/admin/evaluators/<int:evaluator_id>/accreditations")
@login_required
def add_accreditation(evaluator_id: int):
    return _save_accreditation(
        f"evaluator-{evaluator_id}",
        lambda data: services.add_accreditation(
            db.session, current_user, evaluator_id, data, now=now()
        ),
    )


@bp.post("/admin/accreditations/<int:accreditation_id>")
@login_required
def change_accreditation(accreditation_id: int):
    return _save_accreditation(
        f"accreditation-{accreditation_id}",
        lambda data: services.update_accreditation(
            db.session, current_user, accreditation_id, data, now=now()
        ),
    )
