"""Reading a JSON body: any bytes a client sends are a 400 or data, never a crash.

``json.loads`` raises more than ``JSONDecodeError``: a body nested thousands
deep overflows the recursion limit, a 5,000-digit number exceeds Python's limit
for converting text to an integer, and a lone surrogate (``"\\ud800"``) parses
into a string no database or template can hold. Each is an invalid JSON body
here (400, ``{"json": ["Invalid JSON body."]}``), as for malformed JSON.
"""

from __future__ import annotations

import json
from typing import Any

import flask
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.datastructures import CombinedMultiDict


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return not value.isascii() and any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def parse_body(raw: bytes) -> Any:
    """The body as JSON data; JSONDecodeError for anything that is not usable JSON."""
    try:
        data = core.parse_json(raw)
    except (RecursionError, ValueError) as error:
        if isinstance(error, json.JSONDecodeError):
            raise
        # (a JSONDecodeError with an empty document is "no body" to webargs)
        raise json.JSONDecodeError(f"unusable JSON: {type(error).__name__}", "body", 0) from None
    try:
        broken = _has_lone_surrogate(data)
    except RecursionError:
        broken = True
    if broken:
        raise json.JSONDecodeError("a lone surrogate in a string", "body", 0)
    return data


class BodyParser(FlaskParser):
    """flask-smorest's parser, reading JSON bodies with ``parse_body``, and a
    ``multipart`` location: a multipart/form-data body's fields and files as one
    mapping, so one schema describes (and documents) the whole upload."""

    __location_map__ = {**FlaskParser.__location_map__, "multipart": "load_multipart"}
    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "multipart": None}

    def load_multipart(self, req: flask.Request, schema: Any) -> Any:
        return self._makeproxy(CombinedMultiDict([req.form, req.files]), schema)

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return core.missing
        return parse_body(req.get_data(cache=True))
