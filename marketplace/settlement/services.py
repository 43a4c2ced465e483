"""Settling a project: value what was verified, split it, and book every movement.

``settle_project`` runs in one transaction: it inserts the settlement (the
claim), its shares, a refund row per payment that gives money back and the
premium transfer row, and posts the premium and its fee to the ledger. The
Stripe calls happen afterwards in the refund and transfer sweeps, each keyed by
its row, so a crash at any point is finished by the next run, exactly once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import exists, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from marketplace.accounts.models import Role, User
from marketplace.funding.models import Pledge, PledgeState
from marketplace.ledger import postings
from marketplace.ledger.services import book
from marketplace.notifications import notices
from marketplace.payments.models import MoneyState, Payment, PaymentState, Refund, Transfer
from marketplace.projects import value_for_money
from marketplace.projects.models import Project, ProjectState, ValuationSnapshot
from marketplace.projects.states import transition
from marketplace.registry.services import issue_blocks
from marketplace.settlement import compute
from marketplace.settlement.models import Settlement, SettlementShare
from outcomes.errors import Message, NotFound
from outcomes.evaluation import Evaluation, EvaluationState
from valuation import EvidenceGrade, LineInput, MethodParameters, value, weaker_grade
from valuation.engine import OutcomeProxy


def snapshot_values(
    snapshot: ValuationSnapshot,
    verified: dict[int, int],
    met: dict[int, EvidenceGrade] | None = None,
) -> tuple[int, int]:
    """(V_target, V_verified): the snapshot's conservative value on the target and on
    the verified quantities, each line's verified quantity capped at its target and
    valued at the weaker of its planned grade and the grade its evidence met."""
    params = MethodParameters.from_dict(snapshot.inputs["parameters"])
    met = met or {}
    lines, achieved_lines = [], []
    for line in snapshot.inputs["lines"]:
        changes: dict[str, Any] = {
            name: (int(v) if name == "duration_years" else Decimal(v))
            for name, v in line["overrides"].items()
        }
        planned = LineInput(
            proxy=OutcomeProxy.from_dict(line["proxy"]),
            quantity=line["quantity"],
            grade=EvidenceGrade(line["evidence_grade"]),
            **changes,
        )
        lines.append(planned)
        commitment = line["commitment_id"]
        achieved_lines.append(
            replace(
                planned,
                quantity=min(verified.get(commitment, 0), line["quantity"]),
                grade=weaker_grade(planned.grade, met.get(commitment, planned.grade)),
            )
        )
    target = value(lines, params).total_conservative_value_cents
    achieved = value(achieved_lines, params).total_conservative_value_cents
    return target, achieved


def verified_values(snapshot: ValuationSnapshot, evaluation: Evaluation) -> tuple[int, int]:
    """(V_target, V_verified) of an evaluation's results against the snapshot."""
    return snapshot_values(
        snapshot,
        {r.commitment_id: r.verified_quantity for r in evaluation.results},
        {r.commitment_id: r.met_grade for r in evaluation.results},
    )


def _holdings(
    session: Session, project_id: int
) -> tuple[list[compute.Holding], dict[int, list[Pledge]]]:
    paid = session.scalars(
        select(Pledge)
        .options(lazyload("*"))
        .where(Pledge.project_id == project_id, Pledge.state == PledgeState.PAID)
        .order_by(Pledge.id)
    ).all()
    tokens: dict[int, int] = defaultdict(int)
    first: dict[int, int] = {}
    for pledge in paid:
        tokens[pledge.organisation_id] += pledge.tokens
        first.setdefault(pledge.organisation_id, pledge.id)
    holdings = [compute.Holding(org, tokens[org], first[org]) for org in first]
    return holdings, {org: [p for p in paid if p.organisation_id == org] for org in first}


def settle_project(
    session: Session,
    project: Project,
    evaluation: Evaluation,
    *,
    fee_rate: Decimal,
    buffer_rate: Decimal,
    now: datetime,
) -> Settlement | None:
    """Compute and record the settlement; None when another process claimed it first."""
    if project.valuation is None or project.token_price_cents is None:
        raise ValueError(f"project {project.id} has no valuation to settle against")
    v_target, v_verified = verified_values(project.valuation, evaluation)
    holdings, pledges_of = _holdings(session, project.id)
    result = compute.settle(
        holdings=holdings,
        token_price_cents=project.token_price_cents,
        threshold_tokens=project.threshold_tokens or 0,
        fee_rate=fee_rate,
        v_target_cents=v_target,
        v_verified_cents=v_verified,
        buffer_rate=buffer_rate,
    )
    value_for_money.verified(
        project,
        v_verified_cents=v_verified,
        raised_cents=result.raised_cents,
        refunded_cents=result.refund_total_cents,
    )
    settlement = Settlement(
        project_id=project.id,
        evaluation_id=evaluation.id,
        tokens_paid=result.tokens_paid,
        raised_cents=result.raised_cents,
        cost_tranche_cents=result.cost_tranche_cents,
        cost_fee_cents=result.cost_fee_cents,
        v_target_cents=v_target,
        v_verified_cents=v_verified,
        tokens_minted=result.tokens_minted,
        tokens_buffer=result.tokens_buffer,
        premium_payout_cents=result.premium_payout_cents,
        premium_fee_cents=result.premium_fee_cents,
        refund_total_cents=result.refund_total_cents,
        computed_at=now,
    )
    try:
        with session.begin_nested():
            session.add(settlement)
            session.flush()
    except IntegrityError:
        return None
    charged = {
        payment.pledge_id: payment
        for payment in session.scalars(
            select(Payment)
            .join(Pledge, Pledge.id == Payment.pledge_id)
            .where(Pledge.project_id == project.id, Payment.state == PaymentState.SUCCEEDED)
        )
    }
    session.execute(
        insert(SettlementShare),
        [
            {
                "settlement_id": settlement.id,
                "organisation_id": share.buyer,
                "first_pledge_id": pledges_of[share.buyer][0].id,
                "tokens_paid": share.tokens_paid,
                "tokens_minted": share.tokens_minted,
                "refund_cents": share.refund_cents,
            }
            for share in result.buyers
        ],
    )
    refunds = [
        row
        for share in result.buyers
        for row in _refund_rows(pledges_of[share.buyer], charged, share.refund_cents, now)
    ]
    if refunds:
        session.execute(insert(Refund), refunds)
    session.expire(settlement, ["shares"])
    issue_blocks(
        session,
        project,
        [(share.buyer, share.tokens_minted) for share in result.buyers]
        + [(None, result.tokens_buffer)],
        now=now,
    )
    if result.premium_paid_out_cents:
        session.add(
            Transfer(
                project_id=project.id,
                organisation_id=project.organisation_id,
                kind="premium",
                amount_cents=result.premium_paid_out_cents,
                fee_cents=result.premium_fee_cents,
                state=MoneyState.CREATED,
                created_at=now,
                updated_at=now,
            )
        )
    book(
        session,
        postings.premium(
            session,
            project_id=project.id,
            project_reference=project.reference,
            organisation_id=project.organisation_id,
            paid_out_cents=result.premium_paid_out_cents,
            fee_cents=result.premium_fee_cents,
        ),
        now=now,
    )
    session.flush()
    return settlement


def _refund_rows(
    pledges: list[Pledge], charged: dict[int, Payment], amount: int, now: datetime
) -> list[dict[str, Any]]:
    """Refund ``amount`` across a buyer's payments, earliest first, none above its charge."""
    rows = []
    for pledge in pledges:
        if amount == 0:
            break
        payment = charged[pledge.id]
        part = min(amount, payment.amount_cents)
        rows.append(
            {
                "payment_id": payment.id,
                "pledge_id": pledge.id,
                "reason": "settlement",
                "amount_cents": part,
                "state": MoneyState.CREATED,
                "created_at": now,
                "updated_at": now,
            }
        )
        amount -= part
    if amount:
        raise ValueError("a buyer's refund exceeds what it paid")
    return rows


def finish_if_paid(session: Session, settlement: Settlement, *, now: datetime) -> bool:
    """Settled once every refund and the premium transfer went through."""
    pending = session.scalar(
        select(
            exists().where(
                Refund.state != MoneyState.SUCCEEDED,
                Refund.reason == "settlement",
                Refund.pledge_id.in_(
                    select(Pledge.id).where(Pledge.project_id == settlement.project_id)
                ),
            )
            | exists().where(
                Transfer.project_id == settlement.project_id,
                Transfer.kind == "premium",
                Transfer.state != MoneyState.SUCCEEDED,
            )
        )
    )
    if pending:
        return False
    project = session.get_one(Project, settlement.project_id)
    transition(
        session,
        project,
        ProjectState.SETTLED,
        actor=None,
        now=now,
        reason=Message(
            "settled: %(minted)s tokens minted, premium %(premium_cents)s, "
            "refunds %(refunds_cents)s",
            minted=settlement.tokens_minted,
            premium_cents=settlement.premium_payout_cents,
            refunds_cents=settlement.refund_total_cents,
        ),
    )
    settlement.finished_at = now
    notices.project_settled(
        session,
        project,
        settlement.shares,
        minted=settlement.tokens_minted,
        premium_cents=settlement.premium_payout_cents,
        now=now,
    )
    session.flush()
    return True


def approved_unsettled(session: Session) -> list[tuple[Project, Evaluation]]:
    return list(
        session.execute(
            select(Project, Evaluation)
            .join(Evaluation, Evaluation.project_id == Project.id)
            .where(
                Project.state == ProjectState.EVALUATING,
                Evaluation.state == EvaluationState.APPROVED,
                ~exists().where(Settlement.project_id == Project.id),
            )
            .order_by(Project.id)
        ).all()
    )


def get_settlement(session: Session, user: User, project_id: int) -> Settlement:
    """For the owner, admins and the project's buyers; 404 for anyone else or none yet."""
    settlement = session.scalar(select(Settlement).where(Settlement.project_id == project_id))
    project = session.get(Project, project_id)
    if settlement is None or project is None:
        raise NotFound("No settlement for this project.")
    allowed = (
        user.role is Role.ADMIN
        or user.organisation_id == project.organisation_id
        or any(s.organisation_id == user.organisation_id for s in settlement.shares)
    )
    if not allowed:
        raise NotFound("No settlement for this project.")
    return settlement


def visible_shares(session: Session, settlement: Settlement, user: User) -> list[SettlementShare]:
    """The buyers' rows a person may see: all of them for the project's owner and admins,
    a buyer only its own (the others' names and figures are theirs, and a private
    holder is not named anywhere)."""
    owner = session.get_one(Project, settlement.project_id).organisation_id
    if user.role is Role.ADMIN or user.organisation_id == owner:
        return list(settlement.shares)
    return [s for s in settlement.shares if s.organisation_id == user.organisation_id]
