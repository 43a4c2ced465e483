"""Schemas of funding rounds at the API boundary."""

from __future__ import annotations

import marshmallow as ma

from marketplace.core import validate
from marketplace.core.schemas import SaneDate, SingleLine, Text
from marketplace.rounds.models import THEMES


class RoundInSchema(ma.Schema):
    name = SingleLine(required=True, validate=validate.Length(min=3, max=120))
    description = Text(load_default="", validate=validate.Length(max=5000))
    themes = ma.fields.List(
        ma.fields.String(validate=validate.OneOf(THEMES)),
        load_default=list,
        validate=validate.Length(max=len(THEMES)),
        metadata={"description": "The themes it takes; none: every theme."},
    )
    cities = ma.fields.List(
        SingleLine(validate=validate.Length(min=2, max=80)),
        load_default=list,
        validate=validate.Length(max=50),
        metadata={"description": "The cities it takes; none: every city."},
    )
    submissions_open = SaneDate(required=True)
    submissions_close = SaneDate(required=True)
    funding_deadline = SaneDate(required=True)


class RoundPatchSchema(RoundInSchema):
    """Any subset of a round's fields (the edge keeps only the fields given)."""

    def __init__(self, **kwargs):
        super().__init__(partial=True, **kwargs)


class RoundCloseSchema(ma.Schema):
    reason = Text(load_default="", validate=validate.Length(max=2000))


class RoundFiguresSchema(ma.Schema):
    projects = ma.fields.Integer(required=True)
    tokens_total = ma.fields.Integer(required=True)
    tokens_pledged = ma.fields.Integer(required=True)
    tokens_paid = ma.fields.Integer(required=True)
    raised_cents = ma.fields.Integer(required=True)
    settled = ma.fields.Integer(required=True)
    verified_value_cents = ma.fields.Integer(required=True)
    by_state = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)


class RoundOutSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    themes = ma.fields.List(ma.fields.String(), required=True)
    cities = ma.fields.List(ma.fields.String(), required=True)
    submissions_open = ma.fields.Date(required=True)
    submissions_close = ma.fields.Date(required=True)
    funding_deadline = ma.fields.Date(required=True)
    state = ma.fields.String(required=True, metadata={"description": "open or closed"})
    figures = ma.fields.Nested(RoundFiguresSchema, required=True)
