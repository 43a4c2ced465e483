"""The chart of postings, entry by entry: reference, kind, memo and each leg by account code.

Written against mutants `make mutation` found alive in ledger/postings.py: a
posting that moved the right total between the wrong accounts, or under another
reference, kept the books balanced and the older tests green.
"""

from __future__ import annotations

from marketplace.ledger import postings
from tests.factories import OrganisationFactory, ProjectFactory


def shown(posting):
    return (
        posting.reference,
        posting.kind,
        posting.memo,
        [(leg.debit.code, leg.credit.code, leg.amount_cents) for leg in posting.legs],
    )


def test_each_posting_moves_its_money_between_its_accounts(session):
    project = ProjectFactory()
    buyer = OrganisationFactory()
    p, b, o = project.id, buyer.id, project.organisation_id
    escrow, clearing = f"escrow:project:{p}", "stripe:clearing"
    buyers, payable = f"buyer:organisation:{b}", f"payable:organisation:{o}"

    assert shown(
        postings.charge(
            session,
            payment_id=7,
            pledge_id=3,
            tokens=12,
            organisation_id=b,
            project_id=p,
            amount_cents=1200,
        )
    ) == (
        "payment:7",
        "charge",
        "pledge 3: 12 tokens",
        [(clearing, buyers, 1200), (buyers, escrow, 1200)],
    )
    assert shown(
        postings.surplus_charge(
            session, payment_id=8, pledge_id=3, organisation_id=b, amount_cents=1200
        )
    ) == (
        "payment:8",
        "surplus_charge",
        "pledge 3: paid twice; refunded",
        [(clearing, buyers, 1200)],
    )
    assert shown(
        postings.refund(
            session,
            refund_id=5,
            pledge_id=3,
            reason="unfunded",
            organisation_id=b,
            project_id=p,
            amount_cents=900,
        )
    ) == (
        "refund:5",
        "refund",
        "pledge 3: unfunded",
        [(escrow, buyers, 900), (buyers, clearing, 900)],
    )
    assert shown(
        postings.refund(
            session,
            refund_id=6,
            pledge_id=3,
            reason=postings.SURPLUS,
            organisation_id=b,
            project_id=p,
            amount_cents=1200,
        )
    ) == ("refund:6", "surplus_refund", "pledge 3: surplus", [(buyers, clearing, 1200)])
    tranche = dict(project_id=p, project_reference="P-9", organisation_id=o)
    assert shown(postings.cost_tranche(session, **tranche, paid_out_cents=950, fee_cents=50)) == (
        f"project:{p}:cost_tranche",
        "cost_tranche",
        "P-9: cost tranche less the fee",
        [(escrow, payable, 950), (escrow, "platform:fees", 50)],
    )
    assert shown(postings.premium(session, **tranche, paid_out_cents=0, fee_cents=4)) == (
        f"project:{p}:premium",
        "premium",
        "P-9: premium for verified outcomes less the fee",
        [(escrow, "platform:fees", 4)],
    )
    assert shown(postings.premium(session, **tranche, paid_out_cents=3, fee_cents=0))[3] == [
        (escrow, payable, 3)
    ]
    assert postings.premium(session, **tranche, paid_out_cents=0, fee_cents=0) is None
    assert shown(
        postings.payout(
            session, transfer_id=4, project_id=p, organisation_id=o, kind="premium", amount_cents=3
        )
    ) == ("transfer:4", "transfer", f"project {p}: premium", [(payable, clearing, 3)])
