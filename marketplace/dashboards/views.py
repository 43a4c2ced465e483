"""Dashboards for buyers, entrepreneurs and admins, and the buyer's impact report."""

from __future__ import annotations

from datetime import date

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from flask_babel import gettext as _
from flask_login import current_user, login_required

from marketplace.accounts.models import Organisation, Role
from marketplace.core.clock import now, today
from marketplace.core.errors import Forbidden, MarketplaceError, ValidationFailed
from marketplace.core.errors import NotFound as NotFoundError
from marketplace.core.schemas import sane_day
from marketplace.dashboards import report, services
from marketplace.dashboards.organisation import public_profile, verify_organisation
from marketplace.extensions import db
from marketplace.projects.progress import funding_bar
from marketplace.web.formatting import PURPOSE_LABELS, day, money, number, purpose_label
from marketplace.web.messages import translated

bp = Blueprint("dashboards", __name__)
CHART_WIDTH = 340


def bars(rows: list[tuple[str, int]]) -> list[dict]:
    """Horizontal bars scaled to the largest value, for the SVG charts."""
    top = max((value for _label, value in rows), default=0) or 1
    return [
        {"label": label, "value": value, "width": max(1, value * CHART_WIDTH // top)}
        for label, value in rows
    ]


@bp.get("/dashboard")
@login_required
def dashboard():
    role = current_user.role
    if role is Role.BUYER:
        return _buyer()
    if role is Role.ENTREPRENEUR:
        rows = services.entrepreneur_projects(db.session, current_user.organisation_id, today())
        return render_template(
            "dashboards/entrepreneur.html",
            rows=rows,
            bars={r.project.id: funding_bar(r.project, compact=True) for r in rows},
        )
    if role is Role.ADMIN:
        return render_template("dashboards/admin.html", f=services.admin_figures(db.session, now()))
    if role is Role.AUTHORITY:
        return redirect(url_for("obligations.listing"))
    return redirect(url_for("evaluations.queue"))


def _period() -> tuple[date | None, date | None]:
    errors: dict[str, list[str]] = {}
    found: list[date | None] = []
    for name in ("from", "to"):
        try:
            found.append(sane_day(request.args.get(name), name))
        except ValidationFailed as refused:
            errors |= refused.errors
            found.append(None)
    if not errors and found[0] and found[1] and found[0] > found[1]:
        errors["to"] = ["The end comes after the start."]
    if errors:
        raise ValidationFailed(errors=errors)
    return found[0], found[1]


def _figures():
    if current_user.role is not Role.BUYER:
        raise Forbidden("The impact report is for buyers.")
    start, end = _period()
    figures = services.buyer_figures(
        db.session,
        current_user.organisation_id,
        start=start,
        end=end,
        timezone=current_app.extensions["settings"].timezone,
    )
    return figures, db.session.get(Organisation, current_user.organisation_id)


def _buyer():
    figures, organisation = _figures()
    by_project = [(f"{p.reference} {p.title}", p.value_cents) for p in figures.projects]
    return render_template(
        "dashboards/buyer.html",
        f=figures,
        organisation=organisation,
        by_theme=bars(figures.value_by_theme()),
        by_project=bars(by_project),
        tokens=bars([(_("held"), figures.tokens_held), (_("retired"), figures.tokens_retired)]),
        args=request.args,
    )


def _report_download(write, mimetype: str, filename: str) -> Response:
    """The impact report of the period asked for, written by ``write``, as a download."""
    figures, organisation = _figures()
    currency = current_app.extensions["settings"].currency
    return Response(
        write(figures, organisation.name, currency),
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/impact-report.csv")
@login_required
def impact_csv():
    return _report_download(report.as_csv, "text/csv", "impact-report.csv")


@bp.get("/impact-report.pdf")
@login_required
def impact_pdf():
    """The report in the reader's language, money and counts as the pages write them."""
    words = report.Words(label=_label, money=money, number=number, day=day)

    def write(figures, organisation, currency):
        return report.as_pdf(figures, organisation, currency, words)

    return _report_download(write, "application/pdf", "impact-report.pdf")


def _label(text: str) -> str:
    return purpose_label(text) if text in PURPOSE_LABELS else gettext(text)


@bp.get("/organisations/<int:organisation_id>")
def organisation(organisation_id: int):
    """Public: who the organisation is, its listed projects and its track record."""
    try:
        found = public_profile(db.session, organisation_id)
    except NotFoundError:
        abort(404)
    return render_template(
        "dashboards/organisation.html",
        profile=found,
        unverified_limit=current_app.extensions["settings"].unverified_pledge_limit_cents,
    )


@bp.post("/organisations/<int:organisation_id>/verify")
@login_required
def verify(organisation_id: int):
    """An administrator verifies the organisation (from its public page)."""
    if current_user.role is not Role.ADMIN:
        abort(403)
    try:
        verify_organisation(db.session, current_user, organisation_id, now=now())
    except NotFoundError:
        abort(404)
    except MarketplaceError as exc:
        db.session.rollback()
        flash(translated(exc.message), "error")
        return redirect(url_for("dashboards.organisation", organisation_id=organisation_id))
    flash(_("The organisation is verified."), "success")
    return redirect(url_for("dashboards.organisation", organisation_id=organisation_id))
