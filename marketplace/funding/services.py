"""Pledging: reserve tokens, cancel, pay on-session, close early; what each party sees.

Invariants:
- Tokens are reserved by one conditional update of the project row
  (``tokens_pledged + n <= tokens_total`` and the project still in funding), in
  the transaction that inserts the pledge, as its last statement before the
  commit; the CHECK on ``projects`` is the backstop. On PostgreSQL the update
  takes the row lock, on SQLite the transaction began IMMEDIATE: either way no
  interleaving oversells.
- No transaction is open while Stripe is called (a pledge saves the card first,
  then reserves); a refused reservation leaves a saved card and nothing else.
  Only Stripe calls commit: ``pay_pledge`` is a process function (it takes a
  session factory), ``create_pledge`` hands over to one only to save a new
  card; everything else here only flushes.
- What happens to a pledge's money at Stripe is decided in ``funding.charges``.
- Only a buyer pledges, and only its own organisation's pledges can be seen,
  cancelled or paid; other pledges are "not found".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from marketplace.accounts.authorisation import (
    Caller,
    OrganisationUnverified,
    require_acting_for,
    require_member_or_admin,
    require_role,
    require_verified_email,
)
from marketplace.accounts.models import Organisation, Role, User
from marketplace.audit import services as audit
from marketplace.core import autocommit
from marketplace.core import idempotency as idempotent
from marketplace.core.idempotency import Idempotency
from marketplace.funding import charges, matching, one_statement
from marketplace.funding import states as pledge_states
from marketplace.funding.models import LIVE_STATES, Pledge, PledgeState, PledgeStateChange
from marketplace.notifications import notices
from marketplace.payments import services as payments
from marketplace.payments.gateway import MandateAcceptance, StripeGateway
from marketplace.payments.models import BANK_TRANSFER, MethodType
from marketplace.projects.models import Project, ProjectState
from marketplace.projects.services import get_project, withdrawn_in_funding
from marketplace.projects.states import InvalidTransition, transition
from outcomes.db import affected
from outcomes.errors import Conflict, Message, NotFound, ValidationFailed

# A project, or a row of its state, funding_deadline, tokens_total and tokens_pledged
# (the pledge's first read selects only those columns).
Figures = Any


class InsufficientTokens(Conflict):
    code = "insufficient_tokens"
    title = "Not enough tokens remain"


# What a pledge names to pay by a SEPA debit from an IBAN typed on the form.
SEPA_DEBIT = MethodType.SEPA_DEBIT.value


class FundingClosed(Conflict):
    code = "funding_closed"
    title = "Funding is closed for this project"


@dataclass(frozen=True)
class NewPledge:
    """A pledge just made, as its creator sees it (the API's pledge fields)."""

    id: int
    project_id: int
    tokens: int
    amount_cents: int
    state: PledgeState
    payment_method: str
    card: str
    grace_until: datetime | None
    created_at: datetime
    payment_type: str = "card"
    bank_transfer: None = None  # the instructions come at close
    # The match a pool made beside this pledge: {pool_id, pledge_id, tokens}.
    matched: dict[str, int] | None = None


def buyers_of(session: Session, project_id: int) -> list[int]:
    """The organisations holding a live or paid pledge on the project."""
    return list(
        session.scalars(
            select(Pledge.organisation_id)
            .where(Pledge.project_id == project_id, Pledge.state.in_(LIVE_STATES))
            .distinct()
            .order_by(Pledge.organisation_id)
        )
    )


def funding_open(project: Figures, today: date) -> bool:
    """Funding is open through the deadline date (closing at 00:00 of the next day)."""
    return project.state is ProjectState.FUNDING and today <= project.funding_deadline


def remaining_tokens(project: Figures) -> int:
    return max(0, (project.tokens_total or 0) - project.tokens_pledged)


def _check_can_pledge(project: Figures, tokens: int, today: date) -> None:
    if not funding_open(project, today):
        if project.state is ProjectState.FUNDING and today > project.funding_deadline:
            raise FundingClosed("Funding for this project is closed: the deadline has passed.")
        raise FundingClosed(
            "Funding for this project is not open (the project is %(state)s).",
            params={"state": project.state.value},
        )
    left = remaining_tokens(project)
    if tokens > left:
        raise InsufficientTokens(
            "Only %(left)s tokens remain; you asked for %(tokens)s.",
            params={"left": left, "tokens": tokens},
        )


def create_pledge(
    session: Session,
    gateway: StripeGateway,
    user: User | Caller,
    project_id: int,
    *,
    tokens: int,
    payment_method: str,
    now: datetime,
    today: date,
    hand_over: Callable[[], sessionmaker[Session]],
    idempotency: Idempotency | None = None,
    respond: Callable[[NewPledge], dict[str, Any]] | None = None,
    limit_cents: int | None = None,
    sepa: payments.SepaAccount | None = None,
    mandate: MandateAcceptance | None = None,
    sepa_limit_cents: int | None = None,
    ahead: one_statement.Ahead | None = None,
) -> NewPledge:
    """Pledge ``tokens`` of a project with a saved card (flushes; the edge commits).

    ``payment_method`` is a Stripe PaymentMethod id (a card, or a SEPA account with
    ``mandate``: the buyer's acceptance), ``sepa_debit`` with ``sepa`` (an IBAN typed
    on the form, made a PaymentMethod and saved with its mandate), or ``bank_transfer``
    (the buyer transfers when funding closes; nothing is saved at Stripe). A SEPA debit
    above ``sepa_limit_cents`` (Stripe's limit per debit) is refused before Stripe.

    ``ahead``: the read ahead already made with the caller's (``one_statement.
    read_ahead_as_caller``, when ``one_statement.reads_ahead``), else made here.

    ``limit_cents`` is what an organisation not yet verified may pledge in total
    (UNVERIFIED_PLEDGE_LIMIT_CENTS); a verified one has none.

    A returning buyer's saved card needs no call to Stripe: the pledge is then
    one transaction of the request, as few round trips as it allows. A new card
    is saved first by a process (``payments.save_payment_method``): ``hand_over()``
    ends the request's transaction, which has only read, and gives the process
    its session factory; the pledge is then made in a new transaction.

    Raises NotFound, Forbidden, FundingClosed, InsufficientTokens,
    IdempotencyConflict, Replayed (the key was used before with this request:
    answer with its stored response), ValidationFailed (payment_method),
    PaymentRequired and Unavailable.
    """
    require_role(user, Role.BUYER)
    require_verified_email(user)
    if ahead is None and one_statement.reads_ahead(session, payment_method):
        # A returning buyer's saved method on PostgreSQL: all the reads below in one.
        ahead = one_statement.read_ahead(
            session,
            project_id=project_id,
            organisation_id=user.organisation_id,
            payment_method=payment_method,
            idempotency=idempotency,
        )
    if ahead is not None:
        idempotent.check_stored(idempotency, ahead.replayed)
        project = ahead.project
        if ahead.card is None or (limit_cents is not None and not ahead.verified):
            autocommit.together(session)  # a new card, or the organisation's lock
    else:
        autocommit.together(session)
        idempotent.check(session, idempotency)
        project = session.execute(
            one_statement.project_figures(project_id, user.organisation_id)
        ).first()
    if project is None:
        raise NotFound("No such project.")
    _check_can_pledge(project, tokens, today)
    unverified = (
        limit_cents is not None
        and not (ahead is not None and ahead.verified)
        and not _within_unverified_limit(
            session, user, tokens * project.token_price_cents, limit_cents or 0
        )
    )  # checked before Stripe: a refused pledge leaves nothing there
    amount_cents = tokens * project.token_price_cents
    if payment_method == BANK_TRANSFER:
        card = _bank_transfer(session, gateway, user, now, hand_over)
    elif payment_method == SEPA_DEBIT:
        if sepa is None:
            raise ValidationFailed(errors={"iban": ["Give the IBAN of the account to debit."]})
        _check_debit_limit(amount_cents, sepa_limit_cents)
        card = None
    elif ahead is not None:
        card = ahead.card
    else:
        card = payments.saved_method(session, user.organisation_id, payment_method)
    if card is not None and card.method_type is MethodType.SEPA_DEBIT:
        _check_debit_limit(amount_cents, sepa_limit_cents)
    if card is None and payments.saved_by_another(session, user.organisation_id, payment_method):
        # Another organisation's card: refused before Stripe is called, and said as for
        # an unknown one (its existence is not ours to learn).
        raise ValidationFailed(
            errors={"payment_method": ["Stripe does not know this payment method."]}
        )
    if card is None:
        organisation_name = session.scalar(
            select(Organisation.name).where(Organisation.id == user.organisation_id)
        )
        card = payments.save_payment_method(
            hand_over(),
            gateway,
            organisation_id=user.organisation_id,
            organisation_name=organisation_name or "",
            user_id=user.id,
            payment_method=payment_method,
            now=now,
            sepa=sepa if payment_method == SEPA_DEBIT else None,
            mandate=mandate,
        )
        if card.method_type is MethodType.SEPA_DEBIT:  # a debit is checked once known
            _check_debit_limit(amount_cents, sepa_limit_cents)
    if unverified:  # again, under the organisation's lock: twins add up
        _within_unverified_limit(
            session, user, tokens * project.token_price_cents, limit_cents or 0, lock=True
        )
    made = _reserve(
        session,
        user,
        project_id,
        project.token_price_cents,
        tokens,
        card,
        now=now,
        today=today,
        idempotency=idempotency,
        respond=respond,
        eligible=matching.Eligible(
            id=project_id,
            round_id=project.round_id,
            theme=project.theme.value,
            city=project.city,
            tokens_total=project.tokens_total,
            tokens_pledged=project.tokens_pledged,
            token_price_cents=project.token_price_cents,
        ),
        ahead=ahead,
        # The one statement commits itself: not while the organisation's row is locked.
        alone=one_statement.used(session) and not unverified,
    )
    if made is None:
        # Another buyer took the tokens (or funding closed) since the check; the
        # refusal rolls the pledge back. Say why with the figures as they are now.
        _check_can_pledge(
            session.get_one(Project, project_id, populate_existing=True), tokens, today
        )
        raise InsufficientTokens("The tokens were taken by another buyer.")
    return made


def _check_debit_limit(amount_cents: int, limit_cents: int | None) -> None:
    if limit_cents is not None and amount_cents > limit_cents:
        raise ValidationFailed(
            errors={
                "payment_method": [
                    Message(
                        "A direct debit takes at most %(limit_cents)s; pay this pledge by bank "
                        "transfer or card.",
                        limit_cents=limit_cents,
                    )
                ]
            }
        )


def _bank_transfer(
    session: Session,
    gateway: StripeGateway,
    user: User | Caller,
    now: datetime,
    hand_over: Callable[[], sessionmaker[Session]],
) -> payments.SavedCard:
    """The organisation's bank-transfer method; its Stripe customer is made first (the
    virtual IBAN at close belongs to it)."""
    if payments.customer_id_of(session, user.organisation_id) is None:
        name = session.scalar(
            select(Organisation.name).where(Organisation.id == user.organisation_id)
        )
        payments.customer_for(
            hand_over(), gateway, organisation_id=user.organisation_id, name=name or "", now=now
        )
    return payments.bank_transfer_method(
        session, organisation_id=user.organisation_id, user_id=user.id, now=now
    )


def _within_unverified_limit(
    session: Session,
    user: User | Caller,
    amount_cents: int,
    limit_cents: int,
    *,
    lock: bool = False,
) -> bool:
    """True for a verified organisation; for another, raises OrganisationUnverified when
    its live pledges and this one would pass the limit (False when they do not)."""
    query = select(Organisation.verified_at).where(Organisation.id == user.organisation_id)
    verified = session.execute(query.with_for_update() if lock else query).scalar_one()
    if verified is not None:
        return True
    pledged = int(
        session.scalar(
            select(func.coalesce(func.sum(Pledge.amount_cents), 0)).where(
                Pledge.organisation_id == user.organisation_id, Pledge.state.in_(LIVE_STATES)
            )
        )
        or 0
    )
    if pledged + amount_cents > limit_cents:
        raise OrganisationUnverified(
            "Until your organisation is verified it may pledge %(limit_cents)s in all; "
            "it has pledged %(pledged_cents)s and this pledge is %(amount_cents)s.",
            params={
                "limit_cents": limit_cents,
                "pledged_cents": pledged,
                "amount_cents": amount_cents,
            },
        )
    return False


def _reserve(
    session: Session,
    user: User | Caller,
    project_id: int,
    price_cents: int,
    tokens: int,
    card: payments.SavedCard,
    *,
    now: datetime,
    today: date,
    idempotency: Idempotency | None,
    respond: Callable[[NewPledge], dict[str, Any]] | None,
    eligible: matching.Eligible,
    ahead: one_statement.Ahead | None,
    alone: bool,
) -> NewPledge | None:
    """The hot path (None when the project row refuses the reservation): plain statements,
    no unit of work. With ``alone`` (PostgreSQL) one statement, its own transaction,
    after one read (``one_statement``); elsewhere, and when that statement is refused,
    the same rows one by one in the request's transaction. Everything that cannot
    conflict is written first; the project row is updated last (a pool's row after it)
    and the edge commits at once."""
    made = NewPledge(
        id=0,
        project_id=project_id,
        tokens=tokens,
        amount_cents=tokens * price_cents,
        state=PledgeState.COMMITTED,
        payment_method=card.payment_method_id,
        card=card.label,
        grace_until=None,
        created_at=now,
        payment_type=card.method_type.value,
    )
    values = {
        "project_id": project_id,
        "organisation_id": user.organisation_id,
        "user_id": user.id,
        "payment_setup_id": card.id,
        "tokens": tokens,
        "amount_cents": made.amount_cents,
        "state": PledgeState.COMMITTED,
        "created_at": now,
        "updated_at": now,
    }
    reason = f"pledged {tokens} tokens"
    if alone:
        if ahead is None:  # a bank transfer or a SEPA debit: its ids and pools still
            ahead = one_statement.read_ahead(
                session,
                project_id=project_id,
                organisation_id=user.organisation_id,
                payment_method=card.payment_method_id,
                idempotency=None,
            )
        planned = ahead.plan(eligible)
        finished, done = _in_one_statement(
            session,
            user,
            made,
            values,
            reason,
            eligible,
            planned,
            idempotency,
            respond,
            today=today,
        )
        if finished:
            return done
    pledge_id = session.execute(insert(Pledge).values(**values).returning(Pledge.id)).scalar_one()
    made = replace(made, id=pledge_id)
    first = pledge_states.LIFECYCLE.history_values(
        pledge_id, None, PledgeState.COMMITTED, user.id, now, reason
    )
    session.execute(insert(PledgeStateChange).values(**first))
    audit.transitions(session, [PledgeStateChange(**first)])
    found = matching.eligible_candidates(
        eligible,
        session.execute(matching.candidates_query(eligible.id, user.organisation_id)),
    )
    done = _match_and_reserve(session, made, eligible, found, today=today)
    if done is None:
        return None
    if idempotency is not None:
        idempotent.remember(
            session,
            idempotency,
            status_code=201,
            response=respond(done) if respond else {"id": done.id},
            now=now,
        )
    return done


def _in_one_statement(
    session: Session,
    user: User | Caller,
    made: NewPledge,
    values: dict[str, Any],
    reason: str,
    eligible: matching.Eligible,
    planned: one_statement.Plan,
    idempotency: Idempotency | None,
    respond: Callable[[NewPledge], dict[str, Any]] | None,
    *,
    today: date,
) -> tuple[bool, NewPledge | None]:
    """The pledge on PostgreSQL (``one_statement``): (True, the pledge, committed), or
    (False, None) when the project or a pool refused it and nothing is left of it."""
    now = made.created_at
    made = replace(made, id=planned.pledge_id)
    tokens_left = eligible.tokens_total - eligible.tokens_pledged - made.tokens
    match = next(
        (
            candidate.as_match(matched)
            for candidate in planned.found
            if (
                matched := candidate.match(
                    made.tokens, price_cents=eligible.token_price_cents, tokens_left=tokens_left
                )
            )
            > 0
        ),
        None,
    )
    hoped = made
    if match is not None:
        hoped = replace(
            made,
            matched={
                "pool_id": match.pool_id,
                "pledge_id": planned.match_id,
                "tokens": match.tokens,
            },
        )
    history = pledge_states.LIFECYCLE.history_values(
        made.id, None, PledgeState.COMMITTED, user.id, now, reason
    )
    changes = [PledgeStateChange(**history)]
    match_pledge = match_history = None
    if match is not None:
        match_pledge = matching.pledge_values(
            match,
            project_id=made.project_id,
            price_cents=eligible.token_price_cents,
            matched_pledge_id=made.id,
            now=now,
        ) | {"id": planned.match_id}
        match_history = matching.history_values(
            match, pledge_id=planned.match_id, matched_pledge_id=made.id, now=now
        )
        changes.append(PledgeStateChange(**match_history))
    try:
        one_statement.write(
            session,
            project_id=made.project_id,
            today=today,
            tokens=made.tokens,
            price_cents=eligible.token_price_cents,
            pledge=values | {"id": made.id},
            history=history,
            match=match,
            match_pledge=match_pledge,
            match_history=match_history,
            audit_rows=audit.transition_rows(session, changes),
            idempotency=idempotency,
            record=idempotent.record_values(
                idempotency,
                status_code=201,
                response=respond(hoped) if respond else {"id": made.id},
                now=now,
            )
            if idempotency is not None
            else None,
        )
    except one_statement.Refused:
        # The project refused (its tokens were taken, funding closed) or a match read
        # without a lock no longer held: nothing was written, and the general path makes
        # the pledge (or says why not) under the locks, in a transaction.
        autocommit.together(session)
        return False, None
    return True, hoped


def _match_and_reserve(
    session: Session,
    made: NewPledge,
    eligible: matching.Eligible,
    found: list[matching.Candidate],
    *,
    today: date,
) -> NewPledge | None:
    """Reserve the pledge's tokens with the match a pool makes (its figures read under the
    project's lock, then the pool's), or alone. None when the project refuses even the
    pledge alone."""
    match = None
    if found:
        figures = session.execute(
            select(Project.tokens_total, Project.tokens_pledged)
            .where(Project.id == made.project_id)
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE: pledges refer to it
        ).one()
        match = matching.find_match(
            session,
            replace(
                eligible, tokens_total=figures.tokens_total, tokens_pledged=figures.tokens_pledged
            ),
            found,
            tokens=made.tokens,
        )

    def reserve(count: int) -> bool:
        return (
            affected(session.execute(one_statement.reservation(made.project_id, today, count))) == 1
        )

    if match is not None and not reserve(made.tokens + match.tokens):
        match = None  # the project left funding meanwhile: the pledge alone, if it can
    if match is None and not reserve(made.tokens):
        return None
    if match is None:
        return made
    match_id = matching.make_match(
        session,
        match,
        project_id=made.project_id,
        price_cents=eligible.token_price_cents,
        matched_pledge_id=made.id,
        now=made.created_at,
    )
    return replace(
        made, matched={"pool_id": match.pool_id, "pledge_id": match_id, "tokens": match.tokens}
    )


def get_pledge(session: Session, user: User, pledge_id: int) -> Pledge:
    pledge = session.get(Pledge, pledge_id)
    if pledge is None or (
        user.role is not Role.ADMIN and pledge.organisation_id != user.organisation_id
    ):
        raise NotFound("No such pledge.")
    return pledge


def transfer_details(pledge: Pledge) -> dict[str, Any] | None:
    """Where and how much to transfer, while a bank transfer is awaited (None otherwise)."""
    payment = pledge.awaited_transfer
    if payment is None or not payment.instructions:
        return None
    shown = payment.instructions
    return {
        "iban": shown.get("iban", ""),
        "bic": shown.get("bic", ""),
        "account_holder_name": shown.get("account_holder_name", ""),
        "reference": shown.get("reference", ""),
        "amount_cents": payment.amount_cents,
        "received_cents": payment.received_cents,
        "remaining_cents": payment.amount_cents - payment.received_cents,
        "pay_before": pledge.grace_until,
    }


def cancel_pledge(
    session: Session, user: User, pledge_id: int, *, now: datetime, today: date
) -> Pledge:
    """The buyer withdraws a committed pledge while funding is open."""
    require_role(user, Role.BUYER)
    pledge = get_pledge(session, user, pledge_id)
    if pledge.state is not PledgeState.COMMITTED:
        raise InvalidTransition(
            "A %(state)s pledge cannot be cancelled.", params={"state": pledge.state.value}
        )
    if not funding_open(pledge.project, today):
        raise FundingClosed("Funding has closed; the pledge can no longer be cancelled.")
    # The project's row first, then (through a match) the pool's: the order every writer
    # locks them in.
    released = affected(
        session.execute(
            update(Project)
            .where(Project.id == pledge.project_id, Project.state == ProjectState.FUNDING)
            .values(tokens_pledged=Project.tokens_pledged - pledge.tokens)
            .execution_options(synchronize_session=False)
        )
    )
    if released != 1:  # funding closed between the check and now
        raise FundingClosed("Funding has closed; the pledge can no longer be cancelled.")
    pledge_states.change(
        session,
        pledge,
        PledgeState.CANCELLED,
        actor=user,
        now=now,
        reason=Message("cancelled by the buyer"),
    )
    matching.cancel_match(session, pledge, actor_id=user.id, now=now)
    session.flush()
    return pledge


def pay_pledge(
    sessions: sessionmaker[Session],
    gateway: StripeGateway,
    user: User,
    pledge_id: int,
    *,
    payment_method: str,
    now: datetime,
    grace_hours: int,
) -> charges.PaymentOutcome:
    """Pay a pledge whose off-session charge failed, within its grace period (process).

    An attempt in ``requires_action`` waits for the buyer to authenticate in the
    browser (Stripe.js) and is finished by the webhook. Raises NotFound,
    InvalidTransition (not payment_failed), FundingClosed (the grace period is
    over), Conflict ``payment_in_progress``, PaymentRequired and Unavailable.
    """
    require_role(user, Role.BUYER)
    return charges.pay_on_session(
        sessions,
        gateway,
        organisation_id=user.organisation_id,
        pledge_id=pledge_id,
        payment_method=payment_method,
        now=now,
        grace_hours=grace_hours,
    )


def notify_funding_closed(
    session: Session, project: Project, *, funded: bool, now: datetime
) -> None:
    """Tell the buyers and the owner that funding closed, funded or not (once each)."""
    notices.funding_closed(
        session,
        project,
        buyers_of(session, project.id),
        funded=funded,
        pledged=project.tokens_pledged,
        total=project.tokens_total or 0,
        threshold=project.threshold_tokens or 0,
        start=project.start_date,
        now=now,
    )


def release_pledges(session: Session, project: Project, *, now: datetime, reason: str) -> int:
    """Every committed pledge of the project released (nothing was charged); its
    reserved tokens return to zero. Returns how many were released (flushes)."""
    released = 0
    for pledge in session.scalars(
        select(Pledge).where(Pledge.project_id == project.id, Pledge.state == PledgeState.COMMITTED)
    ):
        pledge_states.change(
            session, pledge, PledgeState.RELEASED, actor=None, now=now, reason=reason
        )
        released += 1
    session.execute(
        update(Project)
        .where(Project.id == project.id)
        .values(tokens_pledged=0)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return released


@withdrawn_in_funding.connect
def _withdrawn_in_funding(project: Project, *, session: Session, now: datetime) -> None:
    """A project withdrawn while in funding: its pledges are released, its buyers told."""
    buyers = buyers_of(session, project.id)
    release_pledges(
        session, project, now=now, reason=Message("the project was withdrawn: nothing charged")
    )
    notices.project_withdrawn(session, project, buyers, now=now)


def close_funding_early(session: Session, user: User, project_id: int, *, now: datetime) -> Project:
    """The entrepreneur closes funding once the threshold is met; charging follows."""
    project = get_project(session, user, project_id)
    require_acting_for(
        user, project.organisation_id, "Only the project's own organisation can close its funding."
    )
    if project.state is not ProjectState.FUNDING:
        raise InvalidTransition(
            "A %(state)s project has no funding to close.", params={"state": project.state.value}
        )
    if project.tokens_pledged < (project.threshold_tokens or 0):
        raise Conflict(
            "The threshold of %(threshold)s tokens is not met (%(pledged)s pledged).",
            params={"threshold": project.threshold_tokens, "pledged": project.tokens_pledged},
            code="threshold_not_met",
        )
    transition(
        session,
        project,
        ProjectState.FUNDED,
        actor=user,
        now=now,
        reason=Message(
            "funding closed early by the entrepreneur at %(pledged)s of %(total)s tokens",
            pledged=project.tokens_pledged,
            total=project.tokens_total or 0,
        ),
    )
    notify_funding_closed(session, project, funded=True, now=now)
    return project


def list_pledges(
    session: Session, user: User, *, page: int, per_page: int, project_id: int | None = None
) -> tuple[list[Pledge], int]:
    """The organisation's own pledges, newest first (admins see every pledge)."""
    query = select(Pledge)
    if user.role is not Role.ADMIN:
        require_role(user, Role.BUYER)
        query = query.where(Pledge.organisation_id == user.organisation_id)
    if project_id is not None:
        query = query.where(Pledge.project_id == project_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(Pledge.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return list(items), total


def project_pledges(session: Session, user: User, project: Project) -> list[Pledge]:
    """Every pledge of a project, for its owner and admins (buyers are named)."""
    require_member_or_admin(
        user, project.organisation_id, "Only the project's organisation sees its pledges."
    )
    return list(
        session.scalars(select(Pledge).where(Pledge.project_id == project.id).order_by(Pledge.id))
    )


def pledge_history(session: Session, pledge: Pledge) -> list[PledgeStateChange]:
    return list(
        session.scalars(
            select(PledgeStateChange)
            .where(PledgeStateChange.pledge_id == pledge.id)
            .order_by(PledgeStateChange.id)
        )
    )
