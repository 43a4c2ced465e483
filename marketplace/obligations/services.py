"""Social-return obligations and their credits (product.md "Social-return obligations").

- A buyer registers an obligation toward a contracting authority; the authority
  accepts or rejects it. Only the two organisations see it (anyone else: not found).
- A retirement with purpose ``sroi_obligation`` names an accepted obligation of the
  retiring organisation and, in the same transaction, earns a credit of
  ``tokens * price * factor`` (``retire``). A retirement is of serials retired once,
  and a credit belongs to one retirement, so a serial counts toward one obligation.
- The authority signs off each credit or rejects it with a reason.
Every move goes through its lifecycle (history row, audit log) and tells the other side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.accounts.authorisation import require_role
from marketplace.accounts.models import Organisation, Role, User
from marketplace.audit import services as audit
from marketplace.core.idempotency import Idempotency
from marketplace.core.money import half_even
from marketplace.notifications import notices
from marketplace.obligations.models import (
    CREDIT_LIFECYCLE,
    MAX_REASON,
    OBLIGATION_LIFECYCLE,
    Credit,
    CreditState,
    Obligation,
    ObligationState,
    ObligationStateChange,
)
from marketplace.projects.models import Project
from marketplace.registry import services as registry
from marketplace.registry.models import Purpose, Retirement
from outcomes.errors import Conflict, Message, NotFound, ValidationFailed

MAX_CONTRACT_VALUE_CENTS = 10**13  # 100 billion euros: beyond any public contract
LONGEST_CONTRACT_YEARS = 30
MIN_REASON = 10
FACTOR_RANGE = (Decimal("0.01"), Decimal("10"))
EXPORT_LIMIT = 100_000


def obligation_cents(contract_value_cents: int, percentage: Decimal) -> int:
    """The social return a contract obliges: ``round_half_even(value * percentage)``."""
    return half_even(Decimal(contract_value_cents) * percentage)


def credit_cents(tokens: int, price_cents: int, factor: Decimal) -> int:
    """What a retirement is credited: ``round_half_even(tokens * price * factor)``."""
    return half_even(Decimal(tokens) * Decimal(price_cents) * factor)


@dataclass(frozen=True)
class NewObligation:
    authority_organisation_id: int
    contract_reference: str
    contract_title: str
    contract_value_cents: int
    percentage: Decimal
    due_date: date


@dataclass(frozen=True)
class Figures:
    """An obligation with what has been credited toward it."""

    obligation: Obligation
    buyer_name: str
    authority_name: str
    credited_cents: int  # pending and signed off: rejected credits do not count
    signed_off_cents: int
    pending_credits: int

    @property
    def remaining_cents(self) -> int:
        return max(self.obligation.obligation_cents - self.credited_cents, 0)

    def __getattr__(self, name: str) -> Any:
        # The obligation's own columns, for schemas and templates.
        return getattr(self.obligation, name)


def _text(value: str, field: str, *, least: int, most: int) -> str:
    clean = " ".join(value.split())
    if len(clean) < least:
        raise ValidationFailed(errors={field: [Message("At least %(n)s characters.", n=least)]})
    if len(clean) > most:
        raise ValidationFailed(errors={field: [Message("At most %(n)s characters.", n=most)]})
    return clean


def authorities(session: Session) -> list[Organisation]:
    """Every contracting authority, by name, with its published factor (public)."""
    return list(
        session.scalars(
            select(Organisation)
            .where(Organisation.sroi_factor.is_not(None))
            .order_by(Organisation.name, Organisation.id)
        )
    )


def _authority(session: Session, organisation_id: int) -> Organisation | None:
    found = session.get(Organisation, organisation_id)
    return found if found is not None and found.sroi_factor is not None else None


def _years_after(day: date, years: int) -> date:
    """The same day ``years`` later; 28 February for a 29 February that year lacks."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _check(data: NewObligation, today: date) -> dict[str, list[Any]]:
    errors: dict[str, list[Any]] = {}
    if not 1 <= data.contract_value_cents <= MAX_CONTRACT_VALUE_CENTS:
        errors["contract_value_cents"] = [
            Message("Between 1 cent and %(most)s.", most="EUR 100,000,000,000.00")
        ]
    if not (Decimal(0) < data.percentage <= Decimal(1)):
        errors["percentage"] = [Message("A share above 0% and at most 100%.")]
    elif data.percentage.as_tuple().exponent < -6:  # type: ignore[operator]
        errors["percentage"] = [Message("At most four decimals of a per cent.")]
    elif obligation_cents(data.contract_value_cents, data.percentage) < 1 and not errors:
        errors["percentage"] = [Message("This share of the contract is less than a cent.")]
    latest = _years_after(today, LONGEST_CONTRACT_YEARS)
    if not today <= data.due_date <= latest:
        errors["due_date"] = [
            Message("A date from today to %(years)s years ahead.", years=LONGEST_CONTRACT_YEARS)
        ]
    return errors


def register(session: Session, user: User, data: NewObligation, *, now: datetime) -> Obligation:
    """A buyer's obligation toward a contracting authority, pending its acceptance.

    Raises ValidationFailed (fields, an unknown authority) and Conflict
    ``obligation_exists`` (the same contract is registered and not rejected).
    """
    require_role(user, Role.BUYER)
    authority = _authority(session, data.authority_organisation_id)
    errors = _check(data, now.date())
    if authority is None or authority.id == user.organisation_id:
        errors["authority_organisation_id"] = [Message("Choose a contracting authority.")]
    reference = _text(data.contract_reference, "contract_reference", least=1, most=200)
    title = _text(data.contract_title, "contract_title", least=3, most=200)
    if errors or authority is None:
        raise ValidationFailed(errors=errors)
    obligation = Obligation(
        buyer_organisation_id=user.organisation_id,
        authority_organisation_id=authority.id,
        contract_reference=reference,
        contract_title=title,
        contract_value_cents=data.contract_value_cents,
        percentage=data.percentage,
        obligation_cents=obligation_cents(data.contract_value_cents, data.percentage),
        due_date=data.due_date,
        state=ObligationState.PENDING,
        created_by_id=user.id,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(obligation)
            session.flush()
    except IntegrityError:
        raise Conflict(
            "Your organisation has registered contract %(reference)s with this authority already.",
            code="obligation_exists",
            params={"reference": reference},
        ) from None
    OBLIGATION_LIFECYCLE.record(
        session, obligation.id, None, ObligationState.PENDING, user.id, now, "registered"
    )
    notices.obligation_registered(
        session,
        obligation_id=obligation.id,
        authority_id=authority.id,
        supplier=user.organisation.name,
        contract=title,
        obligation_cents=obligation.obligation_cents,
        now=now,
    )
    session.flush()
    return obligation


def _visible(user: User) -> Any:
    """The obligations a person may see: its organisation's as buyer or as authority."""
    if user.role is Role.BUYER:
        return Obligation.buyer_organisation_id == user.organisation_id
    if user.role is Role.AUTHORITY:
        return Obligation.authority_organisation_id == user.organisation_id
    return None


def get(session: Session, user: User, obligation_id: int) -> Obligation:
    """One obligation, for its buyer's and its authority's people; others: not found."""
    mine = _visible(user)
    found = (
        session.scalar(select(Obligation).where(Obligation.id == obligation_id, mine))
        if mine is not None
        else None
    )
    if found is None:
        raise NotFound("No such obligation.")
    return found


def history(session: Session, user: User, obligation_id: int) -> list[ObligationStateChange]:
    found = get(session, user, obligation_id)
    return list(
        session.scalars(
            select(ObligationStateChange)
            .where(ObligationStateChange.obligation_id == found.id)
            .order_by(ObligationStateChange.id)
        )
    )


def _counted() -> Any:
    return case((Credit.state != CreditState.REJECTED, Credit.credit_cents), else_=0)


def _figures_query(where: Any) -> Select[Any]:
    buyer = Organisation.__table__.alias("buyer")
    authority = Organisation.__table__.alias("authority")
    sums = (
        select(
            Credit.obligation_id,
            func.sum(_counted()).label("credited"),
            func.sum(
                case((Credit.state == CreditState.SIGNED_OFF, Credit.credit_cents), else_=0)
            ).label("signed_off"),
            func.sum(case((Credit.state == CreditState.PENDING, 1), else_=0)).label("pending"),
        )
        .group_by(Credit.obligation_id)
        .subquery()
    )
    return (
        select(
            Obligation,
            buyer.c.name,
            authority.c.name,
            func.coalesce(sums.c.credited, 0),
            func.coalesce(sums.c.signed_off, 0),
            func.coalesce(sums.c.pending, 0),
        )
        .join(buyer, buyer.c.id == Obligation.buyer_organisation_id)
        .join(authority, authority.c.id == Obligation.authority_organisation_id)
        .outerjoin(sums, sums.c.obligation_id == Obligation.id)
        .where(where)
    )


def _as_figures(row: Sequence[Any]) -> Figures:
    obligation, buyer, authority, credited, signed_off, pending = row
    return Figures(obligation, buyer, authority, int(credited), int(signed_off), int(pending))


def figures(session: Session, user: User, obligation_id: int) -> Figures:
    found = get(session, user, obligation_id)
    row = session.execute(_figures_query(Obligation.id == found.id)).one()
    return _as_figures(row)


def listing(
    session: Session,
    user: User,
    *,
    state: ObligationState | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[Figures], int]:
    """The person's organisation's obligations (as buyer or authority): pending first,
    then by due date."""
    require_role(user, Role.BUYER, Role.AUTHORITY)
    where = _visible(user)
    if state is not None:
        where = where & (Obligation.state == state)
    total = session.scalar(select(func.count(Obligation.id)).where(where)) or 0
    pending_first = case((Obligation.state == ObligationState.PENDING, 0), else_=1)
    rows = session.execute(
        _figures_query(where)
        .order_by(pending_first, Obligation.due_date, Obligation.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return [_as_figures(r) for r in rows], total


def _authority_of(session: Session, user: User, obligation_id: int) -> Obligation:
    require_role(user, Role.AUTHORITY)
    return get(session, user, obligation_id)


def accept(session: Session, user: User, obligation_id: int, *, now: datetime) -> Obligation:
    """The authority accepts a pending obligation: retirements may now count toward it."""
    found = _authority_of(session, user, obligation_id)
    OBLIGATION_LIFECYCLE.change(
        session, found, ObligationState.ACCEPTED, actor=user, now=now, reason="accepted"
    )
    notices.obligation_decided(
        session,
        obligation_id=found.id,
        buyer_id=found.buyer_organisation_id,
        authority=user.organisation.name,
        contract=found.contract_title,
        accepted=True,
        reason="",
        now=now,
    )
    session.flush()
    return found


def reject(
    session: Session, user: User, obligation_id: int, *, reason: str, now: datetime
) -> Obligation:
    """The authority rejects a pending obligation, saying why."""
    found = _authority_of(session, user, obligation_id)
    clean = _text(reason, "reason", least=MIN_REASON, most=MAX_REASON)
    OBLIGATION_LIFECYCLE.change(
        session, found, ObligationState.REJECTED, actor=user, now=now, reason=clean
    )
    found.reason = clean
    notices.obligation_decided(
        session,
        obligation_id=found.id,
        buyer_id=found.buyer_organisation_id,
        authority=user.organisation.name,
        contract=found.contract_title,
        accepted=False,
        reason=clean,
        now=now,
    )
    session.flush()
    return found


# --- retirements and their credits ---------------------------------------------------------


def _obligation_for(session: Session, user: User, obligation_id: int | None) -> Obligation:
    found = (
        session.scalar(
            select(Obligation).where(
                Obligation.id == obligation_id,
                Obligation.buyer_organisation_id == user.organisation_id,
                Obligation.state == ObligationState.ACCEPTED,
            )
        )
        if obligation_id is not None
        else None
    )
    if found is None:
        raise ValidationFailed(
            errors={
                "obligation_id": [
                    Message("Choose an obligation of your organisation its authority accepted.")
                ]
            }
        )
    return found


def retire(
    session: Session,
    user: User,
    data: registry.RetirementInput,
    *,
    obligation_id: int | None,
    now: datetime,
    idempotency: Idempotency | None = None,
    respond: Callable[[Retirement], dict[str, Any]] | None = None,
) -> Retirement:
    """Retire tokens (registry.retire); one for a social-return obligation names an
    accepted obligation of the organisation and earns a credit toward it in the same
    transaction. Raises what registry.retire raises, and ValidationFailed
    ``obligation_id`` (missing, not the organisation's, not accepted, or named by
    another purpose)."""
    require_role(user, Role.BUYER)
    if data.purpose is not Purpose.SROI_OBLIGATION:
        if obligation_id is not None:
            raise ValidationFailed(
                errors={
                    "obligation_id": [
                        Message("Only a retirement for a social-return obligation names one.")
                    ]
                }
            )
        return registry.retire(
            session, user, data, now=now, idempotency=idempotency, respond=respond
        )
    obligation = _obligation_for(session, user, obligation_id)
    return registry.retire(
        session,
        user,
        replace(data, contract_reference=obligation.contract_reference),
        now=now,
        idempotency=idempotency,
        respond=respond,
        then=lambda made: _credit(session, obligation, made, now),
    )


def _credit(
    session: Session, obligation: Obligation, retirement: Retirement, now: datetime
) -> None:
    price = session.scalar(
        select(Project.token_price_cents).where(Project.id == retirement.project_id)
    )
    authority = session.get_one(Organisation, obligation.authority_organisation_id)
    factor = authority.sroi_factor if authority.sroi_factor is not None else Decimal(1)
    made = Credit(
        obligation_id=obligation.id,
        retirement_id=retirement.id,
        tokens=retirement.quantity,
        price_cents=price or 0,
        factor=factor,
        credit_cents=credit_cents(retirement.quantity, price or 0, factor),
        state=CreditState.PENDING,
        created_at=now,
        updated_at=now,
    )
    session.add(made)
    session.flush()
    CREDIT_LIFECYCLE.record(
        session, made.id, None, CreditState.PENDING, retirement.user_id, now, "credited"
    )
    notices.credit_made(
        session,
        credit_id=made.id,
        obligation_id=obligation.id,
        authority_id=obligation.authority_organisation_id,
        supplier=session.get_one(Organisation, obligation.buyer_organisation_id).name,
        contract=obligation.contract_title,
        credit_cents=made.credit_cents,
        now=now,
    )


def credit_of(session: Session, retirement_id: int) -> Credit | None:
    return session.scalar(select(Credit).where(Credit.retirement_id == retirement_id))


def credits(session: Session, user: User, obligation_id: int) -> list[tuple[Credit, Retirement]]:
    """An obligation's credits with their retirements, oldest first."""
    found = get(session, user, obligation_id)
    rows = session.execute(
        select(Credit, Retirement)
        .join(Retirement, Retirement.id == Credit.retirement_id)
        .where(Credit.obligation_id == found.id)
        .order_by(Credit.id)
    )
    return [(credit, retirement) for credit, retirement in rows]


def _authority_credit(session: Session, user: User, credit_id: int) -> tuple[Credit, Obligation]:
    require_role(user, Role.AUTHORITY)
    row = session.execute(
        select(Credit, Obligation)
        .join(Obligation, Obligation.id == Credit.obligation_id)
        .where(
            Credit.id == credit_id,
            Obligation.authority_organisation_id == user.organisation_id,
        )
    ).one_or_none()
    if row is None:
        raise NotFound("No such credit.")
    return row[0], row[1]


def sign_off(session: Session, user: User, credit_id: int, *, now: datetime) -> Credit:
    """The authority signs off a credit: it counts toward the obligation as checked."""
    credit, obligation = _authority_credit(session, user, credit_id)
    CREDIT_LIFECYCLE.change(
        session, credit, CreditState.SIGNED_OFF, actor=user, now=now, reason="signed off"
    )
    _tell_decided(session, credit, obligation, user, signed_off=True, reason="", now=now)
    return credit


def reject_credit(
    session: Session, user: User, credit_id: int, *, reason: str, now: datetime
) -> Credit:
    """The authority rejects a credit, saying why: it no longer counts toward the
    obligation; the retirement stays final."""
    credit, obligation = _authority_credit(session, user, credit_id)
    clean = _text(reason, "reason", least=MIN_REASON, most=MAX_REASON)
    CREDIT_LIFECYCLE.change(
        session, credit, CreditState.REJECTED, actor=user, now=now, reason=clean
    )
    credit.reason = clean
    _tell_decided(session, credit, obligation, user, signed_off=False, reason=clean, now=now)
    return credit


def _tell_decided(
    session: Session,
    credit: Credit,
    obligation: Obligation,
    user: User,
    *,
    signed_off: bool,
    reason: str,
    now: datetime,
) -> None:
    notices.credit_decided(
        session,
        credit_id=credit.id,
        obligation_id=obligation.id,
        buyer_id=obligation.buyer_organisation_id,
        authority=user.organisation.name,
        contract=obligation.contract_title,
        credit_cents=credit.credit_cents,
        signed_off=signed_off,
        reason=reason,
        now=now,
    )
    session.flush()


def set_factor(session: Session, user: User, factor: Decimal, *, now: datetime) -> Organisation:
    """The authority publishes its conversion factor; credits made before keep theirs."""
    require_role(user, Role.AUTHORITY)
    low, high = FACTOR_RANGE
    if not low <= factor <= high or factor.as_tuple().exponent < -4:  # type: ignore[operator]
        raise ValidationFailed(
            errors={
                "factor": [
                    Message("From %(low)s to %(high)s, at most four decimals.", low=low, high=high)
                ]
            }
        )
    organisation = session.get_one(Organisation, user.organisation_id)
    before = organisation.sroi_factor
    organisation.sroi_factor = factor
    audit.record(
        session,
        "account",
        "social-return factor changed",
        f"organisation:{organisation.id}",
        now,
        before=str(before),
        after=str(factor),
    )
    session.flush()
    return organisation
