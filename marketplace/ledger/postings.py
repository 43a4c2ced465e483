"""The chart of postings: every way money moves in the books, built in one place.

Each function returns one ``Posting`` (reference, kind, legs, memo) for
``ledger.services.post`` or ``post_many``. Nothing else builds legs. The
reference names the row the money belongs to, so posting it twice posts once.

How money moves (a leg debits one account and credits another by the same amount):
- charge: Stripe holds the buyer's money (clearing) and it is held for the
  project (escrow);
- refund: from the project's escrow back through the buyer to Stripe;
- surplus charge / surplus refund: a second successful charge of one pledge is
  owed to the buyer (never in escrow) and goes straight back;
- cost tranche and premium: from escrow to the entrepreneur (payable) less the
  platform's fee;
- payout: what the entrepreneur is owed leaves Stripe by transfer.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from marketplace.ledger.models import AccountKind, LedgerAccount
from marketplace.ledger.services import Leg, Posting, get_account

SURPLUS = "surplus"


def _clearing(session: Session) -> LedgerAccount:
    return get_account(session, AccountKind.STRIPE_CLEARING)


def _buyer(session: Session, organisation_id: int) -> LedgerAccount:
    return get_account(session, AccountKind.BUYER, organisation_id=organisation_id)


def _escrow(session: Session, project_id: int) -> LedgerAccount:
    return get_account(session, AccountKind.ESCROW, project_id=project_id)


def _payable(session: Session, organisation_id: int) -> LedgerAccount:
    return get_account(session, AccountKind.PAYABLE, organisation_id=organisation_id)


def charge(
    session: Session,
    *,
    payment_id: int,
    pledge_id: int,
    tokens: int,
    organisation_id: int,
    project_id: int,
    amount_cents: int,
) -> Posting:
    """A pledge's charge succeeded: the money is in the project's escrow."""
    buyer = _buyer(session, organisation_id)
    return Posting(
        reference=f"payment:{payment_id}",
        kind="charge",
        memo=f"pledge {pledge_id}: {tokens} tokens",
        legs=[
            Leg(debit=_clearing(session), credit=buyer, amount_cents=amount_cents),
            Leg(debit=buyer, credit=_escrow(session, project_id), amount_cents=amount_cents),
        ],
    )


def surplus_charge(
    session: Session, *, payment_id: int, pledge_id: int, organisation_id: int, amount_cents: int
) -> Posting:
    """A charge the pledge did not need: owed back to the buyer, never in escrow."""
    return Posting(
        reference=f"payment:{payment_id}",
        kind="surplus_charge",
        memo=f"pledge {pledge_id}: paid twice; refunded",
        legs=[
            Leg(
                debit=_clearing(session),
                credit=_buyer(session, organisation_id),
                amount_cents=amount_cents,
            )
        ],
    )


def balance_returned(
    session: Session, *, return_id: int, organisation_id: int, amount_cents: int
) -> Posting:
    """Money a buyer transferred that no payment took, received and returned to it from its
    Stripe cash balance: in and out of the buyer's account, never in escrow."""
    buyer, clearing = _buyer(session, organisation_id), _clearing(session)
    return Posting(
        reference=f"balance-return:{return_id}",
        kind="balance_returned",
        memo=f"transfer not needed by any payment: returned ({return_id})",
        legs=[
            Leg(debit=clearing, credit=buyer, amount_cents=amount_cents),
            Leg(debit=buyer, credit=clearing, amount_cents=amount_cents),
        ],
    )


def refund(
    session: Session,
    *,
    refund_id: int,
    pledge_id: int,
    reason: str,
    organisation_id: int,
    project_id: int,
    amount_cents: int,
) -> Posting:
    """A refund made at Stripe: from escrow (unfunded, settlement) or the buyer's surplus."""
    buyer = _buyer(session, organisation_id)
    back = Leg(debit=buyer, credit=_clearing(session), amount_cents=amount_cents)
    if reason == SURPLUS:
        return Posting(
            reference=f"refund:{refund_id}",
            kind="surplus_refund",
            memo=f"pledge {pledge_id}: {reason}",
            legs=[back],
        )
    return Posting(
        reference=f"refund:{refund_id}",
        kind="refund",
        memo=f"pledge {pledge_id}: {reason}",
        legs=[
            Leg(debit=_escrow(session, project_id), credit=buyer, amount_cents=amount_cents),
            back,
        ],
    )


def _to_entrepreneur(
    session: Session, *, project_id: int, organisation_id: int, paid_out: int, fee: int
) -> list[Leg]:
    escrow = _escrow(session, project_id)
    legs = []
    if paid_out:
        legs.append(
            Leg(debit=escrow, credit=_payable(session, organisation_id), amount_cents=paid_out)
        )
    if fee:
        legs.append(
            Leg(
                debit=escrow,
                credit=get_account(session, AccountKind.PLATFORM_FEES),
                amount_cents=fee,
            )
        )
    return legs


def _tranche(
    session: Session,
    kind: str,
    memo: str,
    *,
    project_id: int,
    organisation_id: int,
    paid_out_cents: int,
    fee_cents: int,
) -> Posting | None:
    legs = _to_entrepreneur(
        session,
        project_id=project_id,
        organisation_id=organisation_id,
        paid_out=paid_out_cents,
        fee=fee_cents,
    )
    if not legs:
        return None
    return Posting(reference=f"project:{project_id}:{kind}", kind=kind, memo=memo, legs=legs)


def cost_tranche(
    session: Session,
    *,
    project_id: int,
    project_reference: str,
    organisation_id: int,
    paid_out_cents: int,
    fee_cents: int,
) -> Posting | None:
    """At the start: the cost tranche leaves escrow for the entrepreneur, less the fee."""
    return _tranche(
        session,
        "cost_tranche",
        f"{project_reference}: cost tranche less the fee",
        project_id=project_id,
        organisation_id=organisation_id,
        paid_out_cents=paid_out_cents,
        fee_cents=fee_cents,
    )


def premium(
    session: Session,
    *,
    project_id: int,
    project_reference: str,
    organisation_id: int,
    paid_out_cents: int,
    fee_cents: int,
) -> Posting | None:
    """At settlement: the premium for verified outcomes, less the fee (None when both are 0)."""
    return _tranche(
        session,
        "premium",
        f"{project_reference}: premium for verified outcomes less the fee",
        project_id=project_id,
        organisation_id=organisation_id,
        paid_out_cents=paid_out_cents,
        fee_cents=fee_cents,
    )


def payout(
    session: Session,
    *,
    transfer_id: int,
    project_id: int,
    organisation_id: int,
    kind: str,
    amount_cents: int,
) -> Posting:
    """A transfer to the entrepreneur's connected account was made."""
    return Posting(
        reference=f"transfer:{transfer_id}",
        kind="transfer",
        memo=f"project {project_id}: {kind}",
        legs=[
            Leg(
                debit=_payable(session, organisation_id),
                credit=_clearing(session),
                amount_cents=amount_cents,
            )
        ],
    )
