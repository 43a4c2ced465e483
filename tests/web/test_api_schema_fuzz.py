"""Every operation of the public API, fuzzed from its own OpenAPI document.

schemathesis draws requests from ``/api/v1/openapi.json`` (valid and invalid
bodies, queries and path values), each sent with the token of a person drawn
from four roles, and checks every answer: never a server error, the status
code is one the document lists, the body conforms to the documented schema
and the content type is the documented one. Each operation gets at least
``EXAMPLES`` requests: a random ``X-Request-ID`` (an input every operation
reads) keeps even an operation without parameters from running out of
distinct examples.

The operations are read from an application built at collection time, so an
operation added later is fuzzed without touching this file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace.accounts.models import Role
from tests import factories
from tests.conftest import build_app

EXAMPLES = 100
BASE_URL = "http://localhost"


def _document() -> dict:
    with tempfile.TemporaryDirectory() as instance:
        app = build_app(f"sqlite:///{instance}/spec.db", Path(instance))
        return app.test_client().get("/api/v1/openapi.json").get_json()


DOCUMENT = _document()
# A schema-valid request may still break a business rule the document cannot
# state (an unknown outcome type, a deadline in the past): the API answers 422
# naming the field, which is an accepted answer here. Everything else the
# default checks demand stands.
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", 401, 403, 404, 409, 413, 422, 429]
            }
        }
    }
)
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in DOCUMENT["paths"].items()
    for method in item
    if method in {"get", "post", "put", "patch", "delete"}
)

# Characters a header may carry (visible ASCII); the request id parser sees them all.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80)


@pytest.fixture
def tokens(app) -> dict[str, str]:
    """One live token per role, of people in different organisations."""
    made = {}
    for role in Role:
        token = factories.ApiTokenFactory(user=factories.UserFactory(role=role))
        made[role.value] = token.secret
    factories.Session.commit()
    return made


def test_the_document_lists_operations():
    assert len(OPERATIONS) >= 40, OPERATIONS
    assert ("POST", "/api/v1/projects/{project_id}/pledges") in OPERATIONS


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms_to_its_document(app, tokens, method, path):
    SCHEMA.app = app  # this test's database; checks that send again use it too
    operation = SCHEMA[path][method]
    sent = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @given(
        case=operation.as_strategy(),
        role=st.sampled_from(sorted(tokens)),
        request_id=HEADER_TEXT,
    )
    def run(case, role, request_id):
        headers = {"Authorization": f"Bearer {tokens[role]}", "X-Request-ID": request_id}
        response = case.call(base_url=BASE_URL, headers=headers)
        sent.append(response.status_code)
        case.validate_response(response, headers=headers, transport_kwargs={"base_url": BASE_URL})

    run()
    assert len(sent) >= EXAMPLES, f"only {len(sent)} requests were sent"
    assert all(code < 500 for code in sent)
