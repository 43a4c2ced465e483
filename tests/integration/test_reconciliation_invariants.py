"""Reconciliation can fail: each invariant broken on purpose is reported.

Each test starts from books that agree with Stripe (asserted), breaks one rule
in the database or at Stripe, and sees ``reconcile`` name it. The breakage is
rolled back afterwards (the tests' own transaction).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from marketplace.funding.models import Pledge, PledgeState
from marketplace.ledger.models import AccountKind
from marketplace.ledger.services import Leg, get_account, post
from marketplace.payments.models import Payment, PaymentState
from marketplace.projects.models import Project, ProjectState
from marketplace.reconciliation.checks import reconcile
from tests.integration.funding_support import (
    AFTER_DEADLINE,
    assert_books_agree_with_stripe,
    buyer,
    listed_project,
    pledge_via_api,
    tick,
)
from tests.integration.test_settlement import (  # noqa: F401 - fixtures
    ENDED,
    settled_example,
    worked_example,
)

AT = AFTER_DEADLINE + timedelta(hours=1)


@pytest.fixture
def paid(app, client, session, auth_headers):
    """A funded project whose two pledges (50 and 40 tokens) are paid."""
    project = listed_project()
    for tokens in (50, 40):
        assert pledge_via_api(client, auth_headers(buyer()), project.id, tokens).status_code == 201
    tick(app, AFTER_DEADLINE)
    assert_books_agree_with_stripe(app, session, AT)
    session.rollback()
    return project


def differences(app, session) -> list[str]:
    run = reconcile(session, app.extensions["stripe"], AT)
    found = list(run.differences)
    session.rollback()
    return found


def test_a_second_success_for_one_pledge_is_reported(app, session, paid):
    pledge = session.scalars(select(Pledge).where(Pledge.project_id == paid.id)).first()
    # The database refuses this (a partial unique index): take the guard away to see
    # that reconciliation, the second line of defence, reports it too.
    session.execute(text("DROP INDEX uq_payments_succeeded_pledge"))
    session.add(
        Payment(
            pledge_id=pledge.id,
            attempt=2,
            kind="on_session",
            amount_cents=pledge.amount_cents,
            payment_method_id="pm_card_visa",
            state=PaymentState.SUCCEEDED,
            created_at=AT,
            updated_at=AT,
        )
    )
    session.flush()

    found = differences(app, session)

    assert f"pledge {pledge.id}: 2 succeeded charges" in found


def test_a_charge_for_another_amount_than_the_pledge_is_reported(app, session, paid):
    payment = session.scalars(select(Payment).order_by(Payment.id)).first()
    session.execute(update(Payment).where(Payment.id == payment.id).values(amount_cents=1))

    found = differences(app, session)

    assert f"pledge {payment.pledge_id}: charged 1 cents of {payment.amount_cents}" in found
    assert f"payment {payment.id}: ours 1 cents, Stripe {payment.amount_cents}" in found


def test_a_paymentintent_at_stripe_without_a_row_is_reported(app, session, paid):
    gateway = app.extensions["stripe"]
    stray = gateway.charge(
        customer_id=None,
        payment_method="pm_card_visa",
        amount_cents=1234,
        key="test-stray-intent",
        off_session=False,
        transfer_group=f"project-{paid.id}",
        metadata={"payment_id": "999999", "pledge_id": "999999"},
    )

    found = differences(app, session)

    assert (
        f"Stripe's {stray.payment_intent_id} (succeeded, 1234 cents, payment 999999) "
        "has no payment row" in found
    )


def test_a_surplus_without_its_refund_is_reported(app, session, paid):
    payment = session.scalars(select(Payment).order_by(Payment.id)).first()
    session.execute(
        update(Payment).where(Payment.id == payment.id).values(state=PaymentState.SURPLUS)
    )

    found = differences(app, session)

    assert f"payment {payment.id}: a surplus charge without its refund" in found


def test_a_paid_pledge_of_an_unfunded_project_left_unrefunded_is_reported(app, session, paid):
    session.execute(
        update(Project).where(Project.id == paid.id).values(state=ProjectState.UNFUNDED)
    )
    pledges = session.scalars(
        select(Pledge.id).where(Pledge.project_id == paid.id, Pledge.state == PledgeState.PAID)
    ).all()

    found = differences(app, session)

    for pledge_id in pledges:
        assert f"pledge {pledge_id}: paid on an unfunded project and not refunded" in found
    assert f"project {paid.id} (unfunded): escrow holds 90000 cents, expected 0" in found


def test_money_left_in_a_settled_projects_escrow_is_reported(app, session, settled_example):
    project = settled_example.project
    assert_books_agree_with_stripe(app, session, ENDED + timedelta(days=2))
    session.rollback()
    post(
        session,
        reference="test:left-behind",
        kind="test",
        now=ENDED,
        legs=[
            Leg(
                debit=get_account(
                    session, AccountKind.BUYER, organisation_id=project.organisation_id
                ),
                credit=get_account(session, AccountKind.ESCROW, project_id=project.id),
                amount_cents=7,
            )
        ],
    )

    run = reconcile(session, app.extensions["stripe"], ENDED + timedelta(days=2))
    found = list(run.differences)
    session.rollback()

    assert f"project {project.id} (settled): escrow holds 7 cents, expected 0" in found


def test_a_stored_balance_that_differs_from_the_journal_is_reported(app, session, paid):
    """ledger.verify, shown able to fail: a balance changed behind the journal's back."""
    from marketplace.ledger.models import LedgerAccount
    from marketplace.ledger.services import account_code, verify

    code = account_code(AccountKind.ESCROW, project_id=paid.id)
    session.execute(
        update(LedgerAccount)
        .where(LedgerAccount.code == code)
        .values(balance_cents=LedgerAccount.balance_cents + 1)
    )

    problems = verify(session)
    found = differences(app, session)

    assert f"{code}: stored 90001, journal says 90000" in problems
    assert "debit-normal and credit-normal balances differ by -1 cents" in problems
    assert set(problems) <= set(found)


def test_a_refund_stripe_does_not_have_is_reported(app, session, paid):
    from marketplace.payments.models import MoneyState, Refund

    payment = session.scalars(select(Payment).order_by(Payment.id)).first()
    session.add(
        Refund(
            payment_id=payment.id,
            pledge_id=payment.pledge_id,
            reason="settlement",
            amount_cents=100,
            state=MoneyState.SUCCEEDED,
            refund_id="re_not_at_stripe",
            created_at=AT,
            updated_at=AT,
        )
    )
    session.flush()

    found = differences(app, session)

    assert any(line.startswith("refund ") and "re_not_at_stripe" in line for line in found)
