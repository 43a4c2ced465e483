"""The payment attempts' owner (funding/charges.py) at its edges: each refusal with its
reason, the grace period's last instant, whose attempt blocks whose, what a waiting or
superseded attempt keeps, and everything a surplus leaves behind.

Written against mutants `make mutation` found alive (bench/MUTATION.md).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import select

from marketplace.funding import charges
from marketplace.funding.models import Pledge, PledgeState
from marketplace.notifications.models import Notification
from marketplace.payments.models import Payment, PaymentState, Refund
from outcomes.errors import NotFound
from outcomes.lifecycle import InvalidTransition
from tests.factories import PaymentFactory, PledgeFactory, RefundFactory
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


@contextmanager
def stripe_away(app):
    """Stripe out of reach (nothing listens where the app calls it) while the block runs."""
    from marketplace.payments.gateway import StripeGateway
    from tests.support.postgres import _free_port

    reachable = app.extensions["stripe"]
    app.extensions["stripe"] = StripeGateway(
        "sk_test_unreachable", f"http://127.0.0.1:{_free_port()}", "eur"
    )
    try:
        yield
    finally:
        app.extensions["stripe"] = reachable


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

    _project, _admin, pledge_id, token = failed_pledge
    with stripe_away(app):
        answer = _pay(client, pledge_id, token, "pm_card_visa")

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


# --- what a failure, a surplus and a waiting attempt leave behind, exactly -----------------


def test_a_declined_charge_leaves_its_reason_and_one_notice_with_every_figure(
    session, failed_pledge
):
    from marketplace.funding.models import PledgeStateChange

    project, _admin, pledge_id, _token = failed_pledge
    session.rollback()
    pledge = session.get(Pledge, pledge_id)

    failed = session.scalars(
        select(PledgeStateChange).where(
            PledgeStateChange.pledge_id == pledge_id,
            PledgeStateChange.to_state == PledgeState.PAYMENT_FAILED,
        )
    ).one()
    assert (failed.reason, failed.reason_params) == (
        "charge failed: %(code)s",
        {"code": "card_declined"},
    )
    notice = session.scalars(
        select(Notification).where(Notification.kind == "payment_failed")
    ).one()
    assert (notice.key, notice.organisation_id, notice.link) == (
        f"payment_failed:pledge:{pledge_id}",
        pledge.organisation_id,
        f"/pledges#pledge-{pledge_id}",
    )
    assert notice.params == {
        "project": project.title,
        "tokens": 1000,
        "code": "card_declined",
        "until_at": pledge.grace_until.replace(tzinfo=CLOSED.tzinfo).isoformat(),
    }
    assert notice.created_at.replace(tzinfo=CLOSED.tzinfo) == failed.at.replace(
        tzinfo=CLOSED.tzinfo
    )


def test_a_failure_keeps_the_first_intent_and_sixty_characters_of_its_code(session):
    named = PaymentFactory(
        pledge=PledgeFactory(state=PledgeState.COMMITTED),
        state=PaymentState.CREATED,
        payment_intent_id="pi_first",
    )
    bare = PaymentFactory(
        pledge=PledgeFactory(state=PledgeState.COMMITTED), state=PaymentState.CREATED
    )
    session.commit()

    charges.record_failure(session, named, "x" * 70, CLOSED, 48, "pi_other")
    charges.record_failure(session, bare, "card_declined", CLOSED, 48, "pi_told")
    session.commit()

    assert (named.payment_intent_id, named.failure_code) == ("pi_first", "x" * 60)
    assert (bare.payment_intent_id, bare.state) == ("pi_told", PaymentState.FAILED)


def test_a_waiting_attempt_learns_its_intent_when_it_had_none(session):
    bare = PaymentFactory(state=PaymentState.CREATED)
    session.commit()

    assert charges.record_waiting(session, bare, "requires_action", CLOSED, "pi_told") == (
        "requires_action"
    )
    session.commit()

    assert session.get(Payment, bare.id).payment_intent_id == "pi_told"


def test_a_surplus_is_booked_against_its_own_payment_and_pledge(session, failed_pledge):
    from marketplace.ledger.models import JournalEntry

    project, _admin, failed_id, _token = failed_pledge
    session.rollback()
    paid = session.scalars(
        select(Pledge).where(Pledge.project_id == project.id, Pledge.id != failed_id)
    ).one()
    extra = PaymentFactory(pledge=paid, attempt=5, state=PaymentState.CREATED)
    session.commit()

    assert charges.record_success(session, extra, CLOSED) == "surplus"
    session.commit()

    entry = session.scalars(select(JournalEntry).where(JournalEntry.kind == "surplus_charge")).one()
    assert (entry.reference, entry.memo) == (
        f"payment:{extra.id}",
        f"pledge {paid.id}: paid twice; refunded",
    )


def test_a_second_success_of_a_pledge_whose_state_lags_is_a_surplus_not_a_crash(session):
    """The partial unique index is the backstop; the code sees the first success itself."""
    pledge = PledgeFactory(state=PledgeState.PAYMENT_FAILED)
    PaymentFactory(pledge=pledge, attempt=1, state=PaymentState.SUCCEEDED)
    second = PaymentFactory(pledge=pledge, attempt=2, state=PaymentState.CREATED)
    session.commit()

    assert charges.record_success(session, second, CLOSED) == "surplus"
    session.commit()
    assert session.get(Payment, second.id).state is PaymentState.SURPLUS


def test_the_success_of_a_pledge_is_its_own_succeeded_attempt(session):
    mine = PledgeFactory(state=PledgeState.PAYMENT_FAILED)
    failed = PaymentFactory(pledge=mine, attempt=1, state=PaymentState.FAILED)
    theirs = PledgeFactory(state=PledgeState.PAID)
    succeeded = PaymentFactory(pledge=theirs, attempt=1, state=PaymentState.SUCCEEDED)
    session.commit()

    assert charges._success_of(session, mine.id) is None
    assert charges._success_of(session, theirs.id) == succeeded
    assert failed.state is PaymentState.FAILED


def test_the_funding_close_charge_claims_only_a_committed_pledge_without_an_attempt(session):
    cancelled = PledgeFactory(state=PledgeState.CANCELLED)
    tried = PledgeFactory(state=PledgeState.COMMITTED)
    PaymentFactory(pledge=tried, attempt=1, state=PaymentState.FAILED)
    fresh_one = PledgeFactory(state=PledgeState.COMMITTED)
    PaymentFactory(pledge=PledgeFactory(state=PledgeState.COMMITTED), state=PaymentState.CREATED)
    session.commit()

    assert charges.claim_off_session(session, cancelled.id, CLOSED) is None
    assert charges.claim_off_session(session, tried.id, CLOSED) is None
    made = charges.claim_off_session(session, fresh_one.id, CLOSED)
    session.commit()

    assert made is not None and (made.pledge_id, made.attempt) == (fresh_one.id, 1)
    assert session.scalars(select(Payment).where(Payment.pledge_id == cancelled.id)).all() == []


@pytest.mark.postgres_only
def test_a_pledge_changed_by_another_request_is_read_fresh_when_locked(app, session):
    """The session read the pledge before; the lock reads it again from the database."""
    from tests.support.races import other_process

    pledge = PledgeFactory(state=PledgeState.COMMITTED)
    session.commit()
    assert session.get(Pledge, pledge.id).state is PledgeState.COMMITTED  # in the session

    def cancel(other):
        other.get(Pledge, pledge.id).state = PledgeState.CANCELLED

    other_process(app, cancel)()

    assert charges._locked_pledge(session, pledge.id).state is PledgeState.CANCELLED
    session.rollback()


# --- refunds due -------------------------------------------------------------------------------


def test_refunds_due_are_the_created_rows_of_that_pledge_in_the_order_made(session):
    from marketplace.payments.models import MoneyState
    from marketplace.payments.services import DueRefund

    first, second = (PledgeFactory(state=PledgeState.PAID) for _ in range(2))
    paid = [
        PaymentFactory(pledge=first, state=PaymentState.SUCCEEDED, payment_intent_id="pi_0"),
        PaymentFactory(pledge=second, state=PaymentState.SUCCEEDED, payment_intent_id="pi_1"),
        PaymentFactory(
            pledge=first, attempt=2, state=PaymentState.SURPLUS, payment_intent_id="pi_2"
        ),
    ]
    session.commit()

    def refund(payment, reason, state=MoneyState.CREATED):
        return RefundFactory(
            payment=payment,
            reason=reason,
            amount_cents=100 + payment.id,
            state=state,
            created_at=CLOSED,
            updated_at=CLOSED,
        )

    a = refund(paid[0], "surplus")
    b = refund(paid[1], "unfunded")
    refund(paid[1], "settlement", MoneyState.SUCCEEDED)
    c = refund(paid[2], "settlement")
    session.commit()
    # PostgreSQL writes an updated row at the end of the table: only ORDER BY keeps order
    session.get(Refund, a.id).updated_at = CLOSED + timedelta(minutes=1)
    session.commit()

    def due(pledge_id=None):
        return [DueRefund(*row) for row in session.execute(charges.due_refunds(pledge_id))]

    every = due()
    assert every == [
        DueRefund(
            a.id,
            first.id,
            "surplus",
            a.amount_cents,
            "pi_0",
            first.organisation_id,
            first.project_id,
        ),
        DueRefund(
            b.id,
            second.id,
            "unfunded",
            b.amount_cents,
            "pi_1",
            second.organisation_id,
            second.project_id,
        ),
        DueRefund(
            c.id,
            first.id,
            "settlement",
            c.amount_cents,
            "pi_2",
            first.organisation_id,
            first.project_id,
        ),
    ]
    assert due(first.id) == [every[0], every[2]]
    assert due(second.id) == [every[1]]


def test_a_pledge_with_no_surplus_due_sends_nothing(app, session, caplog):
    from marketplace.payments.models import MoneyState

    mine = PledgeFactory(state=PledgeState.PAID)
    theirs = PledgeFactory(state=PledgeState.PAID)
    payment = PaymentFactory(
        pledge=theirs, state=PaymentState.SURPLUS, payment_intent_id="pi_not_at_stripe"
    )
    RefundFactory(payment=payment, reason="surplus", created_at=CLOSED, updated_at=CLOSED)
    session.commit()
    sessions, gateway = app.extensions["db"].session_factory, app.extensions["stripe"]

    with caplog.at_level(logging.INFO):
        assert charges.send_surplus_refunds(sessions, gateway, mine.id, CLOSED) == 0
    # another pledge's surplus is the refund sweep's, not this payment's: not even tried
    assert not [m for m in caplog.messages if m.startswith("refund ")]
    session.rollback()
    untouched = session.scalars(select(Refund).where(Refund.pledge_id == theirs.id)).one()
    assert (untouched.state, untouched.updated_at.replace(tzinfo=CLOSED.tzinfo)) == (
        MoneyState.CREATED,
        CLOSED,
    )


# --- paying on the page, and a waiting attempt that succeeded after all ---------------------


def test_paying_on_the_page_answers_with_its_pledge_attempt_and_state(app, session, failed_pledge):
    _project, _admin, pledge_id, _token = failed_pledge
    session.rollback()
    grace = session.get(Pledge, pledge_id).grace_until
    sessions, gateway = app.extensions["db"].session_factory, app.extensions["stripe"]

    outcome = charges.pay_on_session(
        sessions,
        gateway,
        organisation_id=None,
        pledge_id=pledge_id,
        payment_method="pm_card_visa",
        now=grace - timedelta(hours=1),
        grace_hours=72,
    )

    session.rollback()
    paid = session.scalars(
        select(Payment).where(
            Payment.pledge_id == pledge_id, Payment.state == PaymentState.SUCCEEDED
        )
    ).one()
    assert (outcome.pledge_id, outcome.payment_id, outcome.state) == (
        pledge_id,
        paid.id,
        PaymentState.SUCCEEDED,
    )
    assert outcome.client_secret.startswith(f"{paid.payment_intent_id}_secret_")


def test_stripe_out_of_reach_while_cancelling_a_waiting_attempt_is_503_saying_so(
    app, client, session, failed_pledge
):

    _project, _admin, pledge_id, token = failed_pledge
    waiting = _pay(client, pledge_id, token, THREE_D_SECURE)
    assert waiting.json["next_action"]["type"] == "authenticate"
    with stripe_away(app):
        answer = _pay(client, pledge_id, token, "pm_card_visa")

    assert answer.status_code == 503
    assert answer.json["detail"].startswith("Stripe is unavailable: ")
    session.rollback()
    live = session.scalars(
        select(Payment).where(
            Payment.pledge_id == pledge_id, Payment.state.in_(("requires_action",))
        )
    ).one()
    assert live.failure_code == ""


@pytest.mark.postgres_only
def test_a_waiting_attempt_that_succeeded_meanwhile_stays_paid_and_the_new_charge_is_refunded(
    app, client, session, failed_pledge
):
    """The buyer gave up on 3-D Secure and paid with another card; the bank's success of
    the first attempt is recorded (by a webhook) just as it is being cancelled here."""
    from tests.support.races import before_first, other_process

    _project, _admin, pledge_id, token = failed_pledge
    assert _pay(client, pledge_id, token, THREE_D_SECURE).json["next_action"]
    session.rollback()
    first = session.scalars(
        select(Payment).where(
            Payment.pledge_id == pledge_id, Payment.state == PaymentState.REQUIRES_ACTION
        )
    ).one()
    grace = session.get(Pledge, pledge_id).grace_until
    session.rollback()

    def succeeded_at_the_bank(other):
        charges.record_success(other, other.get(Payment, first.id), grace - timedelta(hours=2))

    with (
        before_first(app, "UPDATE PAYMENTS", other_process(app, succeeded_at_the_bank)) as fired,
        pytest.raises(InvalidTransition),
    ):
        # the success made the pledge paid: there is nothing left to pay
        charges.pay_on_session(
            app.extensions["db"].session_factory,
            app.extensions["stripe"],
            organisation_id=None,
            pledge_id=pledge_id,
            payment_method="pm_card_visa",
            now=grace - timedelta(hours=1),
            grace_hours=72,
        )

    assert fired
    session.rollback()
    assert session.get(Payment, first.id).state is PaymentState.SUCCEEDED
    assert session.get(Pledge, pledge_id).state is PledgeState.PAID
