"""Issuing serial blocks, holdings, retirement, and the public registry.

Retirement takes the holder's issued blocks of a project in serial order and
retires exactly the quantity asked, splitting the last block it touches. Each
block moves by a conditional update (``WHERE status = 'issued' AND last_serial
= :seen``): if another retirement took it first, this one is refused and
changes nothing, so no serial is ever retired twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from marketplace.accounts.authorisation import require_role
from marketplace.accounts.models import Organisation, Role, User
from marketplace.core import idempotency as idempotent
from marketplace.core.idempotency import Idempotency
from marketplace.funding.services import InsufficientTokens
from marketplace.notifications import notices
from marketplace.projects.models import Project
from marketplace.registry.models import (
    SERIAL_PREFIX,
    BlockStatus,
    Claim,
    Purpose,
    Retirement,
    TokenBlock,
    TokenTransfer,
    TransferRange,
)
from outcomes.db import affected
from outcomes.errors import Conflict, Message, NotFound, ValidationFailed

PRIVATE_HOLDER = Message("private holder")  # a Message: the pages show it translated
BUFFER_POOL = Message("buffer pool")
SERIAL = re.compile(rf"^{SERIAL_PREFIX}-P(\d{{6}})-(\d{{4}})-(\d{{7}})(?:-(\d{{7}}))?$")


def issue_blocks(
    session: Session, project: Project, allocations: list[tuple[int | None, int]], *, now: datetime
) -> list[TokenBlock]:
    """Serials 1..n to the holders in the order given (pledge order): one block each;
    a holder None is the buffer pool."""
    vintage = project.end_date.year
    rows, next_serial = [], 1
    for holder_id, quantity in allocations:
        if quantity <= 0:
            continue
        rows.append(
            {
                "project_id": project.id,
                "vintage": vintage,
                "first_serial": next_serial,
                "last_serial": next_serial + quantity - 1,
                "holder_id": holder_id,
                "status": BlockStatus.ISSUED if holder_id else BlockStatus.BUFFER,
                "issued_at": now,
            }
        )
        next_serial += quantity
    if not rows:
        return []
    return list(
        session.scalars(
            insert(TokenBlock).returning(TokenBlock, sort_by_parameter_order=True), rows
        )
    )


def holdings(session: Session, user: User) -> list[TokenBlock]:
    require_role(user, Role.BUYER)
    return list(
        session.scalars(
            select(TokenBlock)
            .where(
                TokenBlock.holder_id == user.organisation_id,
                TokenBlock.status == BlockStatus.ISSUED,
            )
            .order_by(TokenBlock.project_id, TokenBlock.first_serial)
        )
    )


@dataclass(frozen=True)
class RetirementInput:
    project_id: int
    quantity: int
    beneficiary: str
    purpose: Purpose
    claim: Claim
    contract_reference: str = ""
    note: str = ""


def _check(data: RetirementInput) -> None:
    errors: dict[str, list[str]] = {}
    if data.quantity < 1:
        errors["quantity"] = ["At least one token."]
    if not data.beneficiary.strip():
        errors["beneficiary"] = ["Name who the claim is made for."]
    if data.purpose is Purpose.SROI_OBLIGATION and not data.contract_reference.strip():
        errors["contract_reference"] = [
            "A social-return obligation names the contract it is fulfilled under."
        ]
    if errors:
        raise ValidationFailed(errors=errors)


class Frozen(Conflict):
    code = "frozen"
    title = "These tokens are frozen while a dispute about their project is open"


def refuse_if_frozen(session: Session, project_id: int) -> None:
    """Raise Frozen while the project is disputed. The project row is read FOR SHARE:
    a dispute opens by updating that row, so it waits for the retirements already
    under way, and the ones that come after it see the flag."""
    disputed = session.scalar(
        select(Project.disputed).where(Project.id == project_id).with_for_update(read=True)
    )
    if disputed:
        raise Frozen(
            "The tokens of this project are frozen while a dispute about it is open; "
            "they can be retired again once it is resolved."
        )


def _move_serials(
    session: Session,
    blocks: Sequence[TokenBlock],
    quantity: int,
    *,
    to: BlockStatus,
    link: dict[str, int],
    refusal: Conflict,
) -> list[tuple[int, int, int]]:
    """Move up to ``quantity`` serials of ``blocks`` (in the order given) to status ``to``
    with ``link`` (the retirement or the concern), splitting the block where the quantity
    ends: the block keeps the serials moved, a new block of its old status the rest.
    Each block moves by a conditional update on the status and last serial seen; if
    another transaction moved it first, raise ``refusal`` (the caller's transaction is
    rolled back). Returns the (vintage, first, last) serials moved; expires the session's
    objects."""
    need, moved_ranges = quantity, []
    for block in blocks:
        if need == 0:
            break
        take = min(need, block.quantity)
        seen_last = block.last_serial
        moved = affected(
            session.execute(
                update(TokenBlock)
                .where(
                    TokenBlock.id == block.id,
                    TokenBlock.status == block.status,
                    TokenBlock.last_serial == seen_last,
                )
                .values(status=to, last_serial=block.first_serial + take - 1, **link)
                .execution_options(synchronize_session=False)
            )
        )
        if moved != 1:
            raise refusal
        if take < block.quantity:
            session.execute(
                insert(TokenBlock).values(
                    project_id=block.project_id,
                    vintage=block.vintage,
                    first_serial=block.first_serial + take,
                    last_serial=seen_last,
                    holder_id=block.holder_id,
                    status=block.status,
                    issued_at=block.issued_at,
                )
            )
        moved_ranges.append((block.vintage, block.first_serial, block.first_serial + take - 1))
        need -= take
    session.expire_all()
    return moved_ranges


def _held_blocks(
    session: Session, organisation_id: int, project_id: int, asked: int, refusal: str
) -> Sequence[TokenBlock]:
    """The organisation's unretired blocks of the project in serial order; raises
    InsufficientTokens when they hold fewer than ``asked``."""
    blocks = session.scalars(
        select(TokenBlock)
        .where(
            TokenBlock.holder_id == organisation_id,
            TokenBlock.project_id == project_id,
            TokenBlock.status == BlockStatus.ISSUED,
        )
        .order_by(TokenBlock.first_serial)
    ).all()
    held = sum(b.quantity for b in blocks)
    if asked > held:
        raise InsufficientTokens(refusal, params={"held": held, "asked": asked})
    return blocks


class RetiredConcurrently(Conflict):
    code = "retired_concurrently"
    title = "These tokens were retired by another request a moment ago; try again"


def retire(
    session: Session,
    user: User,
    data: RetirementInput,
    *,
    now: datetime,
    idempotency: Idempotency | None = None,
    respond: Callable[[Retirement], dict[str, Any]] | None = None,
    then: Callable[[Retirement], None] | None = None,
) -> Retirement:
    """Retire ``quantity`` of the organisation's tokens of a project, finally (flushes).
    ``then`` runs in the same transaction once the serials are retired, before the
    response is remembered (a social-return retirement's credit).

    Raises ValidationFailed, Frozen (409), InsufficientTokens (409), RetiredConcurrently
    (409), IdempotencyConflict (409) and Replayed (the key was used before with this
    request: the edge answers with its stored response).
    """
    require_role(user, Role.BUYER)
    idempotent.check(session, idempotency)
    _check(data)
    refuse_if_frozen(session, data.project_id)
    blocks = _held_blocks(
        session,
        user.organisation_id,
        data.project_id,
        data.quantity,
        "You hold %(held)s tokens of this project; you asked to retire %(asked)s.",
    )
    retirement = Retirement(
        project_id=data.project_id,
        organisation_id=user.organisation_id,
        user_id=user.id,
        quantity=data.quantity,
        beneficiary=data.beneficiary.strip(),
        purpose=data.purpose,
        claim=data.claim,
        contract_reference=data.contract_reference.strip(),
        note=data.note.strip(),
        retired_at=now,
    )
    session.add(retirement)
    session.flush()
    _move_serials(
        session,
        blocks,
        data.quantity,
        to=BlockStatus.RETIRED,
        link={"retirement_id": retirement.id},
        refusal=RetiredConcurrently("Some of these serials were retired a moment ago."),
    )
    session.expire_all()
    retirement = session.get_one(Retirement, retirement.id)
    if then is not None:
        then(retirement)
    notices.certificate_ready(
        session,
        retirement_id=retirement.id,
        organisation_id=retirement.organisation_id,
        quantity=retirement.quantity,
        beneficiary=retirement.beneficiary,
        now=now,
    )
    idempotent.remember(
        session,
        idempotency,
        status_code=201,
        response=respond(retirement) if respond else {"id": retirement.id},
        now=now,
    )
    session.flush()
    return retirement


def get_retirement(session: Session, retirement_id: int) -> Retirement:
    found = session.get(Retirement, retirement_id)
    if found is None:
        raise NotFound("No such retirement.")
    return found


def holder_name(organisation: Organisation | None) -> str:
    """How the public registry names a block's holder; None is the buffer pool."""
    if organisation is None:
        return BUFFER_POOL
    return organisation.name if organisation.registry_public else PRIVATE_HOLDER


@dataclass(frozen=True)
class RegistryFilters:
    serial: str | None = None
    project_id: int | None = None
    status: BlockStatus | None = None
    # Words of a project's title, a public holder's name or a retirement's beneficiary.
    text: str | None = None
    page: int = 1
    per_page: int = 50


@dataclass(frozen=True)
class ProjectTotal:
    project_id: int
    title: str
    issued: int
    retired: int
    buffer: int = 0  # in the buffer pool, or cancelled from it


def _like(text: str) -> str:
    """A LIKE pattern finding ``text`` anywhere, its own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def find_serial(text: str) -> tuple[int, int, int] | None:
    """(project id, first, last) of a serial or serial block written as the registry shows it."""
    match = SERIAL.match(text.strip().upper())
    if match is None:
        return None
    first = int(match.group(3))
    last = int(match.group(4)) if match.group(4) else first
    return int(match.group(1)), first, last


def _matching(filters: RegistryFilters) -> Select:
    """The blocks (with their holders) the filters find; raises ValidationFailed for a
    serial written wrongly."""
    query = select(TokenBlock, Organisation).outerjoin(
        Organisation, Organisation.id == TokenBlock.holder_id
    )
    if filters.serial:
        found = find_serial(filters.serial)
        if found is None:
            raise ValidationFailed(
                errors={
                    "serial": [
                        Message(
                            "Write a serial as %(example)s (or a block, with its last serial).",
                            example=f"{SERIAL_PREFIX}-P000042-2027-0000001",
                        )
                    ]
                }
            )
        project_id, first, last = found
        query = query.where(
            TokenBlock.project_id == project_id,
            TokenBlock.first_serial <= last,
            TokenBlock.last_serial >= first,
        )
    if filters.project_id:
        query = query.where(TokenBlock.project_id == filters.project_id)
    if filters.status:
        query = query.where(TokenBlock.status == filters.status)
    text = " ".join("".join(ch for ch in filters.text or "" if ch.isprintable()).split())
    if text:
        pattern = _like(text)
        query = (
            query.join(Project, Project.id == TokenBlock.project_id)
            .outerjoin(Retirement, Retirement.id == TokenBlock.retirement_id)
            .where(
                or_(
                    Project.title.ilike(pattern, escape="\\"),
                    # a private holder is never found by its name
                    and_(
                        Organisation.registry_public, Organisation.name.ilike(pattern, escape="\\")
                    ),
                    Retirement.beneficiary.ilike(pattern, escape="\\"),
                )
            )
        )
    return query


def registry_blocks(
    session: Session, filters: RegistryFilters
) -> tuple[list[tuple[TokenBlock, Organisation]], int]:
    query = _matching(filters)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(TokenBlock.project_id, TokenBlock.first_serial)
        .limit(filters.per_page)
        .offset((filters.page - 1) * filters.per_page)
    ).all()
    return [(block, holder) for block, holder in rows], total


def registry_totals(session: Session, filters: RegistryFilters) -> list[ProjectTotal]:
    """Per project, the tokens of the blocks found: held, retired, and the buffer pool's
    (in it or cancelled from it)."""
    found = _matching(filters).subquery()
    size = found.c.last_serial - found.c.first_serial + 1
    rows = session.execute(
        select(
            found.c.project_id,
            Project.title,
            func.sum(case((found.c.status == BlockStatus.ISSUED, size), else_=0)),
            func.sum(case((found.c.status == BlockStatus.RETIRED, size), else_=0)),
            func.sum(
                case(
                    (found.c.status.in_((BlockStatus.BUFFER, BlockStatus.CANCELLED)), size),
                    else_=0,
                )
            ),
        )
        .join(Project, Project.id == found.c.project_id)
        .group_by(found.c.project_id, Project.title)
        .order_by(found.c.project_id)
    ).all()
    return [
        ProjectTotal(project_id, title, int(issued or 0), int(retired or 0), int(pool or 0))
        for project_id, title, issued, retired, pool in rows
    ]


def all_blocks(session: Session):
    """Every block with its holder, in registry order, streamed (for the CSV export)."""
    return session.execute(
        select(TokenBlock, Organisation)
        .outerjoin(Organisation, Organisation.id == TokenBlock.holder_id)
        .order_by(TokenBlock.project_id, TokenBlock.first_serial)
        .execution_options(yield_per=1000)
    )


BUFFER_LOCK = 0x534F4D42  # "SOMB": the advisory lock of reversals from the buffer pool


class CancelledConcurrently(Conflict):
    code = "cancelled_concurrently"
    title = "The buffer pool changed a moment ago; try again"


def cancel_buffer(session: Session, project_id: int, quantity: int, *, concern_id: int) -> int:
    """Cancel up to ``quantity`` buffer serials for an upheld concern about ``project_id``:
    the project's own buffer first, then the pool's oldest, each block in serial order
    (split where the quantity ends). Returns how many were cancelled; fewer than asked
    when the pool holds fewer. Each block moves by a conditional update, as in ``retire``."""
    # One reversal at a time, platform-wide: a second one waiting on the first's row locks
    # would not see the blocks the first splits off (READ COMMITTED shows rows inserted
    # after a statement began to no one), and would report a shortfall the pool could
    # cover. SQLite runs one writing transaction at a time anyway.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(BUFFER_LOCK)))
    own_first = case((TokenBlock.project_id == project_id, 0), else_=1)
    blocks = session.scalars(
        select(TokenBlock)
        .where(TokenBlock.status == BlockStatus.BUFFER)
        .order_by(own_first, TokenBlock.project_id, TokenBlock.first_serial)
        .with_for_update()
    ).all()
    moved = _move_serials(
        session,
        blocks,
        quantity,
        to=BlockStatus.CANCELLED,
        link={"concern_id": concern_id},
        refusal=CancelledConcurrently("Another reversal took these buffer serials."),
    )
    return sum(last - first + 1 for _vintage, first, last in moved)


@dataclass(frozen=True)
class PoolRow:
    project_id: int
    title: str
    buffer: int
    cancelled: int


def buffer_pool(session: Session) -> list[PoolRow]:
    """Per project, its serials in the buffer pool and those cancelled from it."""
    size = TokenBlock.last_serial - TokenBlock.first_serial + 1
    rows = session.execute(
        select(
            TokenBlock.project_id,
            Project.title,
            func.sum(case((TokenBlock.status == BlockStatus.BUFFER, size), else_=0)),
            func.sum(case((TokenBlock.status == BlockStatus.CANCELLED, size), else_=0)),
        )
        .join(Project, Project.id == TokenBlock.project_id)
        .where(TokenBlock.status.in_((BlockStatus.BUFFER, BlockStatus.CANCELLED)))
        .group_by(TokenBlock.project_id, Project.title)
        .order_by(TokenBlock.project_id)
    ).all()
    return [PoolRow(p, t, int(b or 0), int(c or 0)) for p, t, b, c in rows]


def cancelled_blocks(session: Session) -> list[TokenBlock]:
    return list(
        session.scalars(
            select(TokenBlock)
            .where(TokenBlock.status == BlockStatus.CANCELLED)
            .order_by(TokenBlock.concern_id, TokenBlock.project_id, TokenBlock.first_serial)
        )
    )


class MovedConcurrently(Conflict):
    code = "transferred_concurrently"
    title = "These tokens were moved by another request a moment ago; try again"


@dataclass(frozen=True)
class TransferInput:
    project_id: int
    quantity: int
    to_organisation_id: int
    note: str = ""


def transfer(
    session: Session,
    user: User,
    data: TransferInput,
    *,
    now: datetime,
    idempotency: Idempotency | None = None,
    respond: Callable[[TokenTransfer], dict[str, Any]] | None = None,
) -> TokenTransfer:
    """Move ``quantity`` of the organisation's unretired tokens of a project to another,
    verified organisation: final, split like a retirement, public in the serials'
    history (flushes). Raises ValidationFailed, Frozen (409), InsufficientTokens (409),
    MovedConcurrently (409), IdempotencyConflict (409) and Replayed."""
    require_role(user, Role.BUYER)
    idempotent.check(session, idempotency)
    errors: dict[str, list[str]] = {}
    if data.quantity < 1:
        errors["quantity"] = ["At least one token."]
    receiver = session.get(Organisation, data.to_organisation_id)
    if receiver is None or receiver.verified_at is None:
        errors["to_organisation_id"] = ["Not a verified organisation of the marketplace."]
    elif receiver.id == user.organisation_id:
        errors["to_organisation_id"] = ["Transfer to another organisation."]
    if errors:
        raise ValidationFailed(errors=errors)
    refuse_if_frozen(session, data.project_id)
    blocks = _held_blocks(session, user.organisation_id, data.project_id, data.quantity, "transfer")
    made = TokenTransfer(
        project_id=data.project_id,
        from_organisation_id=user.organisation_id,
        to_organisation_id=data.to_organisation_id,
        user_id=user.id,
        quantity=data.quantity,
        note=data.note.strip(),
        transferred_at=now,
    )
    session.add(made)
    session.flush()
    moved = _move_serials(
        session,
        blocks,
        data.quantity,
        to=BlockStatus.ISSUED,
        link={"holder_id": data.to_organisation_id},
        refusal=MovedConcurrently("Some of these serials were moved a moment ago."),
    )
    session.execute(
        insert(TransferRange),
        [
            {
                "transfer_id": made.id,
                "project_id": data.project_id,
                "vintage": vintage,
                "first_serial": first,
                "last_serial": last,
            }
            for vintage, first, last in moved
        ],
    )
    session.refresh(made)  # with the ranges just written
    idempotent.remember(
        session,
        idempotency,
        status_code=201,
        response=respond(made) if respond else {"id": made.id},
        now=now,
    )
    session.flush()
    return made


def transfers_of_serial(session: Session, project_id: int, number: int) -> list[TokenTransfer]:
    """The transfers that moved one serial, oldest first: its holders over time."""
    return list(
        session.scalars(
            select(TokenTransfer)
            .join(TransferRange, TransferRange.transfer_id == TokenTransfer.id)
            .where(
                TransferRange.project_id == project_id,
                TransferRange.first_serial <= number,
                TransferRange.last_serial >= number,
            )
            .order_by(TokenTransfer.id)
        )
    )
