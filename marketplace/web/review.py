"""The review step before an irreversible action.

A form for an action that cannot be undone (a pledge, cancelling it, closing
funding, withdrawing a project, retiring tokens, approving results) first posts
without ``confirmed``: the view checks the input, then answers with
``review_page``, which states the consequence in words and figures and sends the
same fields again with ``confirmed=yes``. Only that second post acts. The fields
travel unchanged (the pledge's form key too, so confirming twice is one pledge).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from flask import render_template, request

from marketplace.extensions import db

T = TypeVar("T")

CONFIRMED = "yes"
NOT_CARRIED = frozenset({"csrf_token", "confirmed"})


def confirmed() -> bool:
    """Whether this post is the confirmation of a reviewed action."""
    return request.form.get("confirmed") == CONFIRMED


def rehearse(act: Callable[[], T]) -> T:
    """Run the action in a savepoint and undo it: it refuses (raises) exactly as the real
    one would, so the review step is shown only for an action that will succeed. ``act``
    reads the figures it needs before returning; nothing it wrote survives. (Only for
    actions that call no one outside the database.)"""
    nested = db.session.begin_nested()
    try:
        return act()
    finally:
        nested.rollback()


def review_page(
    *,
    title: str,
    consequences: Sequence[str],
    confirm: str,
    back: str,
    danger: bool = False,
) -> tuple[str, int]:
    """The page that asks to confirm ``title``; its form posts to the same address."""
    fields = [(k, v) for k, v in request.form.items(multi=True) if k not in NOT_CARRIED]
    return render_template(
        "review.html",
        title=title,
        consequences=consequences,
        fields=fields,
        action=request.path,
        confirm=confirm,
        back=back,
        danger=danger,
        confirmed_value=CONFIRMED,
    ), 200
