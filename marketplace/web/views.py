"""The home page and the choice of language."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, redirect, render_template, request
from flask_login import current_user
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from marketplace.extensions import db
from marketplace.web.redirects import same_site_path

bp = Blueprint("web", __name__)
LANGUAGES = {"en": "English", "nl": "Nederlands"}
LANGUAGE_COOKIE = "som_lang"


@bp.get("/")
def home():
    return render_template("home.html")


@bp.get("/health")
def health():
    """For load balancers and the deployment smoke test: the app answers and its
    database does. 503 when the database does not."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database="ok")


@bp.post("/language")
def choose_language():
    """Remember the language chosen (over the browser's), and go back to the page."""
    chosen = request.form.get("lang", "")
    if chosen not in LANGUAGES:
        abort(400)
    back = same_site_path(request.form.get("next")) or "/"
    if current_user.is_authenticated:
        current_user.language = chosen  # e-mails follow the pages' language
    response = redirect(back)
    response.set_cookie(
        LANGUAGE_COOKIE, chosen, max_age=365 * 24 * 3600, samesite="Lax", httponly=True
    )
    return response
