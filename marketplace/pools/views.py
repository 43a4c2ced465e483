"""Web pages: an organisation's matchfunding pools, the form to open one, and what each
has bought (its funder and admins). The form calls the same services as
``POST /api/v1/pools``."""

from __future__ import annotations

import marshmallow as ma
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from marketplace.accounts.models import Role
from marketplace.api.problems import flatten_errors, status_of
from marketplace.core.errors import Forbidden, MarketplaceError
from marketplace.dashboards.pools import pool_figures
from marketplace.extensions import db
from marketplace.funding.views import TEST_CARDS, saved_cards
from marketplace.pools import services
from marketplace.pools.api import PoolInSchema, fund_with
from marketplace.pools.models import Pool
from marketplace.rounds.models import THEMES
from marketplace.rounds.services import list_rounds
from marketplace.web.forms import euros_to_cents

bp = Blueprint("pools", __name__)


def _funder() -> None:
    if current_user.role not in (Role.BUYER, Role.ADMIN):
        raise Forbidden("Matchfunding pools belong to buyer organisations.")


def _listing_page(status: int = 200, errors=None, form=None):
    _funder()
    query = select(Pool).order_by(Pool.id.desc())
    if current_user.role is not Role.ADMIN:
        query = query.where(Pool.organisation_id == current_user.organisation_id)
    pools = list(db.session.scalars(query))
    settings = current_app.extensions["settings"]
    is_buyer = current_user.role is Role.BUYER
    return render_template(
        "pools/list.html",
        figures=[pool_figures(db.session, pool) for pool in pools],
        can_open=is_buyer and current_user.organisation.verified_at is not None,
        rounds=list_rounds(db.session),
        themes=THEMES,
        saved_cards=saved_cards(current_user.organisation_id) if is_buyer else [],
        test_cards=TEST_CARDS if not settings.stripe_publishable_key else (),
        publishable_key=settings.stripe_publishable_key,
        errors=errors or {},
        form=form or {},
    ), status


@bp.get("/pools")
@login_required
def listing():
    return _listing_page()


@bp.post("/pools")
@login_required
def open_pool():
    """Open a pool from the form: amounts in euros as the reader writes them."""
    _funder()
    form = request.form
    echo = {**form.to_dict(), "themes": form.getlist("themes")}
    errors: dict[str, list[str]] = {}
    given: dict = {
        "name": form.get("name", ""),
        "match_ratio": form.get("match_ratio", "").strip().replace(",", "."),
        "themes": form.getlist("themes"),
        "cities": [c.strip() for c in form.get("cities", "").split(",") if c.strip()],
        "payment_method": form.get("payment_method", ""),
    }
    for field in ("budget", "cap_per_project"):
        cents = euros_to_cents(form.get(field, ""))
        if cents is None:
            errors[f"{field}_cents"] = [_("Give an amount in euros, such as 50000.")]
        else:
            given[f"{field}_cents"] = cents
    if form.get("round_id"):
        given["round_id"] = form.get("round_id")
    try:
        data = PoolInSchema().load(given)
        if errors:
            raise ma.ValidationError({})
        pool = fund_with(current_user, data)
    except ma.ValidationError as exc:
        return _listing_page(422, {**flatten_errors(exc.messages), **errors}, echo)
    except MarketplaceError as exc:
        db.session.rollback()
        return _listing_page(status_of(exc), exc.errors or {"_action": [exc.message]}, echo)
    flash(_("The pool is open: it matches pledges from now on."), "success")
    return redirect(url_for("pools.detail", pool_id=pool.id))


@bp.get("/pools/<int:pool_id>")
@login_required
def detail(pool_id: int):
    _funder()
    pool = services.get_pool(db.session, current_user, pool_id)
    return render_template("pools/detail.html", f=pool_figures(db.session, pool))
