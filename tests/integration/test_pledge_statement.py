"""A returning buyer's pledge on PostgreSQL: one statement, its own transaction, whole or not
at all (``funding.one_statement``).

The statement is written from figures read before it without a lock. Here another
transaction changes those figures while the pledge waits for the project's row: the
statement must then fail whole (refuse_unless), leave nothing behind, and the general
path must say why, exactly as when the figures were read afresh.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, func, select, text

from marketplace.audit.models import AuditEvent
from marketplace.core.idempotency import IdempotencyRecord
from marketplace.funding.models import Pledge, PledgeStateChange
from tests.factories import ApiTokenFactory, PaymentSetupFactory
from tests.integration.funding_support import buyer, listed_project, pledge_via_api

pytestmark = pytest.mark.postgres_only


def counts(session) -> dict[str, int]:
    session.rollback()
    return {
        model.__name__: session.scalar(select(func.count()).select_from(model))
        for model in (Pledge, PledgeStateChange, AuditEvent, IdempotencyRecord)
    }


def returning_buyer(session):
    user = buyer()
    setup = PaymentSetupFactory(organisation_id=user.organisation_id, user_id=user.id)
    token = ApiTokenFactory(user=user)
    session.commit()
    return {"Authorization": f"Bearer {token.secret}"}, setup.payment_method_id


def pledge_while_the_row_is_held(app, client, headers, method, project_id, change_sql):
    """Lock the project's row in another transaction, start a pledge (which reads, then
    waits on the row), change the row and commit; the pledge's answer."""
    engine = create_engine(app.extensions["settings"].database_url)
    answers = []
    try:
        with engine.connect() as holder:
            holder.execute(
                text("SELECT 1 FROM projects WHERE id = :id FOR UPDATE"), {"id": project_id}
            )
            pledging = threading.Thread(
                target=lambda: answers.append(
                    pledge_via_api(client, headers, project_id, 5, method, key="held-1")
                )
            )
            pledging.start()
            waited_for = 0.0
            while not _waiting_on_a_lock(engine) and waited_for < 20:
                time.sleep(0.05)
                waited_for += 0.05
            assert waited_for < 20, "the pledge never reached the project's row"
            holder.execute(text(change_sql), {"id": project_id})
            holder.commit()
            pledging.join(timeout=30)
    finally:
        engine.dispose()
    assert answers, "the pledge did not answer"
    return answers[0]


def _waiting_on_a_lock(engine) -> bool:
    """Whether a session of this database waits on a lock (asked afresh each time: within
    one transaction PostgreSQL would answer from the same snapshot)."""
    with engine.connect() as watcher:
        return bool(
            watcher.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar()
        )


@pytest.mark.parametrize(
    ("change", "code", "said"),
    [
        (
            "UPDATE projects SET tokens_pledged = 98 WHERE id = :id",
            "insufficient_tokens",
            "Only 2 tokens remain",
        ),
        (
            "UPDATE projects SET funding_deadline = DATE '2020-01-01' WHERE id = :id",
            "funding_closed",
            "the deadline has passed",
        ),
    ],
    ids=["tokens taken", "funding closed"],
)
def test_a_refusal_while_the_pledge_waits_leaves_nothing_and_is_explained(
    app, client, session, change, code, said
):
    project = listed_project(tokens_total=100)
    headers, method = returning_buyer(session)
    before = counts(session)
    pledged_before = project.tokens_pledged

    answer = pledge_while_the_row_is_held(app, client, headers, method, project.id, change)

    assert answer.status_code == 409, answer.json
    assert answer.json["code"] == code
    assert said in answer.json["detail"]
    assert counts(session) == before  # no pledge, history, audit or idempotency row
    session.refresh(project)
    assert project.tokens_pledged == (98 if code == "insufficient_tokens" else pledged_before)


def test_a_pledge_that_waited_and_still_fits_is_made_once_with_its_key(app, client, session):
    project = listed_project(tokens_total=100)
    headers, method = returning_buyer(session)
    before = counts(session)

    answer = pledge_while_the_row_is_held(
        app,
        client,
        headers,
        method,
        project.id,
        "UPDATE projects SET tokens_pledged = 95 WHERE id = :id",
    )

    assert answer.status_code == 201, answer.json
    after = counts(session)
    assert after["Pledge"] == before["Pledge"] + 1
    assert after["PledgeStateChange"] == before["PledgeStateChange"] + 1
    assert after["AuditEvent"] == before["AuditEvent"] + 1
    assert after["IdempotencyRecord"] == before["IdempotencyRecord"] + 1
    session.refresh(project)
    assert project.tokens_pledged == 100
    again = pledge_via_api(client, headers, project.id, 5, method, key="held-1")
    assert again.status_code == 201 and again.json["id"] == answer.json["id"]
    assert counts(session) == after


def test_no_connection_goes_back_to_the_pool_outside_transactions(app, client, session):
    """The pledge's reads run in autocommit (``core.autocommit``): whatever the pledge's
    outcome, the connection it used must take transactions again afterwards."""
    project = listed_project(tokens_total=8)
    headers, method = returning_buyer(session)

    outcomes = [
        pledge_via_api(client, headers, project.id, 5, method, key="a").status_code,
        pledge_via_api(client, headers, project.id, 5, method, key="a").status_code,  # replay
        pledge_via_api(client, headers, project.id, 5, method, key="b").status_code,  # refused
        pledge_via_api(client, headers, project.id, 2, "pm_unknown").status_code,  # new card
        pledge_via_api(client, headers, 999_999, 1, method).status_code,  # no such project
    ]

    assert outcomes[:3] == [201, 201, 409] and outcomes[4] == 404
    engine = app.extensions["db"].engine
    held = [engine.raw_connection() for _ in range(engine.pool.size())]
    try:
        assert [c.driver_connection.autocommit for c in held] == [False] * len(held)
    finally:
        for connection in held:
            connection.close()
