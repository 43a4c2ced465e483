"""Every operation of the public API, fuzzed from its own OpenAPI document in a world.

schemathesis draws requests from ``/api/v1/openapi.json`` (valid and invalid
bodies, queries and path values) against a seeded marketplace (tests/web/
api_world.py: settled, funded, listed, running and evaluated projects, pledges,
evaluations, files, a retirement, and the people of each role). Path values are
drawn from the world's real objects as well as generated; each request carries
the token of someone in the world, often the person entitled to it. Every answer
is checked: never a server error, the status code is one the document lists, the
body conforms to the documented schema, the content type is the documented one;
and each operation answers at least one request with a 2xx, so its success
response is checked against real data too. Each operation gets at least
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

from tests.conftest import build_app
from tests.integration.test_settlement import (  # noqa: F401 - the fixtures
    settled_example,
    worked_example,
)
from tests.web.api_world import World, build_world

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
# One schema per application (each backend has its own): schemathesis keeps the app an
# operation was first called on, so a schema shared by both would send every request of
# the second backend to the first one's database.
SCHEMAS: dict[int, schemathesis.schemas.BaseSchema] = {}


def schema_of(app):
    if id(app) not in SCHEMAS:
        SCHEMAS[id(app)] = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
        SCHEMAS[id(app)].app = app
    return SCHEMAS[id(app)]


OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in DOCUMENT["paths"].items()
    for method in item
    if method in {"get", "post", "put", "patch", "delete"}
)

# Characters a header may carry (visible ASCII); the request id parser sees them all.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80)


@pytest.fixture
def world(app, client, session, auth_headers, settled_example) -> World:
    return build_world(app, client, session, auth_headers, settled_example)


def test_the_document_lists_operations():
    assert len(OPERATIONS) >= 40, OPERATIONS
    assert ("POST", "/api/v1/projects/{project_id}/pledges") in OPERATIONS


def test_the_world_knows_every_operations_rightful_request(world):
    """A new operation must say who may call it on what (api_world.build_world)."""
    assert set(world.rightful) == set(OPERATIONS), set(OPERATIONS) ^ set(world.rightful)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms_to_its_document(app, world, method, path):
    operation = schema_of(app)[path][method]  # this backend's app; checks that send again too
    rightful = world.rightful[(method, path)]
    if rightful.prepare is not None:
        rightful.prepare()
    people = sorted(world.headers)
    parameters = [name for name in world.ids if "{" + name + "}" in path]
    sent: list[int] = []

    # Three kinds of request, drawn by hypothesis: the one the rightful person sends
    # (the path's real object, and the body that succeeds where one is needed, with
    # the queries generated); one for the world's real objects with a generated body
    # from anyone; and a wholly generated one from anyone.
    fixed = {"body": rightful.body, "media_type": rightful.media_type}
    proper = st.tuples(
        operation.as_strategy(
            path_parameters=rightful.path_parameters,
            **(fixed if rightful.body is not None else {}),
        ),
        st.just(rightful.person),
    )
    real_objects = st.fixed_dictionaries(
        {name: st.sampled_from(world.ids[name]) for name in parameters}
    ).flatmap(lambda ids: operation.as_strategy(path_parameters=ids))
    anyone = st.sampled_from(people)
    cases = st.one_of(
        proper,
        st.tuples(real_objects, anyone),
        st.tuples(operation.as_strategy(), anyone),
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @given(drawn=cases, request_id=HEADER_TEXT, key=st.uuids())
    def run(drawn, request_id, key):
        case, person = drawn
        headers = {**world.headers[person], "X-Request-ID": request_id}
        if method != "GET":
            headers["Idempotency-Key"] = str(key)
        response = case.call(base_url=BASE_URL, headers=headers)
        sent.append(response.status_code)
        case.validate_response(response, headers=headers, transport_kwargs={"base_url": BASE_URL})

    run()
    assert len(sent) >= EXAMPLES, f"only {len(sent)} requests were sent"
    assert all(code < 500 for code in sent)
    assert any(200 <= code < 300 for code in sent), sorted(set(sent))
