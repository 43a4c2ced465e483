"""Funding rounds: an admin opens, edits and closes them; projects are submitted into an
open round within its submission window (product.md "Funding rounds").

A round's figures (its projects' tokens, money and verified value) are read by
``dashboards.rounds``, which sits above every feature.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.accounts.authorisation import require_role
from marketplace.accounts.models import Role, User
from marketplace.rounds.models import ROUND_LIFECYCLE, Round, RoundState
from outcomes.errors import Conflict, Message, NotFound, ValidationFailed


class RoundExists(Conflict):
    code = "round_exists"
    title = "A round with this name exists"


class RoundClosed(Conflict):
    code = "round_closed"
    title = "The round takes no submissions now"


@dataclass(frozen=True)
class RoundInput:
    name: str
    submissions_open: date
    submissions_close: date
    funding_deadline: date
    description: str = ""
    themes: list[str] = field(default_factory=list)
    cities: list[str] = field(default_factory=list)


def _check(data: RoundInput, today: date) -> None:
    errors: dict[str, list[str]] = {}
    if data.submissions_close < data.submissions_open:
        errors["submissions_close"] = ["Submissions close on or after the day they open."]
    if data.funding_deadline <= data.submissions_close:
        errors["funding_deadline"] = ["Funding ends after submissions close."]
    if data.funding_deadline <= today:
        errors.setdefault("funding_deadline", []).append("The funding deadline is in the future.")
    if errors:
        raise ValidationFailed(errors=errors)


def distinct_cities(cities: list[str]) -> list[str]:
    """Each city once, as written first (compared case-folded)."""
    seen: dict[str, str] = {}
    for city in cities:
        seen.setdefault(" ".join(city.split()).casefold(), " ".join(city.split()))
    return list(seen.values())


def open_round(
    session: Session, admin: User, data: RoundInput, *, now: datetime, today: date
) -> Round:
    """A new open round. Raises Forbidden, ValidationFailed and RoundExists (flushes)."""
    require_role(admin, Role.ADMIN)
    _check(data, today)
    made = Round(
        name=data.name,
        description=data.description,
        themes=sorted(set(data.themes)),
        cities=distinct_cities(data.cities),
        submissions_open=data.submissions_open,
        submissions_close=data.submissions_close,
        funding_deadline=data.funding_deadline,
        state=RoundState.OPEN,
        created_by_id=admin.id,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(made)
            session.flush()
    except IntegrityError:
        raise RoundExists(
            "A round named %(name)s exists.",
            params={"name": data.name},
            errors={"name": ["A round with this name exists."]},
        ) from None
    ROUND_LIFECYCLE.record(session, made.id, None, RoundState.OPEN, admin.id, now, "opened")
    session.flush()
    return made


def get_round(session: Session, round_id: int) -> Round:
    found = session.get(Round, round_id)
    if found is None:
        raise NotFound("No such round.")
    return found


def list_rounds(session: Session, state: RoundState | None = None) -> list[Round]:
    query = select(Round).order_by(Round.funding_deadline.desc(), Round.id.desc())
    if state is not None:
        query = query.where(Round.state == state)
    return list(session.scalars(query))


def edit_round(
    session: Session,
    admin: User,
    round_id: int,
    changes: dict[str, object],
    *,
    listed: bool,
    now: datetime,
    today: date,
) -> Round:
    """Change an open round. Its funding deadline moves only while none of its projects is
    listed (``listed``: whether one is; the caller knows its projects). Raises Forbidden,
    NotFound, InvalidRoundTransition (closed), ValidationFailed, RoundClosed, RoundExists."""
    require_role(admin, Role.ADMIN)
    found = get_round(session, round_id)
    if found.state is not RoundState.OPEN:
        raise RoundClosed("A closed round is not changed.")
    merged = replace(
        RoundInput(
            name=found.name,
            description=found.description,
            themes=list(found.themes),
            cities=list(found.cities),
            submissions_open=found.submissions_open,
            submissions_close=found.submissions_close,
            funding_deadline=found.funding_deadline,
        ),
        **changes,  # type: ignore[arg-type]
    )
    if merged.funding_deadline != found.funding_deadline and listed:
        raise RoundClosed(
            "Projects of this round are listed: its funding deadline no longer moves.",
            errors={"funding_deadline": ["Projects of this round are listed already."]},
        )
    _check(merged, today)
    found.name, found.description = merged.name, merged.description
    found.themes, found.cities = sorted(set(merged.themes)), distinct_cities(merged.cities)
    found.submissions_open, found.submissions_close = (
        merged.submissions_open,
        merged.submissions_close,
    )
    found.funding_deadline, found.updated_at = merged.funding_deadline, now
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise RoundExists(
            "A round named %(name)s exists.",
            params={"name": merged.name},
            errors={"name": ["A round with this name exists."]},
        ) from None
    return found


def close_round(
    session: Session, admin: User, round_id: int, *, now: datetime, reason: str = ""
) -> Round:
    """No more submissions into the round (its projects go on). Raises Forbidden, NotFound,
    InvalidRoundTransition (closed already)."""
    require_role(admin, Role.ADMIN)
    found = get_round(session, round_id)
    ROUND_LIFECYCLE.change(
        session, found, RoundState.CLOSED, actor=admin, now=now, reason=reason or "closed"
    )
    return found


def submission_refusal(
    found: Round | None, *, theme: str, city: str, today: date, rolling: bool
) -> dict[str, list[Message | str]]:
    """Why a project of this theme and city cannot be submitted into ``found`` today
    (``None``: outside rounds, allowed when submissions are rolling); empty: it can."""
    if found is None:
        if rolling:
            return {}
        return {"round_id": ["Projects are submitted into an open funding round."]}
    if not found.takes_submissions(today):
        return {
            "round_id": [
                Message(
                    "%(round)s takes submissions from %(open_date)s to %(close_date)s while "
                    "it is open.",
                    round=found.name,
                    open_date=found.submissions_open,
                    close_date=found.submissions_close,
                )
            ]
        }
    errors: dict[str, list[Message | str]] = {}
    if found.themes and theme not in found.themes:
        errors["theme"] = [Message("%(round)s takes other themes.", round=found.name)]
    if found.cities and city.casefold() not in {c.casefold() for c in found.cities}:
        errors["city"] = [Message("%(round)s takes projects in other cities.", round=found.name)]
    return errors
