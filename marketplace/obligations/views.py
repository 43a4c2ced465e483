"""Web pages: a buyer's social-return obligations and an authority's, their credits,
the authority's decisions and its CSV export."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import marshmallow as ma
from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from marketplace.accounts.models import Role
from marketplace.api.problems import flatten_errors, status_of
from marketplace.core.clock import now
from marketplace.core.errors import Forbidden, MarketplaceError
from marketplace.core.exports import csv_text
from marketplace.core.schemas import page_number
from marketplace.extensions import db
from marketplace.obligations import services
from marketplace.obligations.api import DecisionInSchema, FactorInSchema, ObligationInSchema
from marketplace.web.formatting import money
from marketplace.web.forms import as_fraction, euros_to_cents
from outcomes.errors import ValidationFailed

bp = Blueprint("obligations", __name__)

BAR_WIDTH = 300
PER_PAGE = 50


@dataclass(frozen=True)
class ObligationBar:
    """Widths (of ``BAR_WIDTH``) of what is signed off and what is credited of the due."""

    signed_off: int
    credited: int
    share: Decimal  # credited, of the due, at most 1

    @classmethod
    def of(cls, figures: services.Figures) -> ObligationBar:
        due = figures.obligation.obligation_cents

        def width(cents: int) -> int:
            return min(cents, due) * BAR_WIDTH // due

        return cls(
            width(figures.signed_off_cents),
            width(figures.credited_cents),
            Decimal(min(figures.credited_cents, due) * 1000 // due) / 1000,
        )


def _party() -> None:
    if current_user.role not in (Role.BUYER, Role.AUTHORITY):
        raise Forbidden("Social-return obligations are kept by buyers and authorities.")


def _listing_page(status: int = 200, errors=None, form=None):
    _party()
    page = page_number(request.args.get("page"))
    items, total = services.listing(db.session, current_user, page=page, per_page=PER_PAGE)
    authority = current_user.organisation if current_user.role is Role.AUTHORITY else None
    return render_template(
        "obligations/list.html",
        items=items,
        total=total,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        bars={f.obligation.id: ObligationBar.of(f) for f in items},
        authority=authority,
        width=BAR_WIDTH,
        errors=errors or {},
        form=form or {},
    ), status


@bp.get("/obligations")
@login_required
def listing():
    return _listing_page()


def _new_page(status: int = 200, errors=None, form=None):
    if current_user.role is not Role.BUYER:
        raise Forbidden("Buyers register their obligations.")
    return render_template(
        "obligations/new.html",
        authorities=[
            a for a in services.authorities(db.session) if a.id != current_user.organisation_id
        ],
        errors=errors or {},
        form=form or {},
    ), status


@bp.get("/obligations/new")
@login_required
def new():
    return _new_page()


@bp.post("/obligations/new")
@login_required
def register():
    form = request.form.to_dict()
    try:
        if current_user.role is not Role.BUYER:
            raise Forbidden("Buyers register their obligations.")
        # amounts and percentages as the site's other forms read them, in either language
        cents = euros_to_cents(form.get("contract_value", ""))
        if cents is None:
            raise ValidationFailed(
                errors={"contract_value_cents": [_("An amount in euros such as 1,200,000.00.")]}
            )
        fields = {
            "authority_organisation_id": form.get("authority_organisation_id", ""),
            "contract_reference": form.get("contract_reference", ""),
            "contract_title": form.get("contract_title", ""),
            "contract_value_cents": cents,
            "percentage": as_fraction(form.get("percentage", "")),
            "due_date": form.get("due_date", ""),
        }
        data = ObligationInSchema().load(fields)
        made = services.register(
            db.session, current_user, services.NewObligation(**data), now=now()
        )
    except ma.ValidationError as exc:
        return _new_page(422, _renamed(flatten_errors(exc.messages)), form)
    except MarketplaceError as exc:
        db.session.rollback()
        errors = _renamed(exc.errors) if exc.errors else {"_action": [exc.message]}
        return _new_page(status_of(exc), errors, form)
    flash(
        _(
            "Registered: %(amount)s is due under %(contract)s once the authority accepts it.",
            amount=money(made.obligation_cents),
            contract=made.contract_title,
        ),
        "success",
    )
    return redirect(url_for("obligations.detail", obligation_id=made.id))


def _renamed(errors: dict) -> dict:
    """The API's field names as the form's."""
    return {"contract_value" if k == "contract_value_cents" else k: v for k, v in errors.items()}


def _detail_page(obligation_id: int, status: int = 200, errors=None):
    _party()
    figures = services.figures(db.session, current_user, obligation_id)
    return render_template(
        "obligations/detail.html",
        o=figures,
        bar=ObligationBar.of(figures),
        width=BAR_WIDTH,
        credits=services.credits(db.session, current_user, obligation_id),
        history=services.history(db.session, current_user, obligation_id),
        is_authority=current_user.role is Role.AUTHORITY,
        errors=errors or {},
    ), status


@bp.get("/obligations/<int:obligation_id>")
@login_required
def detail(obligation_id: int):
    return _detail_page(obligation_id)


def _act(obligation_id: int, act, done: str):
    try:
        reason = DecisionInSchema().load({"reason": request.form.get("reason", "")})["reason"]
        act(reason)
    except ma.ValidationError as exc:
        db.session.rollback()
        return _detail_page(obligation_id, 422, flatten_errors(exc.messages))
    except MarketplaceError as exc:
        db.session.rollback()
        return _detail_page(obligation_id, status_of(exc), exc.errors or {"_action": [exc.message]})
    flash(done, "success")
    return redirect(url_for("obligations.detail", obligation_id=obligation_id))


@bp.post("/obligations/<int:obligation_id>/accept")
@login_required
def accept(obligation_id: int):
    return _act(
        obligation_id,
        lambda _reason: services.accept(db.session, current_user, obligation_id, now=now()),
        _("Accepted. Retirements for this obligation now count toward it."),
    )


@bp.post("/obligations/<int:obligation_id>/reject")
@login_required
def reject(obligation_id: int):
    return _act(
        obligation_id,
        lambda reason: services.reject(
            db.session, current_user, obligation_id, reason=reason, now=now()
        ),
        _("Rejected. The supplier is told why."),
    )


@bp.post("/obligations/<int:obligation_id>/credits/<int:credit_id>/sign-off")
@login_required
def sign_off(obligation_id: int, credit_id: int):
    return _act(
        obligation_id,
        lambda _reason: services.sign_off(db.session, current_user, credit_id, now=now()),
        _("Signed off."),
    )


@bp.post("/obligations/<int:obligation_id>/credits/<int:credit_id>/reject")
@login_required
def reject_credit(obligation_id: int, credit_id: int):
    return _act(
        obligation_id,
        lambda reason: services.reject_credit(
            db.session, current_user, credit_id, reason=reason, now=now()
        ),
        _("Rejected. The credit no longer counts; the supplier is told why."),
    )


@bp.post("/obligations/factor")
@login_required
def factor():
    form = request.form.to_dict()
    try:
        if current_user.role is not Role.AUTHORITY:
            raise Forbidden("Authorities publish their factor.")
        data = FactorInSchema().load({"factor": form.get("factor", "").strip().replace(",", ".")})
        services.set_factor(db.session, current_user, data["factor"], now=now())
    except ma.ValidationError as exc:
        return _listing_page(422, flatten_errors(exc.messages), form)
    except MarketplaceError as exc:
        db.session.rollback()
        return _listing_page(status_of(exc), exc.errors or {"_action": [exc.message]}, form)
    flash(_("Published. Credits from now on use this factor; earlier ones keep theirs."), "success")
    return redirect(url_for("obligations.listing"))


EXPORT_COLUMNS = [
    "obligation_id",
    "state",
    "supplier",
    "contract_reference",
    "contract_title",
    "contract_value_cents",
    "percentage",
    "obligation_cents",
    "due_date",
    "credited_cents",
    "signed_off_cents",
    "remaining_cents",
    "pending_credits",
]


@bp.get("/obligations/export.csv")
@login_required
def export():
    """The authority's obligations, one row each, amounts in cents (for its own books)."""
    if current_user.role is not Role.AUTHORITY:
        raise Forbidden("Authorities export their obligations.")
    items, _total = services.listing(db.session, current_user, per_page=services.EXPORT_LIMIT)
    rows = [
        [
            f.obligation.id,
            f.obligation.state.value,
            f.buyer_name,
            f.obligation.contract_reference,
            f.obligation.contract_title,
            f.obligation.contract_value_cents,
            f.obligation.percentage,
            f.obligation.obligation_cents,
            f.obligation.due_date.isoformat(),
            f.credited_cents,
            f.signed_off_cents,
            f.remaining_cents,
            f.pending_credits,
        ]
        for f in items
    ]
    return Response(
        csv_text([EXPORT_COLUMNS, *rows]),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=obligations.csv"},
    )
