"""Posting to the ledger, reversing entries, and checking that it balances.

``post`` (and ``post_many``, for a batch) is the one way money moves in the
books. It takes the session and ``now`` from its caller and flushes; it either
writes the whole entry (legs and balance updates) or nothing. Raises:
- ReferenceConflict: the reference was posted before with other legs;
- InsufficientBalance: a never-negative account (escrow, payable, fees) would go
  below zero (the database's CHECK refuses it);
- ValidationFailed: malformed legs.
Posting the same reference with the same legs again returns the first entry,
so a retried job cannot move money twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.audit import services as audit
from marketplace.ledger.models import (
    DEBIT_NORMAL,
    NEVER_NEGATIVE,
    AccountKind,
    JournalEntry,
    JournalLeg,
    LedgerAccount,
)
from outcomes.errors import Conflict, ValidationFailed

SINGLETONS = {
    AccountKind.STRIPE_CLEARING: "stripe:clearing",
    AccountKind.PLATFORM_FEES: "platform:fees",
}


class LedgerError(Conflict):
    code = "ledger_refused"
    title = "The ledger refused this movement"


class InsufficientBalance(LedgerError):
    code = "insufficient_balance"


class ReferenceConflict(LedgerError):
    code = "ledger_reference_conflict"


@dataclass(frozen=True)
class Leg:
    """Move ``amount_cents`` from ``credit`` to ``debit``."""

    debit: LedgerAccount
    credit: LedgerAccount
    amount_cents: int


def account_code(
    kind: AccountKind, *, organisation_id: int | None = None, project_id: int | None = None
) -> str:
    if kind in SINGLETONS:
        return SINGLETONS[kind]
    if kind is AccountKind.ESCROW:
        if project_id is None:
            raise ValueError("an escrow account belongs to a project")
        return f"escrow:project:{project_id}"
    if organisation_id is None:
        raise ValueError(f"a {kind.value} account belongs to an organisation")
    return f"{kind.value}:organisation:{organisation_id}"


def get_account(
    session: Session,
    kind: AccountKind,
    *,
    organisation_id: int | None = None,
    project_id: int | None = None,
) -> LedgerAccount:
    """The account of that kind and owner, created on first use (safe under races).

    Accounts found are remembered for the session's life (they are never
    deleted, and their balance is expired after each posting); one created in a
    transaction that was rolled back is no longer persistent and is looked up again.
    """
    code = account_code(kind, organisation_id=organisation_id, project_id=project_id)
    known = session.info.setdefault("ledger_accounts", {})
    cached: LedgerAccount | None = known.get(code)
    if cached is not None and inspect(cached).persistent:
        return cached
    found = session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    if found is not None:
        known[code] = found
        return found
    try:
        with session.begin_nested():
            account = LedgerAccount(
                code=code,
                kind=kind,
                debit_normal=kind in DEBIT_NORMAL,
                may_go_negative=kind not in NEVER_NEGATIVE,
                organisation_id=organisation_id,
                project_id=project_id,
                balance_cents=0,
            )
            session.add(account)
            session.flush()
    except IntegrityError:  # another transaction created it first
        return session.scalars(select(LedgerAccount).where(LedgerAccount.code == code)).one()
    return account


def _shape(legs: Iterable[JournalLeg]) -> list[tuple[int, int, int]]:
    return sorted((leg.debit_account_id, leg.credit_account_id, leg.amount_cents) for leg in legs)


def _check_legs(legs: list[Leg]) -> None:
    errors: dict[str, list[str]] = {}
    if not legs:
        errors["legs"] = ["An entry moves money in at least one leg."]
    for i, leg in enumerate(legs):
        amount = leg.amount_cents
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            errors[f"legs.{i}.amount_cents"] = ["A positive whole number of cents."]
        if leg.debit.id == leg.credit.id:
            errors[f"legs.{i}"] = ["A leg moves money between two accounts."]
    if errors:
        raise ValidationFailed(errors=errors)


def _move_balances(
    session: Session, deltas: dict[int, int], accounts: dict[int, LedgerAccount]
) -> None:
    """Apply each account's change, locking in a fixed order so two postings cannot
    deadlock; a never-negative account going below zero is InsufficientBalance."""
    for account_id, delta in sorted(deltas.items()):
        if delta == 0:
            continue
        try:
            session.execute(
                update(LedgerAccount)
                .where(LedgerAccount.id == account_id)
                .values(balance_cents=LedgerAccount.balance_cents + delta)
                .execution_options(synchronize_session=False)
            )
        except IntegrityError:
            raise InsufficientBalance(
                "%(account)s cannot go below zero.", params={"account": accounts[account_id].code}
            ) from None


def _deltas(legs: list[Leg]) -> dict[int, int]:
    """How each account's balance (in its normal direction) changes."""
    deltas: dict[int, int] = defaultdict(int)
    for leg in legs:
        deltas[leg.debit.id] += leg.amount_cents if leg.debit.debit_normal else -leg.amount_cents
        deltas[leg.credit.id] += -leg.amount_cents if leg.credit.debit_normal else leg.amount_cents
    return deltas


def post(
    session: Session,
    *,
    reference: str,
    kind: str,
    legs: list[Leg],
    now: datetime,
    memo: str = "",
    reverses: JournalEntry | None = None,
) -> JournalEntry:
    """Post one balanced entry, or return the identical entry posted before."""
    _check_legs(legs)
    wanted = sorted((leg.debit.id, leg.credit.id, leg.amount_cents) for leg in legs)
    existing = session.scalar(select(JournalEntry).where(JournalEntry.reference == reference))
    if existing is not None:
        if _shape(existing.legs) != wanted:
            raise ReferenceConflict(
                "%(reference)s was posted before with other amounts.",
                params={"reference": reference},
            )
        return existing
    accounts = {leg.debit.id: leg.debit for leg in legs} | {
        leg.credit.id: leg.credit for leg in legs
    }
    try:
        with session.begin_nested():
            entry = JournalEntry(
                reference=reference,
                kind=kind,
                at=now,
                memo=memo,
                reverses_id=reverses.id if reverses else None,
            )
            session.add(entry)
            session.flush()
            _move_balances(session, _deltas(legs), accounts)
            session.add_all(
                JournalLeg(
                    entry_id=entry.id,
                    debit_account_id=leg.debit.id,
                    credit_account_id=leg.credit.id,
                    amount_cents=leg.amount_cents,
                )
                for leg in legs
            )
            session.flush()
            audit.money(session, [_movement(entry.id, reference, kind, legs)], at=now)
    except IntegrityError:
        # The reference (or the reversal) was posted by a concurrent transaction.
        session.expire_all()
        again = session.scalar(select(JournalEntry).where(JournalEntry.reference == reference))
        if again is not None and _shape(again.legs) == wanted:
            return again
        raise ReferenceConflict(
            "%(reference)s was posted concurrently.", params={"reference": reference}
        ) from None
    for account in accounts.values():
        session.expire(account, ["balance_cents"])
    session.expire(entry, ["legs"])
    return entry


def _movement(entry_id: int, reference: str, kind: str, legs: list[Leg]) -> audit.Movement:
    return audit.Movement(
        entry_id,
        reference,
        kind,
        [(leg.debit.code, leg.credit.code, leg.amount_cents) for leg in legs],
    )


@dataclass(frozen=True)
class Posting:
    """One entry for ``post_many``."""

    reference: str
    kind: str
    legs: list[Leg]
    memo: str = ""


def book(session: Session, posting: Posting | None, *, now: datetime) -> JournalEntry | None:
    """Post one entry of the chart of postings (``ledger.postings``); None posts nothing
    (a posting with no money to move, such as a premium of 0)."""
    if posting is None:
        return None
    return post(
        session,
        reference=posting.reference,
        kind=posting.kind,
        legs=posting.legs,
        memo=posting.memo,
        now=now,
    )


def post_many(session: Session, postings: list[Posting], *, now: datetime) -> int:
    """Post many entries in a handful of statements, with ``post``'s guarantees for each.

    References posted before with the same legs are skipped (with other legs:
    ReferenceConflict); the rest are written together or not at all, and each
    account's balance moves once by the sum of its deltas (in account order, so
    two batches cannot deadlock). Returns how many entries were written.
    """
    for posting in postings:
        _check_legs(posting.legs)
    references = [p.reference for p in postings]
    if len(set(references)) != len(references):
        raise ValidationFailed(errors={"reference": ["Each posting needs its own reference."]})
    existing = {
        entry.reference: entry
        for entry in session.scalars(
            select(JournalEntry).where(JournalEntry.reference.in_(references))
        )
    }
    fresh = []
    for posting in postings:
        wanted = sorted((leg.debit.id, leg.credit.id, leg.amount_cents) for leg in posting.legs)
        if posting.reference not in existing:
            fresh.append(posting)
        elif _shape(existing[posting.reference].legs) != wanted:
            raise ReferenceConflict(
                "%(reference)s was posted before with other amounts.",
                params={"reference": posting.reference},
            )
    if not fresh:
        return 0
    accounts = {
        account.id: account
        for posting in fresh
        for leg in posting.legs
        for account in (leg.debit, leg.credit)
    }
    deltas: dict[int, int] = defaultdict(int)
    for posting in fresh:
        for account_id, delta in _deltas(posting.legs).items():
            deltas[account_id] += delta
    try:
        with session.begin_nested():
            entry_ids = session.scalars(
                insert(JournalEntry).returning(JournalEntry.id, sort_by_parameter_order=True),
                [
                    {"reference": p.reference, "kind": p.kind, "at": now, "memo": p.memo}
                    for p in fresh
                ],
            ).all()
            _move_balances(session, deltas, accounts)
            session.execute(
                insert(JournalLeg),
                [
                    {
                        "entry_id": entry_id,
                        "debit_account_id": leg.debit.id,
                        "credit_account_id": leg.credit.id,
                        "amount_cents": leg.amount_cents,
                    }
                    for entry_id, posting in zip(entry_ids, fresh, strict=True)
                    for leg in posting.legs
                ],
            )
            audit.money(
                session,
                [
                    _movement(entry_id, p.reference, p.kind, p.legs)
                    for entry_id, p in zip(entry_ids, fresh, strict=True)
                ],
                at=now,
            )
    except IntegrityError:
        raise ReferenceConflict("A reference of the batch was posted concurrently.") from None
    for account in accounts.values():
        session.expire(account, ["balance_cents"])
    return len(fresh)


def reverse(session: Session, entry: JournalEntry, *, now: datetime, reason: str) -> JournalEntry:
    """Undo an entry with the opposite entry. Raises LedgerError when already reversed."""
    if entry.reverses_id is not None:
        raise LedgerError("A reversal is not reversed; post a new entry instead.")
    if session.scalar(select(JournalEntry.id).where(JournalEntry.reverses_id == entry.id)):
        raise LedgerError(
            "%(reference)s is already reversed.", params={"reference": entry.reference}
        )
    legs = [
        Leg(debit=leg.credit_account, credit=leg.debit_account, amount_cents=leg.amount_cents)
        for leg in entry.legs
    ]
    return post(
        session,
        reference=f"{entry.reference}:reversal",
        kind="reversal",
        legs=legs,
        now=now,
        memo=reason,
        reverses=entry,
    )


def verify(session: Session) -> list[str]:
    """Every difference between stored balances and the journal; empty when the books agree."""
    problems = []
    debits = dict(
        session.execute(
            select(JournalLeg.debit_account_id, func.sum(JournalLeg.amount_cents)).group_by(
                JournalLeg.debit_account_id
            )
        ).all()
    )
    credits = dict(
        session.execute(
            select(JournalLeg.credit_account_id, func.sum(JournalLeg.amount_cents)).group_by(
                JournalLeg.credit_account_id
            )
        ).all()
    )
    for account in session.scalars(select(LedgerAccount).order_by(LedgerAccount.id)):
        net = (debits.get(account.id, 0) or 0) - (credits.get(account.id, 0) or 0)
        expected = net if account.debit_normal else -net
        if expected != account.balance_cents:
            problems.append(
                f"{account.code}: stored {account.balance_cents}, journal says {expected}"
            )
    signed = session.scalar(
        select(
            func.coalesce(
                func.sum(
                    case(
                        (LedgerAccount.debit_normal, LedgerAccount.balance_cents),
                        else_=-LedgerAccount.balance_cents,
                    )
                ),
                0,
            )
        )
    )
    if signed != 0:
        problems.append(f"debit-normal and credit-normal balances differ by {signed} cents")
    return problems
