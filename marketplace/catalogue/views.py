"""Web pages: the public outcome catalogue, the admin's catalogue forms, and the
valuation calculator.

The calculator changes nothing, so it is a GET form: a result can be linked
and bookmarked. Blank rows are ignored; a refused row is shown with its
errors next to its fields.
"""

from __future__ import annotations

from datetime import date

import marshmallow as ma
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from marketplace.accounts.models import Role
from marketplace.api.problems import flatten_errors, status_of
from marketplace.catalogue.schemas import (
    GRADES,
    MAX_PREVIEW_LINES,
    NewOutcomeTypeSchema,
    OutcomeTypeQuerySchema,
    PreviewSchema,
)
from marketplace.catalogue.services import preview_request
from marketplace.catalogue.tornado import tornado_chart
from marketplace.core.clock import now
from marketplace.core.errors import MarketplaceError, ValidationFailed
from marketplace.extensions import db
from marketplace.web.forms import MAX_ROWS, collect_rows, row_count, row_errors, with_fractions
from outcomes.catalogue import (
    BASES,
    NewOutcomeType,
    add_outcome_type,
    list_outcome_types,
    retire_outcome_type,
)
from outcomes.valuations import preview
from valuation import Per

bp = Blueprint("catalogue", __name__)

LINE_FIELDS = (
    "outcome_type",
    "quantity",
    "evidence_grade",
    "deadweight",
    "displacement",
    "attribution",
    "drop_off",
    "duration_years",
)
DEFAULT_ROWS = 3


def _require_admin() -> None:
    if not current_user.is_authenticated or not current_user.has_role(Role.ADMIN):
        abort(403)


@bp.get("/outcomes")
def catalogue():
    try:
        args = OutcomeTypeQuerySchema().load(request.args, unknown=ma.EXCLUDE)
    except ma.ValidationError:
        args = {"include_retired": False}
    types = list_outcome_types(
        db.session,
        include_retired=args.get("include_retired", False),
        basis=args.get("basis"),
        per=Per(args["per"]) if args.get("per") else None,
        q=args.get("q"),
    )
    is_admin = current_user.is_authenticated and current_user.has_role(Role.ADMIN)
    return render_template(
        "catalogue/list.html", types=types, args=args, bases=BASES, is_admin=is_admin
    )


@bp.route("/outcomes/new", methods=["GET", "POST"])
@login_required
def new_outcome_type():
    _require_admin()
    form: dict = {
        "currency": "EUR",
        "per": "year",
        "haircut": "1",
        "duration_years": "1",
        "deadweight": "0",
        "displacement": "0",
        "attribution": "0",
        "drop_off": "0",
    }
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        form = request.form.to_dict()
        try:
            given: dict[str, object] = {**with_fractions(request.form.to_dict())}
            # SDG targets as typed: "8.5, 8.6" or "8.5 8.6"
            given["sdg_targets"] = str(given.get("sdg_targets", "")).replace(",", " ").split()
            data = NewOutcomeTypeSchema().load(given, unknown=ma.EXCLUDE)
            created = add_outcome_type(db.session, NewOutcomeType(**data), now=now())
        except ma.ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            errors, status = {k: list(v) for k, v in messages.items()}, 422
        except MarketplaceError as exc:
            errors, status = exc.errors, status_of(exc)
        else:
            flash(_("%(code)s is in the catalogue.", code=created.code), "success")
            return redirect(url_for("catalogue.catalogue", q=created.code))
    return render_template("catalogue/new.html", form=form, errors=errors, bases=BASES), status


@bp.post("/outcomes/<code>/retire")
@login_required
def retire(code: str):
    _require_admin()
    try:
        retired = retire_outcome_type(db.session, code, now=now())
    except MarketplaceError:
        abort(404)
    flash(_("%(code)s is retired: new projects cannot choose it.", code=retired.code), "success")
    return redirect(url_for("catalogue.catalogue"))


@bp.get("/valuation")
def calculator():
    args = request.args
    rows = row_count(args, DEFAULT_ROWS)
    settings = {
        "valuation_year": args.get("valuation_year", str(date.today().year + 1)).strip(),
        "inflation": args.get("inflation", "").strip(),
        "discount_rate": args.get("discount_rate", "").strip(),
    }
    result = chart = None
    errors: dict[str, list[str]] = {}
    status = 200
    if args.get("action") == "calculate":
        lines, row_of_line = collect_rows(
            with_fractions(args.to_dict()), "lines", LINE_FIELDS, rows, ("evidence_grade",)
        )
        body = {**{k: v for k, v in settings.items() if v}, "lines": lines}
        try:
            data = PreviewSchema().load(body)
            valuation, sensitivity = preview(db.session, preview_request(data))
        except ma.ValidationError as exc:
            errors, status = flatten_errors(exc.messages), 422
        except ValidationFailed as exc:
            errors, status = exc.errors, 422
        else:
            result = {"valuation": valuation, "sensitivity": sensitivity}
            chart = tornado_chart(valuation.total_present_value_cents, sensitivity)
        errors = row_errors(errors, "lines", row_of_line)
    types = list_outcome_types(db.session)
    return render_template(
        "catalogue/calculator.html",
        args=args,
        rows=rows,
        settings=settings,
        types=types,
        grades=GRADES,
        errors=errors,
        result=result,
        chart=chart,
        max_rows=MAX_ROWS,
        names={t.code: t.name for t in types},
        max_lines=MAX_PREVIEW_LINES,
    ), status
