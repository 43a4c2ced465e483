"""The public JSON API, version 1 (``/api/v1``), built with flask-smorest.

Invariants:
- Every error under ``/api/`` is problem+json (see ``problems``); the OpenAPI
  document describes error responses with that media type.
- The API authenticates only with bearer tokens, never with the browser's
  session cookie, so it needs no CSRF token and a page cannot be tricked into
  calling it with a user's cookie.
"""

from __future__ import annotations

import http

import marshmallow as ma
from flask import Flask, request
from flask_smorest import Api as _Api
from flask_smorest import Blueprint
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from marketplace.api.bodies import BodyParser
from marketplace.api.problems import PROBLEM_JSON, ProblemSchema, from_http_exception

API_PREFIX = "/api/v1"


def is_api_request() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


# Every API route's arguments are read by the parser that refuses unusable JSON.
Blueprint.ARGUMENTS_PARSER = BodyParser()
Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
    **Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
    "multipart": "multipart/form-data",
}


class Api(_Api):
    """flask-smorest's Api with problem+json errors for API paths."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException):
        if is_api_request():
            return from_http_exception(error)
        # Web pages render their own error page.
        from marketplace.web.errors import render_error_page

        return render_error_page(error)

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


api = Api()


def init_api(app: Flask) -> None:
    app.config.update(
        API_TITLE="Social Outcomes Marketplace API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
    )
    api.init_app(
        app,
        spec_kwargs={
            "info": {
                "description": "Buy verified social outcomes; hold and retire impact tokens. "
                "Errors are application/problem+json (RFC 9457).",
            },
        },
    )
    # Decimals travel as strings ("0.25") so no JSON parser rounds them; say so.
    api.register_field(ma.fields.Decimal, "string", "decimal")
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "An API token."}
    )
    from marketplace.accounts.api import blp as accounts_blp
    from marketplace.audit.api import blp as audit_blp
    from marketplace.catalogue.api import blp as catalogue_blp
    from marketplace.dashboards.api import blp as organisations_blp
    from marketplace.disputes.api import blp as disputes_blp
    from marketplace.evaluations.api import blp as evaluations_blp
    from marketplace.funding.api import blp as funding_blp
    from marketplace.obligations.api import blp as obligations_blp
    from marketplace.pools.api import blp as pools_blp
    from marketplace.projects.api import blp as projects_blp
    from marketplace.receipts.api import blp as receipts_blp
    from marketplace.registry.api import blp as registry_blp
    from marketplace.rounds.api import blp as rounds_blp
    from marketplace.settlement.api import blp as settlement_blp

    api.register_blueprint(accounts_blp)
    api.register_blueprint(catalogue_blp)
    api.register_blueprint(projects_blp)
    api.register_blueprint(rounds_blp)
    api.register_blueprint(funding_blp)
    api.register_blueprint(pools_blp)
    api.register_blueprint(evaluations_blp)
    api.register_blueprint(settlement_blp)
    api.register_blueprint(registry_blp)
    api.register_blueprint(disputes_blp)
    api.register_blueprint(obligations_blp)
    api.register_blueprint(receipts_blp)
    api.register_blueprint(organisations_blp)
    api.register_blueprint(audit_blp)
