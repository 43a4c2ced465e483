"""Settlement as a property, through the services, the ledger and localstripe.

Hypothesis draws a project (budget, premium, how many people it commits to, so
its token total), its buyers and their pledge sizes, and the verified quantity;
the project is valued, listed, funded, charged, run, evaluated and settled by
the real sweeps. Then, for that project, at Stripe and in the books:
charges == transfers + fees + refunds to the cent; the buyers' minted tokens
and refunds sum exactly to the settlement's; no buyer holds more tokens than
it paid for; every ledger account is at zero or above and the escrow is empty;
the registry holds exactly the minted tokens.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from marketplace.accounts.models import Role
from marketplace.funding.models import Pledge, PledgeState
from marketplace.ledger.models import LedgerAccount
from marketplace.payments.models import MoneyState, Payment, PaymentState, Refund, Transfer
from marketplace.projects import services as projects
from marketplace.projects.models import Project, ProjectState
from marketplace.registry.models import TokenBlock
from marketplace.settlement.models import Settlement
from tests.factories import ProjectFactory, UserFactory
from tests.integration.funding_support import (
    assert_books_agree_with_stripe,
    buyer,
    pledge_via_api,
    project_state,
    tick,
    visit,
)
from tests.integration.test_settlement import CLOSED, ENDED, NOW, STARTED, evaluate
from tests.support import settlement_oracle as oracle


@st.composite
def scenarios(draw):
    return {
        "budget_cents": draw(st.integers(100_000, 20_000_000)),
        "premium_rate": Decimal(draw(st.integers(0, 50))) / 100,
        "people": draw(st.integers(2, 60)),
        # Each buyer takes this share (in thousandths) of what remains; the last
        # one tops up to the threshold when the others fell short.
        "shares": draw(st.lists(st.integers(1, 1000), min_size=1, max_size=4)),
        "verified_share": draw(st.integers(0, 1000)),
    }


def fund(client, auth_headers, project: Project, shares: list[int]) -> None:
    remaining, pledged = project.tokens_total, 0
    for n, share in enumerate(shares):
        tokens = max(1, remaining * share // 1000)
        if n == len(shares) - 1 and pledged + tokens < project.threshold_tokens:
            tokens = project.threshold_tokens - pledged
        tokens = min(tokens, remaining)
        response = pledge_via_api(client, auth_headers(buyer()), project.id, tokens)
        assert response.status_code == 201, response.json
        remaining, pledged = remaining - tokens, pledged + tokens
        if remaining == 0:
            break


def stripe_amount(app, kind: str, ids: list[str]) -> int:
    api = getattr(app.extensions["stripe"].client.v1, kind)
    return sum(api.retrieve(i).amount for i in ids)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_every_cent_and_token_of_a_settlement_is_accounted_for(
    app, client, session, auth_headers, clock, scenario
):
    session.rollback()
    project = ProjectFactory(
        state=ProjectState.SUBMITTED,
        budget_cents=scenario["budget_cents"],
        premium_rate=scenario["premium_rate"],
        funding_deadline=date(2026, 12, 1),
        start_date=date(2026, 12, 10),
        end_date=date(2027, 12, 10),
    )
    target = scenario["people"]
    project.outcomes[0].target_quantity = target
    admin = UserFactory(role=Role.ADMIN)
    projects.value_project(session, admin, project, overrides=[], premium_rate=None, now=NOW)
    if not project.is_listable:  # too little value for a single token: nothing to settle
        event("not listable")
        session.rollback()
        return
    event("settled")
    projects.list_for_funding(session, admin, project, now=NOW, today=NOW.date())
    session.commit()
    fund(client, auth_headers, project, scenario["shares"])
    owner = auth_headers(project.created_by)
    link = client.post(
        "/api/v1/payouts/account", headers=owner, json={"return_url": "http://localhost/payouts"}
    ).json["onboarding_url"]
    visit(link)
    client.get("/api/v1/payouts/account", headers=owner)
    tick(app, CLOSED)
    tick(app, STARTED)
    tick(app, ENDED)
    verified = target * scenario["verified_share"] // 1000
    evaluate(client, auth_headers, project, admin, verified=verified)
    tick(app, ENDED.replace(day=11))

    assert project_state(session, project.id).state is ProjectState.SETTLED
    settlement = session.scalars(
        select(Settlement).where(Settlement.project_id == project.id)
    ).one()
    pledges = select(Pledge.id).where(Pledge.project_id == project.id)
    payments = session.scalars(
        select(Payment).where(
            Payment.pledge_id.in_(pledges), Payment.state == PaymentState.SUCCEEDED
        )
    ).all()
    refunds = session.scalars(select(Refund).where(Refund.pledge_id.in_(pledges))).all()
    transfers = session.scalars(select(Transfer).where(Transfer.project_id == project.id)).all()
    assert all(r.state is MoneyState.SUCCEEDED for r in [*refunds, *transfers])

    charged = stripe_amount(app, "payment_intents", [p.payment_intent_id for p in payments])
    refunded = stripe_amount(app, "refunds", [r.refund_id for r in refunds])
    transferred = stripe_amount(app, "transfers", [t.transfer_id for t in transfers])
    fees = settlement.cost_fee_cents + settlement.premium_fee_cents
    assert charged == settlement.raised_cents == transferred + fees + refunded
    assert refunded == settlement.refund_total_cents

    shares = settlement.shares
    assert sum(s.tokens_minted for s in shares) + settlement.tokens_buffer == (
        settlement.tokens_minted
    )
    assert sum(s.refund_cents for s in shares) == settlement.refund_total_cents
    assert all(0 <= s.tokens_minted <= s.tokens_paid for s in shares)
    held = dict(
        session.execute(
            select(
                TokenBlock.holder_id, func.sum(TokenBlock.last_serial - TokenBlock.first_serial + 1)
            )
            .where(TokenBlock.project_id == project.id)
            .group_by(TokenBlock.holder_id)
        ).all()
    )
    expected = {s.organisation_id: s.tokens_minted for s in shares if s.tokens_minted}
    if settlement.tokens_buffer:
        expected[None] = settlement.tokens_buffer  # the buffer pool's block has no holder
    assert held == expected

    assert session.scalar(select(func.min(LedgerAccount.balance_cents))) >= 0
    escrow = session.scalar(
        select(LedgerAccount.balance_cents).where(
            LedgerAccount.code == f"escrow:project:{project.id}"
        )
    )
    assert escrow == 0
    assert_books_agree_with_stripe(app, session, ENDED)

    # Every figure, per buyer, as an independent reading of product.md's rules gives it.
    paid = session.scalars(
        select(Pledge).where(Pledge.project_id == project.id, Pledge.state == PledgeState.PAID)
    ).all()
    holdings: dict[int, list[int]] = {}
    for pledge in sorted(paid, key=lambda p: p.id):
        holdings.setdefault(pledge.organisation_id, [0, pledge.id])[0] += pledge.tokens
    fresh = session.get(Project, project.id)
    expected = oracle.settle(
        [(org, n, first) for org, (n, first) in holdings.items()],
        fresh.token_price_cents,
        fresh.threshold_tokens,
        Fraction(app.extensions["settings"].platform_fee_rate),
        settlement.v_target_cents,
        settlement.v_verified_cents,
        Fraction(app.extensions["settings"].buffer_rate),
    )
    assert settlement.tokens_buffer == expected.buffer
    assert settlement.tokens_minted == expected.minted
    assert settlement.refund_total_cents == expected.refund_total
    assert settlement.cost_fee_cents == expected.cost_fee
    assert settlement.premium_fee_cents == expected.premium_fee
    assert {s.organisation_id: s.tokens_minted for s in shares} == expected.tokens
    assert {s.organisation_id: s.refund_cents for s in shares} == expected.refunds
