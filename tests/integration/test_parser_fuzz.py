"""Property-based fuzzing of what parses untrusted text into money or events.

- The Stripe webhook: any body with any signature, and any JSON Stripe could
  sign (random shapes, the event types we handle, ids of our own payments and
  accounts) is answered 200 or 400, never a server error, and leaves the
  ledger balanced.
- The amount parsers of the forms: any text gives an exact number of cents
  (or a rate) or None, never an exception, and an amount written with a comma
  or a point reads back exactly.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace.core.schemas import WholeNumber
from marketplace.ledger import services as ledger
from marketplace.web.forms import euros_to_cents, percent_to_rate
from tests.factories import ConnectedAccountFactory, PaymentFactory
from tests.integration.test_webhooks import signed

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
EVENT_TYPES = st.sampled_from(
    [
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "account.updated",
        "charge.refunded",
    ]
)

# What an HTTP header can carry (no line breaks).
HEADER = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120)


def events(ids: list[str]):
    """Events of plausible and implausible shape, naming our own objects at times."""
    object_id = st.sampled_from(ids) | JSON
    obj = st.fixed_dictionaries(
        {"id": object_id},
        optional={
            "amount": st.integers(-10, 10**12) | JSON,
            "metadata": st.fixed_dictionaries({}, optional={"payment_id": JSON | st.just("1")})
            | JSON,
            "last_payment_error": st.fixed_dictionaries({}, optional={"code": JSON}) | JSON,
            "capabilities": st.fixed_dictionaries({}, optional={"transfers": JSON}) | JSON,
            "details_submitted": JSON,
            "payouts_enabled": JSON,
            "status": JSON,
        },
    )
    data = st.fixed_dictionaries({"object": obj | JSON}) | JSON
    return st.fixed_dictionaries(
        {
            "id": st.text(min_size=1, max_size=300) | JSON,
            "type": EVENT_TYPES | JSON,
            "data": data,
        },
        optional={"object": st.just("event"), "created": st.integers()},
    )


def post(client, body: bytes, signature: str):
    return client.post(
        "/webhooks/stripe",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": signature},
    )


def test_any_body_with_any_signature_is_refused(client):
    @FUZZ
    @given(body=st.binary(max_size=300), signature=HEADER)
    def run(body, signature):
        response = post(client, body, signature)
        assert response.status_code == 400, (body, signature, response.status_code)

    run()


def test_any_event_stripe_could_sign_is_handled_or_refused_never_a_500(client, session):
    payment = PaymentFactory(payment_intent_id="pi_fuzz_1")
    account = ConnectedAccountFactory()
    session.commit()
    ids = [payment.payment_intent_id, account.account_id, "pi_unknown", ""]
    answered = []

    @FUZZ
    @given(event=events(ids))
    def run(event):
        body, signature = signed(event)
        response = post(client, body, signature)
        answered.append(response.status_code)
        assert response.status_code in (200, 400), (json.dumps(event)[:300], response.data)

    run()
    assert answered.count(200) > 30 and answered.count(400) > 30, answered
    session.rollback()
    assert ledger.verify(session) == []


@FUZZ
@given(text=st.text(max_size=40))
def test_any_text_is_an_amount_in_cents_or_none(text):
    cents = euros_to_cents(text)
    assert cents is None or (isinstance(cents, int) and cents >= 0)
    rate = percent_to_rate(text)
    assert rate is None or (isinstance(rate, Decimal) and 0 <= rate <= Decimal("9.99"))


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("1.200.000,00", 120_000_000),
        ("1,200,000.00", 120_000_000),
        ("€ 45.000,5", 4_500_050),
        ("1.200.000", 120_000_000),
        # thousands with two separators, or three decimals: not an amount (was a 500)
        ("1.200.000,005", None),
        ("1.200,000", None),
        ("1,200.000.00", None),
    ],
)
def test_thousands_keep_one_separator(text, cents):
    assert euros_to_cents(text) == cents


@FUZZ
@given(
    cents=st.integers(min_value=0, max_value=10**12 - 1),
    separator=st.sampled_from([".", ","]),
    padding=st.sampled_from(["", " ", "  "]),
)
def test_an_amount_written_either_way_reads_back_exactly(cents, separator, padding):
    euros, rest = divmod(cents, 100)
    written = f"{padding}{euros}{separator}{rest:02d}{padding}"
    assert euros_to_cents(written) == cents
    if rest == 0:
        assert euros_to_cents(str(euros)) == cents


@FUZZ
@given(value=JSON)
def test_a_whole_number_field_takes_only_whole_numbers(value):
    import marshmallow as ma

    field = WholeNumber()
    try:
        loaded = field.deserialize(value)
    except ma.ValidationError:
        return
    assert isinstance(loaded, int) and not isinstance(loaded, bool)
    assert loaded == (int(value.strip()) if isinstance(value, str) else value)


# --- the classes of odd input of issue 15 (finding 4), generated -------------------------

# Any character at all, lone surrogates and control characters included.
ANY_CHAR = st.characters(codec=None, categories=None)
ODD_TEXT = st.text(ANY_CHAR, max_size=20) | st.sampled_from(["\ud800", "a\x00b", "\r\nBcc: x"])
UNICODE_DIGITS = st.text(
    st.characters(categories=["Nd", "No"], exclude_characters="0123456789"), min_size=1
) | st.builds(lambda n, s: s * n + "5", st.integers(1, 3), st.sampled_from(["-", "+"]))
FAR_DATES = st.builds(
    lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}",
    st.integers(1, 9999),
    st.integers(1, 12),
    st.integers(1, 28),
)
HUGE_WHOLE = st.integers(min_value=2**31, max_value=10**40).map(str) | st.integers(4000, 6000).map(
    lambda n: "9" * n
)
DEEP_JSON = st.integers(600, 6000).map(lambda n: "[" * n + "]" * n)
ODD_VALUE = ODD_TEXT | UNICODE_DIGITS | FAR_DATES | HUGE_WHOLE | JSON


def odd_body():
    """A JSON document (as text) a client could send: deep, with huge numbers, with
    surrogates escaped or raw, with any value in the fields the API knows."""
    fields = st.sampled_from(
        [
            "title",
            "summary",
            "city",
            "budget_cents",
            "funding_deadline",
            "end_date",
            "tokens",
            "payment_method",
            "beneficiary",
            "quantity",
            "email",
            "name",
            "organisation",
        ]
    )
    document = st.dictionaries(fields, ODD_VALUE, max_size=5).map(
        lambda d: json.dumps(d, ensure_ascii=False)
    )
    escaped = st.dictionaries(fields, ODD_TEXT, max_size=3).map(json.dumps)  # \ud800 as escapes
    huge = HUGE_WHOLE.map(lambda n: '{"tokens": ' + n + ', "budget_cents": ' + n + "}")
    return document | escaped | huge | DEEP_JSON


def test_any_odd_json_body_is_refused_with_a_4xx_never_a_500(client, auth_headers):
    from marketplace.accounts.models import Role
    from tests.factories import UserFactory
    from tests.integration.funding_support import listed_project

    owner = UserFactory(role=Role.ENTREPRENEUR)
    buyer_user = UserFactory(role=Role.BUYER)
    project = listed_project()
    targets = [
        ("/api/v1/projects", auth_headers(owner)),
        (f"/api/v1/projects/{project.id}/pledges", auth_headers(buyer_user)),
        ("/api/v1/retirements", auth_headers(buyer_user)),
        ("/api/v1/auth/register", {}),
        ("/api/v1/valuations/preview", auth_headers(owner)),
    ]
    seen = []

    @FUZZ
    @given(raw=odd_body(), target=st.sampled_from(targets))
    def run(raw, target):
        path, headers = target
        response = client.post(
            path,
            data=raw.encode("utf-8", "surrogatepass"),
            content_type="application/json",
            headers=headers,
        )
        seen.append(response.status_code)
        assert response.status_code < 500, (path, raw[:200], response.data[:300])

    run()
    assert 400 in seen and 422 in seen, sorted(set(seen))


def test_any_odd_query_value_is_refused_with_a_4xx_never_a_500(web, client, auth_headers):
    from marketplace.accounts.models import Role
    from tests.factories import UserFactory

    admin = UserFactory(role=Role.ADMIN)
    buyer_user = UserFactory(role=Role.BUYER)
    token = auth_headers(admin)
    pages = [
        "/dashboard",
        "/impact-report.csv",
        "/pledges",
        "/notices",
        "/registry",
        "/projects",
        "/admin/audit",
        "/admin/outbox",
    ]
    api = [
        "/api/v1/projects",
        "/api/v1/audit-events",
        "/api/v1/pledges",
        "/api/v1/registry/blocks",
        "/api/v1/outcome-types",
    ]
    names = st.sampled_from(["from", "to", "page", "q", "per_page", "city", "serial"])
    browsers = {}

    @FUZZ
    @given(
        path=st.sampled_from(pages + api),
        name=names,
        value=ODD_TEXT | UNICODE_DIGITS | FAR_DATES | HUGE_WHOLE,
        who=st.sampled_from(["admin", "buyer"]),
    )
    def run(path, name, value, who):
        query = {name: value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")}
        if path.startswith("/api/"):
            response = client.get(path, query_string=query, headers=token)
        else:
            if who not in browsers:
                person = admin if who == "admin" else buyer_user
                browsers[who] = web.as_user(person.email)
            response = browsers[who].client.get(path, query_string=query)
        assert response.status_code < 500, (path, query, response.status_code)

    run()
