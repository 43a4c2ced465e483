"""The figures behind the dashboards and the buyer's impact report.

Everything is read from the books of record: payments and refunds (as the
ledger posted them), settlements and their shares, the registry's blocks and
retirements. A buyer's share of a project's verified outcomes and social value
is its share of the tokens minted (``share.tokens_minted / tokens_minted``),
the same split that gave it its tokens; quantities keep two decimals, money is
integer cents (rounded down, so shares never add up to more than the whole).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from marketplace.funding.models import Pledge, PledgeState
from marketplace.ledger.models import LedgerAccount
from marketplace.ledger.postings import SURPLUS
from marketplace.notifications.models import MailState, Notification
from marketplace.payments.models import (
    MoneyState,
    Payment,
    PaymentState,
    ReconciliationRun,
    Refund,
    Transfer,
)
from marketplace.projects.models import Project, ProjectState
from marketplace.receipts.models import Receipt
from marketplace.registry.models import BlockStatus, Retirement, TokenBlock
from marketplace.settlement.models import Settlement, SettlementShare
from outcomes.commitments import OutcomeCommitment
from outcomes.evaluation import Evaluation, EvaluationState
from outcomes.progress import is_late, last_report_at, next_due

CENT = Decimal("0.01")


def _cents(session: Session, query: Select[Any]) -> int:
    """A sum of cents (0 when there is nothing to add up)."""
    return int(session.scalar(query) or 0)


@dataclass(frozen=True)
class OutcomeLine:
    project_id: int
    code: str
    name: str
    unit: str
    source: str
    url: str
    verified: int
    share: Decimal  # the buyer's part of ``verified``
    # the outcome type's reporting tags (empty when it has none: never guessed)
    esrs_topic: str = ""
    esrs_disclosure: str = ""
    sdg_targets: str = ""


@dataclass(frozen=True)
class FundedProject:
    project_id: int
    reference: str
    title: str
    theme: str
    settled_at: datetime  # when the settlement was computed (tokens minted)
    paid_out: bool  # every refund and the premium transfer went through
    tokens_paid: int
    tokens_minted: int
    refund_cents: int
    value_cents: int  # the buyer's share of the verified social value
    outcomes: list[OutcomeLine]
    value_per_euro: Decimal | None = None  # the project's, as verified at settlement


@dataclass
class BuyerFigures:
    organisation_id: int
    start: date | None
    end: date | None
    pledges_by_state: dict[str, int] = field(default_factory=dict)
    paid_cents: int = 0
    refunded_cents: int = 0
    tokens_held: int = 0
    tokens_retired: int = 0
    projects: list[FundedProject] = field(default_factory=list)
    holdings: list[TokenBlock] = field(default_factory=list)
    retirements: list[Retirement] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)

    @property
    def value_cents(self) -> int:
        return sum(p.value_cents for p in self.projects)

    @property
    def tokens_minted(self) -> int:
        return sum(p.tokens_minted for p in self.projects)

    def value_by_theme(self) -> list[tuple[str, int]]:
        totals: dict[str, int] = defaultdict(int)
        for project in self.projects:
            totals[project.theme] += project.value_cents
        return sorted(totals.items(), key=lambda kv: -kv[1])

    def data_points(self) -> list[dict]:
        """Per outcome type: what the buyer's funding achieved, grouped by the type's ESRS
        topic and disclosure requirement, with its SDG targets (the value bank's tags)."""
        rows: dict[str, dict] = {}
        for project in self.projects:
            for line in project.outcomes:
                row = rows.setdefault(
                    line.code,
                    {
                        "esrs_topic": line.esrs_topic,
                        "esrs_disclosure": line.esrs_disclosure,
                        "sdg_targets": line.sdg_targets,
                        "outcome_type": line.code,
                        "name": line.name,
                        "unit": line.unit,
                        "quantity": Decimal(0),
                        "projects": 0,
                        "source": line.source,
                    },
                )
                row["quantity"] += line.share
                row["projects"] += 1
        # tagged first, by topic and requirement; untagged last
        return sorted(
            rows.values(),
            key=lambda r: (
                not r["esrs_topic"],
                r["esrs_topic"],
                r["esrs_disclosure"],
                r["outcome_type"],
            ),
        )


def _in_period(column, start: date | None, end: date | None, zone: ZoneInfo):
    """From 00:00 on ``start`` to the end of ``end``, in the platform's time zone."""
    conditions = []
    if start is not None:
        conditions.append(column >= datetime.combine(start, time(), zone))
    if end is not None:
        conditions.append(column < datetime.combine(end + timedelta(days=1), time(), zone))
    return conditions


def buyer_figures(
    session: Session,
    organisation_id: int,
    *,
    start: date | None = None,
    end: date | None = None,
    timezone: str = "Europe/Amsterdam",
) -> BuyerFigures:
    """A buyer organisation's figures; projects and retirements within the period
    (settlement computed: outcomes verified and tokens minted; retired) when one is
    given, money and holdings as they stand."""
    figures = BuyerFigures(organisation_id, start, end)
    zone = ZoneInfo(timezone)
    own = select(Pledge.id).where(Pledge.organisation_id == organisation_id)
    figures.pledges_by_state = {
        state.value: n
        for state, n in session.execute(
            select(Pledge.state, func.count())
            .where(Pledge.organisation_id == organisation_id)
            .group_by(Pledge.state)
        )
    }
    figures.paid_cents = _cents(
        session,
        select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
            Payment.pledge_id.in_(own), Payment.state == PaymentState.SUCCEEDED
        ),
    )
    figures.refunded_cents = _cents(
        session,
        select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(
            Refund.pledge_id.in_(own),
            Refund.state == MoneyState.SUCCEEDED,
            Refund.reason != SURPLUS,  # a surplus was never part of what was paid
        ),
    )
    size = TokenBlock.last_serial - TokenBlock.first_serial + 1
    for status, n in session.execute(
        select(TokenBlock.status, func.coalesce(func.sum(size), 0))
        .where(TokenBlock.holder_id == organisation_id)
        .group_by(TokenBlock.status)
    ):
        if status is BlockStatus.ISSUED:
            figures.tokens_held = n
        else:
            figures.tokens_retired = n
    figures.holdings = list(
        session.scalars(
            select(TokenBlock)
            .where(TokenBlock.holder_id == organisation_id)
            .order_by(TokenBlock.project_id, TokenBlock.first_serial)
        )
    )
    shares = session.execute(
        select(SettlementShare, Settlement, Project)
        .join(Settlement, Settlement.id == SettlementShare.settlement_id)
        .join(Project, Project.id == Settlement.project_id)
        .where(
            SettlementShare.organisation_id == organisation_id,
            *_in_period(Settlement.computed_at, start, end, zone),
        )
        .order_by(Settlement.computed_at, Project.id)
    ).all()
    for share, settlement, project in shares:
        figures.projects.append(_funded(session, share, settlement, project))
    figures.retirements = list(
        session.scalars(
            select(Retirement)
            .where(
                Retirement.organisation_id == organisation_id,
                *_in_period(Retirement.retired_at, start, end, zone),
            )
            .order_by(Retirement.id)
        )
    )
    figures.receipts = list(
        session.scalars(
            select(Receipt)
            .where(
                Receipt.organisation_id == organisation_id,
                *_in_period(Receipt.issued_at, start, end, zone),
            )
            .order_by(Receipt.year, Receipt.sequence)
        )
    )
    return figures


def _funded(
    session: Session, share: SettlementShare, settlement: Settlement, project: Project
) -> FundedProject:
    fraction = (
        Decimal(share.tokens_minted) / settlement.tokens_minted
        if settlement.tokens_minted
        else Decimal(0)
    )
    lines = []
    for commitment in session.scalars(
        select(OutcomeCommitment)
        .where(OutcomeCommitment.project_id == project.id)
        .order_by(OutcomeCommitment.position)
    ):
        verified = commitment.verified_quantity or 0
        kind = commitment.outcome_type
        lines.append(
            OutcomeLine(
                project_id=project.id,
                code=kind.code,
                name=kind.name,
                unit=kind.unit,
                source=kind.source,
                url=kind.url,
                verified=verified,
                share=(verified * fraction).quantize(CENT, rounding=ROUND_DOWN),
                esrs_topic=kind.esrs_topic,
                esrs_disclosure=kind.esrs_disclosure,
                sdg_targets=kind.sdg_targets,
            )
        )
    value = (
        settlement.v_verified_cents * share.tokens_minted // settlement.tokens_minted
        if settlement.tokens_minted
        else 0
    )
    return FundedProject(
        project_id=project.id,
        reference=project.reference,
        title=project.title,
        theme=project.theme.value,
        settled_at=settlement.computed_at,
        paid_out=settlement.finished_at is not None,
        tokens_paid=share.tokens_paid,
        tokens_minted=share.tokens_minted,
        refund_cents=share.refund_cents,
        value_cents=value,
        outcomes=lines,
        value_per_euro=project.value_per_euro,
    )


# ---------------------------------------------------------------- entrepreneur


@dataclass(frozen=True)
class OwnProject:
    project: Project
    received_cents: int
    expected_cents: int  # still to come if every outcome is verified
    next_report_due: date | None
    report_overdue: bool
    evaluation: str  # not assigned | assigned | submitted | returned | approved | —


def entrepreneur_projects(session: Session, organisation_id: int, today: date) -> list[OwnProject]:
    rows = []
    for project in session.scalars(
        select(Project).where(Project.organisation_id == organisation_id).order_by(Project.id)
    ):
        received = _cents(
            session,
            select(func.coalesce(func.sum(Transfer.amount_cents), 0)).where(
                Transfer.project_id == project.id, Transfer.state == MoneyState.SUCCEEDED
            ),
        )
        expected = 0
        if project.state in (ProjectState.FUNDED, ProjectState.RUNNING, ProjectState.EVALUATING):
            paid = project.tokens_paid * (project.token_price_cents or 0)
            expected = max(0, paid - received)
        due = overdue = None
        if project.state is ProjectState.RUNNING:
            last = last_report_at(session, project.id)
            due = next_due(project.start_date, last)
            overdue = is_late(project.start_date, last, today)
        evaluation = session.scalar(
            select(Evaluation.state).where(Evaluation.project_id == project.id)
        )
        label = (
            evaluation.value
            if evaluation
            else ("not assigned" if project.state is ProjectState.EVALUATING else "—")
        )
        rows.append(OwnProject(project, received, expected, due, bool(overdue), label))
    return rows


# ---------------------------------------------------------------- admin


@dataclass(frozen=True)
class MoneyMoving:
    """Refunds and transfers waiting for Stripe, what went in the last minute, and the
    time left at that pace (the rate limit sets it: 25 a second in a sandbox)."""

    refunds_due: int
    transfers_due: int
    last_minute: int

    @property
    def minutes_left(self) -> int | None:
        due = self.refunds_due + self.transfers_due
        if not due or not self.last_minute:
            return None
        return -(-due // self.last_minute)


def money_moving(session: Session, now: datetime) -> MoneyMoving:
    def count(model, *conditions) -> int:
        return session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0

    minute_ago = now - timedelta(minutes=1)
    return MoneyMoving(
        refunds_due=count(Refund, Refund.state == MoneyState.CREATED),
        transfers_due=count(Transfer, Transfer.state == MoneyState.CREATED),
        last_minute=count(
            Refund, Refund.state == MoneyState.SUCCEEDED, Refund.updated_at >= minute_ago
        )
        + count(
            Transfer, Transfer.state == MoneyState.SUCCEEDED, Transfer.updated_at >= minute_ago
        ),
    )


def admin_figures(session: Session, now: datetime | None = None) -> dict:
    by_state = dict(
        session.execute(select(Project.state, func.count()).group_by(Project.state)).all()
    )
    last_run = session.scalar(select(ReconciliationRun).order_by(ReconciliationRun.id.desc()))
    fees = session.scalar(
        select(LedgerAccount.balance_cents).where(LedgerAccount.code == "platform:fees")
    )
    return {
        "queues": {
            "to_value": by_state.get(ProjectState.SUBMITTED, 0),
            "to_assign": session.scalar(
                select(func.count())
                .select_from(Project)
                .where(
                    Project.state == ProjectState.EVALUATING,
                    ~select(Evaluation.id).where(Evaluation.project_id == Project.id).exists(),
                )
            ),
            "to_approve": session.scalar(
                select(func.count())
                .select_from(Evaluation)
                .where(Evaluation.state == EvaluationState.SUBMITTED)
            ),
            "payment_failures": session.scalar(
                select(func.count())
                .select_from(Pledge)
                .where(Pledge.state == PledgeState.PAYMENT_FAILED)
            ),
            "reconciliation_differences": len(last_run.differences) if last_run else 0,
            "mail_failures": session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.mail_state == MailState.FAILED)
            ),
        },
        "projects_by_state": {state.value: n for state, n in by_state.items()},
        "raised_cents": session.scalar(
            select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
                Payment.state == PaymentState.SUCCEEDED
            )
        ),
        "refunded_cents": session.scalar(
            select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(
                Refund.state == MoneyState.SUCCEEDED, Refund.reason != SURPLUS
            )
        ),
        "fees_cents": fees or 0,
        "tokens_minted": session.scalar(
            select(func.coalesce(func.sum(Settlement.tokens_minted), 0))
        ),
        "tokens_retired": session.scalar(select(func.coalesce(func.sum(Retirement.quantity), 0))),
        "last_reconciliation": last_run,
        "moving": money_moving(session, now) if now is not None else None,
    }
