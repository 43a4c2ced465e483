"""RFC 9457 problem details: the one place errors become API responses.

Every error response of ``/api/`` is ``application/problem+json`` with
``type``, ``title``, ``status``, ``detail``, ``code`` and, for 422, ``errors``
mapping each field (dotted for nested fields) to its messages. A server error
never reveals the exception text.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from flask import Response, json
from werkzeug.exceptions import HTTPException

from marketplace.core.errors import (
    Conflict,
    Forbidden,
    MarketplaceError,
    NotFound,
    PaymentRequired,
    RateLimited,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)

PROBLEM_JSON = "application/problem+json"

STATUS_OF = {
    ValidationFailed: 422,
    Conflict: 409,
    NotFound: 404,
    Unauthenticated: 401,
    Forbidden: 403,
    RateLimited: 429,
    PaymentRequired: 402,
    Unavailable: 503,
}

# Stable machine names for plain HTTP errors.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "server_error",
    503: "unavailable",
}


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document as this API returns it."""

    type = ma.fields.String(required=True, metadata={"example": "about:blank"})
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True)
    code = ma.fields.String(required=True, metadata={"example": "validation_failed"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={"description": "Messages per field, for 422 responses."},
    )


def status_of(error: MarketplaceError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS_OF:
            return STATUS_OF[kind]
    return 400


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow/webargs nested messages into ``{"lines.0.quantity": [...]}``.

    Schema-level messages (``_schema``) belong to the enclosing field, or to
    ``_schema`` at the top.
    """
    flat: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        flat.setdefault(name or "_schema", []).append(message)

    def walk(value: Any, name: str) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                key = str(key)
                walk(inner, name if key == "_schema" else f"{name}.{key}" if name else key)
        elif isinstance(value, list | tuple):
            for inner in value:
                walk(inner, name)
        else:
            # A Message stays one (str() would drop its template and figures).
            add(name, value if isinstance(value, str) else str(value))

    walk(messages, prefix)
    return flat


def problem(
    status: int,
    *,
    code: str | None = None,
    detail: str | None = None,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail or phrase,
        "code": code or HTTP_CODES.get(status, "error"),
    }
    if errors:
        body["errors"] = dict(errors)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def from_marketplace_error(error: MarketplaceError) -> Response:
    status = status_of(error)
    headers = {}
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    if isinstance(error, RateLimited) or getattr(error, "retry_after", None):
        headers["Retry-After"] = str(error.retry_after)  # type: ignore[attr-defined]
    return problem(
        status, code=error.code, detail=error.detail, errors=error.errors, headers=headers
    )


def from_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = None
    messages = data.get("errors") or data.get("messages")
    if messages:
        # webargs nests messages under the location ("json", "query"); drop it.
        if isinstance(messages, Mapping) and set(messages) <= {
            "json",
            "query",
            "form",
            "headers",
            "files",
            "multipart",
            "view_args",
        }:
            merged: dict[str, Any] = {}
            for value in messages.values():
                if isinstance(value, Mapping):
                    merged.update(value)
                else:
                    merged.setdefault("_schema", []).extend(value)
            messages = merged
        errors = flatten_errors(messages)
    if status >= 500:
        detail = "An unexpected error occurred; it has been logged."
    elif status == 422:
        detail = "The input is not valid: see errors for each field."
    elif status == 400 and errors:
        detail = "The request body could not be read: " + "; ".join(
            m for msgs in errors.values() for m in msgs
        )
    else:
        detail = str(data.get("message") or error.description or "")
    headers = dict(data.get("headers") or {})
    if status == 405 and error.get_headers():
        headers.update({k: v for k, v in error.get_headers() if k.lower() == "allow"})
    return problem(status, detail=detail, errors=errors, headers=headers)
