"""Web pages: an organisation's matchfunding pools and what each has bought (its funder
and admins). Pools are opened through the API (``POST /api/v1/pools``)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import select

from marketplace.accounts.models import Role
from marketplace.core.errors import Forbidden
from marketplace.dashboards.pools import pool_figures
from marketplace.extensions import db
from marketplace.pools import services
from marketplace.pools.models import Pool

bp = Blueprint("pools", __name__)


def _funder() -> None:
    if current_user.role not in (Role.BUYER, Role.ADMIN):
        raise Forbidden("Matchfunding pools belong to buyer organisations.")


@bp.get("/pools")
@login_required
def listing():
    _funder()
    query = select(Pool).order_by(Pool.id.desc())
    if current_user.role is not Role.ADMIN:
        query = query.where(Pool.organisation_id == current_user.organisation_id)
    pools = list(db.session.scalars(query))
    return render_template(
        "pools/list.html", figures=[pool_figures(db.session, pool) for pool in pools]
    )


@bp.get("/pools/<int:pool_id>")
@login_required
def detail(pool_id: int):
    _funder()
    pool = services.get_pool(db.session, current_user, pool_id)
    return render_template("pools/detail.html", f=pool_figures(db.session, pool))
