"""The payment attempts' owner (funding/charges.py) at its edges: each refusal with its
reason, the grace period's last instant, whose attempt blocks whose, what a waiting or
superseded attempt keeps, and everything a surplus leaves behind.

Written against mutants `make mutation` found alive (bench/MUTATION.md).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from marketplace.funding import charges
from marketplace.funding.models import Pledge, PledgeState
from marketplace.notifications.models import Notification
from marketplace.payments.models import Payment, PaymentState, Refund
from outcomes.errors import NotFound
from outcomes.lifecycle import InvalidTransition
from tests.factories import PaymentFactory, PledgeFactory
from tests.integration.test_payment_attempts import (  # noqa: F401 - the fixture
    THREE_D_SECURE,
    failed_pledge,
)
from tests.integration.test_settlement import CLOSED


def fresh(session, pledge_id: int) -> Pledge:
    session.rollback()
    return session.get(Pledge, pledge_id)


def claim(session, pledge_id: int, *, organisation_id=None, at=CLOSED):
    return charges._claim_on_session(session, organisation_id, pledge_id, "pm_card_visa", at)


def test_a_pledge_of_another_organisation_or_none_at_all_is_not_found(session, failed_pledge):
    _project, _admin, pledge_id, _token = failed_pledge
    pledge = fresh(session, pledge_id)

    with pytest.raises(NotFound) as foreign:
        claim(session, pledge_id, organisation_id=pledge.organisation_id + 1000)
    assert foreign.value.detail == "No such pledge."
    with pytest.raises(NotFound) as missing:
        claim(session, pledge_id + 1000)
    assert missing.value.detail == "No such pledge."
    session.rollback()
    assert session.scalars(select(Payment).where(Payment.state == PaymentState.CREATED)).all() == []


def test_a_pledge_that_did_not_fail_has_nothing_to_pay(session, failed_pledge):
    project, _admin, failed_id, _token = failed_pledge
    session.rollback()
    paid = session.scalars(
        select(Pledge).where(Pledge.project_id == project.id, Pledge.id != failed_id)
    ).one()

    with pytest.raises(InvalidTransition) as refused:
        claim(session, paid.id)

    assert refused.value.detail == "A paid pledge has nothing to pay."


def test_the_grace_period_ends_at_its_last_instant(session, failed_pledge):
    _project, _admin, pledge_id, _token = failed_pledge
    until = fresh(session, pledge_id).grace_until

    made = claim(session, pledge_id, at=until - timedelta(microseconds=1))
    assert made.payment_id is not None and made.supersede is None
    session.rollback()
    with pytest.raises(charges.GraceOver) as over:
        claim(session, pledge_id, at=until)
    assert over.value.detail == "The grace period to pay this pledge has ended."
    session.rollback()

    fresh(session, pledge_id).grace_until = None  # no grace period was ever opened
    session.commit()
    with pytest.raises(charges.GraceOver):
        claim(session, pledge_id)


def test_a_live_attempt_blocks_its_own_pledge_only(session, failed_pledge):
    _project, _admin, pledge_id, _token = failed_pledge
    pledge = fresh(session, pledge_id)
    other = PledgeFactory(state=PledgeState.COMMITTED)
    PaymentFactory(pledge=other, state=PaymentState.CREATED)  # another pledge's charge
    session.commit()

    first = claim(session, pledge_id)
    session.commit()
    assert first.payment_id is not None
    with pytest.raises(charges.PaymentInProgress) as twin:
        claim(session, pledge_id)
    assert twin.value.detail == "Another payment of this pledge is being made."
    session.rollback()

    # waiting for 3-D Secure without an intent at Stripe yet: nothing to cancel, so busy
    live = session.get(Payment, first.payment_id)
    live.state = PaymentState.REQUIRES_ACTION
    session.commit()
    with pytest.raises(charges.PaymentInProgress):
        claim(session, pledge_id)
    session.rollback()
    live = session.get(Payment, first.payment_id)
    live.payment_intent_id = "pi_waiting"
    session.commit()
    assert claim(session, pledge_id) == charges.Claim(
        supersede=first.payment_id, supersede_intent="pi_waiting"
    )
    assert pledge.id == pledge_id


def test_a_waiting_attempt_keeps_its_first_intent_and_only_moves_forward(session):
    payment = PaymentFactory(state=PaymentState.CREATED, payment_intent_id="pi_first")
    bare = PaymentFactory(state=PaymentState.CREATED)
    session.commit()

    assert charges.record_waiting(session, payment, "requires_action", CLOSED, "pi_other") == (
        "requires_action"
    )
    assert charges.record_waiting(session, bare, "processing", CLOSED, None) == "created"
    session.commit()

    assert (payment.payment_intent_id, payment.updated_at.replace(tzinfo=CLOSED.tzinfo)) == (
        "pi_first",
        CLOSED,
    )
    assert bare.payment_intent_id is None
    assert charges.record_waiting(session, payment, "requires_action", CLOSED, None) == (
        "requires_action"
    )


def test_a_surplus_leaves_a_refund_row_a_notice_and_a_warning(session, failed_pledge, caplog):
    project, _admin, failed_id, _token = failed_pledge
    session.rollback()
    paid = session.scalars(
        select(Pledge).where(Pledge.project_id == project.id, Pledge.id != failed_id)
    ).one()
    extra = PaymentFactory(
        pledge=paid, attempt=5, state=PaymentState.CREATED, payment_intent_id="pi_extra"
    )
    session.commit()

    with caplog.at_level(logging.WARNING, logger="marketplace.funding.charges"):
        assert charges.record_success(session, extra, CLOSED) == "surplus"
    session.commit()

    refund = session.scalars(select(Refund).where(Refund.payment_id == extra.id)).one()
    assert (refund.pledge_id, refund.reason, refund.amount_cents, refund.state.value) == (
        paid.id,
        "surplus",
        extra.amount_cents,
        "created",
    )
    notice = session.scalars(
        select(Notification).where(Notification.kind == "surplus_refunded")
    ).one()
    assert (notice.key, notice.organisation_id, notice.link) == (
        f"surplus:payment:{extra.id}",
        paid.organisation_id,
        f"/pledges#pledge-{paid.id}",
    )
    assert notice.params == {"project": project.title, "amount_cents": extra.amount_cents}
    assert f"payment {extra.id} of pledge {paid.id} is a surplus: refunding" in caplog.messages
    assert session.get(Payment, extra.id).state is PaymentState.SURPLUS


def test_superseding_cancels_that_attempt_only_and_says_why(client, session, clock, failed_pledge):
    _project, _admin, pledge_id, token = failed_pledge
    headers = {"Authorization": f"Bearer {token}"}
    waiting = client.post(
        f"/api/v1/pledges/{pledge_id}/pay", headers=headers, json={"payment_method": THREE_D_SECURE}
    )
    assert waiting.json["next_action"]["type"] == "authenticate"
    session.rollback()
    bystander = PaymentFactory(
        pledge=PledgeFactory(state=PledgeState.PAYMENT_FAILED),
        state=PaymentState.REQUIRES_ACTION,
        payment_intent_id="pi_someone_elses",
    )
    session.commit()
    clock.advance(minutes=5)

    paid = client.post(
        f"/api/v1/pledges/{pledge_id}/pay", headers=headers, json={"payment_method": "pm_card_visa"}
    )

    assert paid.status_code == 200 and paid.json["state"] == "paid", paid.json
    session.rollback()
    superseded = session.scalars(
        select(Payment).where(
            Payment.pledge_id == pledge_id, Payment.state == PaymentState.CANCELLED
        )
    ).one()
    assert superseded.failure_code == "superseded"
    assert superseded.updated_at.replace(tzinfo=clock.at.tzinfo) == clock.at
    assert session.get(Payment, bystander.id).state is PaymentState.REQUIRES_ACTION


def test_a_refund_of_an_unfunded_project_returns_a_paid_pledge_in_full(session):
    """``refunded``: each unfunded refund of a paid pledge leaves the project; other rows
    (a surplus, a pledge that is not paid) change nothing and do not stop the rest."""
    from marketplace.funding.models import PledgeStateChange
    from marketplace.payments.services import DueRefund
    from marketplace.projects.models import Project

    paid = PledgeFactory(state=PledgeState.PAID, tokens=30)
    project = paid.project
    surplus_of = PledgeFactory(project=project, state=PledgeState.PAID, tokens=20)
    committed = PledgeFactory(project=project, state=PledgeState.COMMITTED, tokens=5)
    session.commit()
    before = (project.tokens_paid, project.tokens_pledged)

    def row(pledge, reason):
        return DueRefund(0, pledge.id, reason, pledge.amount_cents, "pi_x", 0, project.id)

    charges.refunded(
        session,
        [row(surplus_of, "surplus"), row(committed, "unfunded"), row(paid, "unfunded")],
        CLOSED,
    )
    session.commit()
    session.expire_all()

    assert session.get(Pledge, paid.id).state is PledgeState.REFUNDED
    assert session.get(Pledge, surplus_of.id).state is PledgeState.PAID
    assert session.get(Pledge, committed.id).state is PledgeState.COMMITTED
    stored = session.get(Project, project.id)
    assert (stored.tokens_paid, stored.tokens_pledged) == (before[0] - 30, before[1] - 30)
    change = session.scalars(
        select(PledgeStateChange).where(PledgeStateChange.pledge_id == paid.id)
    ).one()
    assert (change.to_state, change.reason) == (
        PledgeState.REFUNDED,
        "the project is unfunded: refunded in full",
    )


def _pay(client, pledge_id: int, token: str, method: str):
    return client.post(
        f"/api/v1/pledges/{pledge_id}/pay",
        headers={"Authorization": f"Bearer {token}"},
        json={"payment_method": method},
    )


def test_a_card_declined_on_the_page_is_recorded_and_named(client, session, failed_pledge):
    _project, _admin, pledge_id, token = failed_pledge
    grace = fresh(session, pledge_id).grace_until
    session.rollback()

    declined = _pay(client, pledge_id, token, "pm_card_chargeCustomerFail")

    assert declined.status_code == 402
    assert declined.json["detail"] == "The card was declined (card_declined)."
    session.rollback()
    attempt = session.scalars(
        select(Payment)
        .where(Payment.pledge_id == pledge_id, Payment.state == PaymentState.FAILED)
        .order_by(Payment.id.desc())
    ).first()
    assert attempt.failure_code == "card_declined"
    assert attempt.payment_intent_id and attempt.payment_intent_id.startswith("pi_")
    pledge = session.get(Pledge, pledge_id)
    assert (pledge.state, pledge.grace_until) == (PledgeState.PAYMENT_FAILED, grace)


def test_a_payment_waiting_for_the_bank_answers_with_its_secret_and_charges_for_its_project(
    app, client, session, failed_pledge
):
    from tests.integration.test_payment_attempts import intents_of
    from tests.integration.test_stripe_requests import recorded

    project, _admin, pledge_id, token = failed_pledge
    before = len(recorded(app))

    waiting = _pay(client, pledge_id, token, THREE_D_SECURE)

    assert waiting.status_code == 200
    assert waiting.json["id"] == pledge_id
    secret = waiting.json["next_action"]["client_secret"]
    assert waiting.json["next_action"]["type"] == "authenticate" and "_secret_" in secret
    live = [i for i in intents_of(app, pledge_id) if i.status == "requires_action"]
    assert [i.client_secret for i in live] == [secret]
    assert live[0].metadata["project_id"] == str(project.id)
    # the card's label is read only for a charge that succeeded
    sent = recorded(app)[before:]
    assert not [r for r in sent if r["path"].startswith("/v1/payment_methods/")]


def test_stripe_out_of_reach_is_503_and_charges_nothing(app, client, session, failed_pledge):
    from marketplace.payments.gateway import StripeGateway
    from tests.support.postgres import _free_port

    _project, _admin, pledge_id, token = failed_pledge
    reachable = app.extensions["stripe"]
    app.extensions["stripe"] = StripeGateway(
        "sk_test_unreachable", f"http://127.0.0.1:{_free_port()}", "eur"
    )
    try:
        answer = _pay(client, pledge_id, token, "pm_card_visa")
    finally:
        app.extensions["stripe"] = reachable

    assert answer.status_code == 503
    assert answer.json["detail"].startswith("Stripe is unavailable: ")
    session.rollback()
    assert session.get(Pledge, pledge_id).state is PledgeState.PAYMENT_FAILED
    assert not session.scalars(
        select(Payment).where(
            Payment.pledge_id == pledge_id, Payment.state == PaymentState.SUCCEEDED
        )
    ).all()


# --- recording Stripe's answers, and the off-session charge ---------------------------


def _claimed(session, client, auth_headers, method="pm_card_visa"):
    """A committed pledge of 85 tokens and its claimed off-session attempt."""
    from tests.integration.funding_support import AFTER_DEADLINE, buyer, listed_project
    from tests.integration.funding_support import pledge_via_api as pledge

    session.rollback()  # end any read first: the factories write next (SQLite)
    project = listed_project()
    made = pledge(client, auth_headers(buyer()), project.id, 85, method).json
    session.rollback()
    attempt = charges.claim_off_session(session, made["id"], AFTER_DEADLINE)
    session.commit()
    return project, session.get(Pledge, made["id"]), attempt, AFTER_DEADLINE


def test_a_success_is_recorded_once_with_its_card_entry_and_history(session, client, auth_headers):
    from marketplace.funding.models import PledgeStateChange
    from marketplace.ledger.models import JournalEntry

    _project, pledge, attempt, at = _claimed(session, client, auth_headers)
    attempt.payment_intent_id, attempt.failure_code = "pi_first", ""
    session.commit()

    card = ("An Unusually Long Card Brand Name", "4242424242")
    assert charges.record_success(session, attempt, at, "pi_other", card) == "paid"
    session.commit()
    assert charges.record_success(session, attempt, at, "pi_other") == "known"
    session.commit()

    stored = session.get(Payment, attempt.id)
    assert (stored.payment_intent_id, stored.failure_code, stored.state) == (
        "pi_first",
        "",
        PaymentState.SUCCEEDED,
    )
    assert (stored.card_brand, stored.card_last4) == ("An Unusually Long Ca", "4242")
    entry = session.scalars(
        select(JournalEntry).where(JournalEntry.reference == f"payment:{attempt.id}")
    ).one()
    assert entry.memo == f"pledge {pledge.id}: 85 tokens"
    paid = session.scalars(
        select(PledgeStateChange).where(
            PledgeStateChange.pledge_id == pledge.id,
            PledgeStateChange.to_state == PledgeState.PAID,
        )
    ).one()
    assert (paid.reason, paid.reason_params) == (
        "%(kind)s payment %(payment)s succeeded",
        {"kind": "off-session", "payment": str(attempt.id)},
    )


def test_a_late_success_for_a_released_pledge_is_a_surplus(session, client, auth_headers):
    _project, pledge, attempt, at = _claimed(session, client, auth_headers)
    pledge.state = PledgeState.RELEASED  # the project was withdrawn meanwhile
    session.commit()

    assert charges.record_success(session, attempt, at) == "surplus"
    session.commit()
    assert session.get(Pledge, pledge.id).state is PledgeState.RELEASED
    assert session.get(Payment, attempt.id).state is PaymentState.SURPLUS


@pytest.mark.parametrize("status", ["requires_payment_method", "canceled"])
def test_a_charge_stripe_could_not_take_opens_the_grace_period(
    session, client, auth_headers, status
):
    from marketplace.payments.gateway import PaymentResult

    _project, pledge, attempt, at = _claimed(session, client, auth_headers)

    state = charges.record_result(
        session, attempt, PaymentResult("pi_x", status, attempt.amount_cents), at, grace_hours=48
    )
    session.commit()

    assert state == "failed"
    assert session.get(Payment, attempt.id).failure_code == status
    stored = session.get(Pledge, pledge.id)
    assert (stored.state, stored.grace_until) == (
        PledgeState.PAYMENT_FAILED,
        at + timedelta(hours=48),
    )


def test_the_off_session_charge_says_what_came_of_it(app, session, client, auth_headers, caplog):
    from marketplace.payments.gateway import StripeGateway
    from tests.integration.test_payment_attempts import intents_of
    from tests.support.postgres import _free_port

    sessions, gateway = app.extensions["db"].session_factory, app.extensions["stripe"]
    project, pledge, attempt, at = _claimed(session, client, auth_headers)
    away = StripeGateway("sk_test_unreachable", f"http://127.0.0.1:{_free_port()}", "eur")

    with caplog.at_level(logging.WARNING, logger="marketplace.funding.charges"):
        assert charges.charge_off_session(sessions, away, attempt.id, at, 72) == "unavailable"
    assert any(
        m.startswith(f"charge {attempt.id} waits: Stripe is unavailable") for m in caplog.messages
    )
    assert charges.charge_off_session(sessions, gateway, attempt.id, at, 72) == "succeeded"
    (intent,) = intents_of(app, pledge.id)
    assert intent.metadata["project_id"] == str(project.id)
    assert charges.charge_off_session(sessions, gateway, attempt.id, at, 72) == "succeeded"

    _other, declined, failing, _at = _claimed(
        session, client, auth_headers, "pm_card_chargeCustomerFail"
    )
    assert charges.charge_off_session(sessions, gateway, failing.id, at, 72) == "failed"
    session.rollback()
    assert session.get(Pledge, declined.id).state is PledgeState.PAYMENT_FAILED
