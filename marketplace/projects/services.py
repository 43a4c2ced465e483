"""Project use cases: drafts, submission, valuation, listing, rejection, browsing.

Each takes the session, the acting user and ``now`` (and ``today``, the
platform's calendar date) from its caller, flushes, and raises:
ValidationFailed (422, fields named), Forbidden (403), NotFound (404, also for
a project the caller may not know exists) and InvalidTransition or Conflict
(409).

Invariants:
- Only the owning organisation's entrepreneurs edit, submit or withdraw a
  project; only admins value, list or reject one.
- Drafts, submitted, valued and rejected projects are visible to their
  organisation and to admins only; listed projects and their later states
  are public.
- A valuation is stored as a new immutable snapshot that copies every value
  it used; it fixes tokens_total, token_price_cents and threshold_tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from blinker import Namespace
from sqlalchemy import ColumnElement, Integer, and_, column, func, or_, select, text, true
from sqlalchemy.orm import Session

from marketplace.accounts.authorisation import (
    require_acting_for,
    require_role,
    require_verified_email,
    require_verified_organisation,
)
from marketplace.accounts.models import Role, User
from marketplace.notifications import notices
from marketplace.projects import counts as listing_counts
from marketplace.projects import value_for_money
from marketplace.projects.models import (
    Project,
    ProjectState,
    ProjectStateChange,
    Theme,
    ValuationSnapshot,
    city_key,
)
from marketplace.projects.pricing import price_tokens
from marketplace.projects.states import InvalidTransition, record_creation, transition
from marketplace.rounds.models import Round, RoundState
from marketplace.rounds.services import submission_refusal
from outcomes.catalogue import OutcomeType, types_by_code
from outcomes.commitments import OutcomeCommitment
from outcomes.errors import Conflict, Message, NotFound, ValidationFailed
from valuation import (
    DEFAULT_GRADE,
    AdjustmentOverrides,
    EvidenceGrade,
    LineInput,
    MethodParameters,
    value,
)

# Sent (project, session=, now=) when a project in funding is withdrawn; the owner of
# pledges listens. A signal, so projects needs no import of the features above it.
withdrawn_in_funding = Namespace().signal("withdrawn-in-funding")

DEFAULT_PREMIUM_RATE = Decimal("0.25")


@dataclass(frozen=True)
class CommitmentInput:
    outcome_type: str
    target_quantity: int
    evidence_grade: EvidenceGrade = DEFAULT_GRADE


@dataclass(frozen=True)
class ProjectInput:
    title: str
    summary: str
    city: str
    theme: Theme
    budget_cents: int
    funding_deadline: date
    start_date: date
    end_date: date
    outcomes: list[CommitmentInput]
    premium_rate: Decimal = DEFAULT_PREMIUM_RATE
    # A funding round to submit into: the project then shares the round's deadline.
    round_id: int | None = None


@dataclass(frozen=True)
class Override(AdjustmentOverrides):
    """An admin's change to one line's adjustments or evidence grade, with the reason."""

    outcome_type: str
    reason: str
    evidence_grade: EvidenceGrade | None = None

    def changes_anything(self) -> bool:
        return bool(self.overrides()) or self.evidence_grade is not None


@dataclass(frozen=True)
class ProjectFilters:
    state: ProjectState | None = None
    city: str | None = None
    theme: Theme | None = None
    outcome_type: str | None = None
    q: str | None = None
    organisation_id: int | None = None
    round_id: int | None = None
    sort: str = "newest"
    page: int = 1
    per_page: int = 20


SORTS = ("newest", "deadline", "title", "budget", "value")


# ---------------------------------------------------------------- visibility


def visible_to(user: User | None, columns: Any = None) -> ColumnElement[bool]:
    """SQL condition: the projects ``user`` may know exist (on ``columns`` of projects,
    the table's by default).

    A project is public from the moment it is listed, whatever happens to it
    afterwards (funded, settled, unfunded, withdrawn): exactly the projects
    with ``listed_at`` set.
    """
    c = Project.__table__.c if columns is None else columns
    public = c.listed_at.is_not(None)
    if user is None:
        return public
    if user.role is Role.ADMIN:
        return true()
    return or_(public, c.organisation_id == user.organisation_id)


def get_project(session: Session, user: User | None, project_id: int) -> Project:
    """The project if ``user`` may see it. Raises NotFound otherwise."""
    project = session.scalar(select(Project).where(Project.id == project_id, visible_to(user)))
    if project is None:
        raise NotFound("No such project.")
    return project


def _require_owner(user: User, project: Project) -> None:
    require_acting_for(
        user, project.organisation_id, "Only the project's own organisation can do this."
    )


# ---------------------------------------------------------------- drafts


def _check_dates(data: ProjectInput, today: date) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if data.funding_deadline <= today:
        errors["funding_deadline"] = ["The funding deadline must be in the future."]
    if data.start_date <= data.funding_deadline:
        errors["start_date"] = ["The project must start after the funding deadline."]
    if data.end_date <= data.start_date:
        errors["end_date"] = ["The project must end after it starts."]
    return errors


def _resolve_commitments(
    session: Session, items: list[CommitmentInput], errors: dict[str, list[str]]
) -> list[tuple[OutcomeType, CommitmentInput]]:
    if not items:
        errors["outcomes"] = ["Commit to at least one outcome."]
        return []
    found = types_by_code(session, {item.outcome_type.upper() for item in items})
    resolved = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        outcome_type = found.get(item.outcome_type.upper())
        if outcome_type is None:
            errors[f"outcomes.{i}.outcome_type"] = [
                Message("Unknown outcome type %(code)s.", code=repr(item.outcome_type))
            ]
        elif outcome_type.is_retired:
            errors[f"outcomes.{i}.outcome_type"] = [
                Message(
                    "%(code)s is retired and cannot be chosen for new projects.",
                    code=outcome_type.code,
                )
            ]
        elif outcome_type.code in seen:
            errors[f"outcomes.{i}.outcome_type"] = [
                Message(
                    "%(code)s is already a line of this project; raise its target.",
                    code=outcome_type.code,
                )
            ]
        else:
            seen.add(outcome_type.code)
            resolved.append((outcome_type, item))
    return resolved


def _set_commitments(
    session: Session, project: Project, resolved: list[tuple[OutcomeType, CommitmentInput]]
) -> None:
    if project.outcomes:
        project.outcomes.clear()
        session.flush()  # delete the old lines before their positions are reused
    for position, (outcome_type, item) in enumerate(resolved):
        project.outcomes.append(
            OutcomeCommitment(
                position=position,
                outcome_type=outcome_type,
                target_quantity=item.target_quantity,
                evidence_grade=item.evidence_grade,
            )
        )


def create_draft(
    session: Session, user: User, data: ProjectInput, *, now: datetime, today: date
) -> Project:
    """A new draft of the user's organisation. Raises Forbidden, ValidationFailed."""
    require_role(user, Role.ENTREPRENEUR)
    data = _in_round(session, data)
    errors = _check_dates(data, today)
    resolved = _resolve_commitments(session, data.outcomes, errors)
    if errors:
        raise ValidationFailed(errors=errors)
    project = Project(
        organisation_id=user.organisation_id,
        created_by=user,
        title=data.title,
        summary=data.summary,
        city=data.city,
        city_key=city_key(data.city),
        theme=data.theme,
        budget_cents=data.budget_cents,
        premium_rate=data.premium_rate,
        funding_deadline=data.funding_deadline,
        start_date=data.start_date,
        end_date=data.end_date,
        round_id=data.round_id,
        state=ProjectState.DRAFT,
        created_at=now,
        updated_at=now,
    )
    session.add(project)
    _set_commitments(session, project, resolved)
    session.flush()
    record_creation(session, project, actor=user, now=now)
    listing_counts.bump(session)
    session.flush()
    return project


def _in_round(session: Session, data: ProjectInput) -> ProjectInput:
    """A project in a round takes the round's funding deadline; the round must be open."""
    if data.round_id is None:
        return data
    found = session.get(Round, data.round_id)
    if found is None or found.state is not RoundState.OPEN:
        raise ValidationFailed(errors={"round_id": ["Choose an open funding round."]})
    return replace(data, funding_deadline=found.funding_deadline)


def _as_input(project: Project) -> ProjectInput:
    return ProjectInput(
        title=project.title,
        summary=project.summary,
        city=project.city,
        theme=project.theme,
        budget_cents=project.budget_cents,
        funding_deadline=project.funding_deadline,
        start_date=project.start_date,
        end_date=project.end_date,
        premium_rate=project.premium_rate,
        outcomes=[
            CommitmentInput(c.outcome_type.code, c.target_quantity, c.evidence_grade)
            for c in project.outcomes
        ],
        round_id=project.round_id,
    )


def update_draft(
    session: Session, user: User, project: Project, changes: dict, *, now: datetime, today: date
) -> Project:
    """Change some fields of a draft; ``outcomes``, when given, replaces every line.

    Raises Forbidden (not the owner), InvalidTransition (not a draft),
    ValidationFailed.
    """
    _require_owner(user, project)
    if project.state is not ProjectState.DRAFT:
        raise InvalidTransition(
            "A %(state)s project can no longer be edited.", params={"state": project.state.value}
        )
    merged = _in_round(session, replace(_as_input(project), **changes))
    errors = _check_dates(merged, today)
    resolved = _resolve_commitments(session, merged.outcomes, errors)
    if errors:
        raise ValidationFailed(errors=errors)
    for name in (
        "title",
        "summary",
        "city",
        "theme",
        "budget_cents",
        "premium_rate",
        "funding_deadline",
        "start_date",
        "end_date",
        "round_id",
    ):
        setattr(project, name, getattr(merged, name))
    if "outcomes" in changes:
        _set_commitments(session, project, resolved)
    project.updated_at = now
    listing_counts.bump(session)
    session.flush()
    return project


def submit(
    session: Session,
    user: User,
    project: Project,
    *,
    now: datetime,
    today: date,
    rolling: bool = True,
) -> Project:
    """Send a draft to the expert panel: into its funding round, within the round's
    window and themes and cities, or outside rounds when submissions are ``rolling``
    (ROLLING_SUBMISSIONS). Raises Forbidden (also EmailUnverified and
    OrganisationUnverified), ValidationFailed, InvalidTransition."""
    _require_owner(user, project)
    require_verified_email(user)
    require_verified_organisation(user.organisation)
    if project.state is ProjectState.DRAFT:
        errors: dict[str, list] = dict(_check_dates(_as_input(project), today))
        found = session.get(Round, project.round_id) if project.round_id else None
        errors.update(
            submission_refusal(
                found, theme=project.theme.value, city=project.city, today=today, rolling=rolling
            )
        )
        if errors:
            raise ValidationFailed(errors=errors)
    transition(session, project, ProjectState.SUBMITTED, actor=user, now=now)
    return project


def withdraw(
    session: Session, user: User, project: Project, *, now: datetime, reason: str = ""
) -> Project:
    """The entrepreneur takes the project back (draft, submitted, valued or funding).

    A project withdrawn while in funding sends ``withdrawn_in_funding`` in the same
    transaction: funding releases its pledges and tells the buyers.
    """
    _require_owner(user, project)
    was_funding = project.state is ProjectState.FUNDING
    transition(
        session,
        project,
        ProjectState.WITHDRAWN,
        actor=user,
        now=now,
        reason=reason or Message("withdrawn by the entrepreneur"),
    )
    if was_funding:
        withdrawn_in_funding.send(project, session=session, now=now)
    return project


# ---------------------------------------------------------------- expert panel


def proposed_grade(
    snapshot: ValuationSnapshot | None, commitment: OutcomeCommitment
) -> EvidenceGrade:
    """The grade the entrepreneur proposed: the commitment's until the panel set one,
    then as the last snapshot recorded it (a re-valuation starts from the proposal)."""
    if snapshot is not None:
        for line in snapshot.inputs["lines"]:
            if line["commitment_id"] == commitment.id and "proposed_grade" in line:
                return EvidenceGrade(line["proposed_grade"])
    return commitment.evidence_grade


def _check_overrides(project: Project, overrides: list[Override]) -> dict[str, Override]:
    codes = {c.outcome_type.code for c in project.outcomes}
    errors: dict[str, list[str]] = {}
    by_code: dict[str, Override] = {}
    for i, override in enumerate(overrides):
        code = override.outcome_type.upper()
        if code not in codes:
            errors[f"overrides.{i}.outcome_type"] = ["Not one of this project's outcomes."]
        elif code in by_code:
            errors[f"overrides.{i}.outcome_type"] = ["Give one override per outcome."]
        if not override.changes_anything():
            errors.setdefault(f"overrides.{i}", []).append(
                "Change at least one adjustment or the evidence grade."
            )
        if len(override.reason.strip()) < 10:
            errors[f"overrides.{i}.reason"] = ["Explain the override (at least 10 characters)."]
        by_code[code] = override
    if errors:
        raise ValidationFailed(errors=errors)
    return by_code


def value_project(
    session: Session,
    admin: User,
    project: Project,
    *,
    overrides: list[Override],
    premium_rate: Decimal | None,
    now: datetime,
) -> ValuationSnapshot:
    """Value a submitted (or re-value a valued) project and freeze the result.

    Raises Forbidden, InvalidTransition, ValidationFailed (overrides).
    """
    require_role(admin, Role.ADMIN)
    if project.state not in (ProjectState.SUBMITTED, ProjectState.VALUED):
        raise InvalidTransition(
            "A %(state)s project cannot be valued.", params={"state": project.state.value}
        )
    by_code = _check_overrides(project, overrides)
    params = MethodParameters(valuation_year=project.start_date.year)
    lines, line_inputs = [], []
    for commitment in project.outcomes:
        proxy = commitment.outcome_type.proxy()
        override = by_code.get(proxy.code)
        changes = override.overrides() if override else {}
        # The entrepreneur proposed the grade; the panel sets it (product.md "Evidence
        # grade"): the commitment keeps the grade set, the snapshot both.
        proposed = proposed_grade(project.valuation, commitment)
        grade = (override.evidence_grade if override else None) or proposed
        commitment.evidence_grade = grade
        lines.append(
            LineInput(
                proxy=proxy,
                quantity=commitment.target_quantity,
                grade=grade,
                **changes,
            )
        )
        line_inputs.append(
            {
                "commitment_id": commitment.id,
                "outcome_type": proxy.code,
                "outcome_name": commitment.outcome_type.name,
                "source": commitment.outcome_type.source,
                "url": commitment.outcome_type.url,
                "proxy": proxy.as_dict(),
                "quantity": commitment.target_quantity,
                "evidence_grade": grade.value,
                "proposed_grade": proposed.value,
                "overrides": {k: str(v) for k, v in changes.items()},
                "reason": override.reason.strip() if override else "",
            }
        )
    valuation = value(lines, params)
    premium = project.premium_rate if premium_rate is None else premium_rate
    pricing = price_tokens(project.budget_cents, premium, valuation.tokens_total)
    snapshot = ValuationSnapshot(
        project_id=project.id,
        created_at=now,
        created_by=admin,
        method_version=valuation.method_version,
        inputs={
            "parameters": params.as_dict(),
            "lines": line_inputs,
            "budget_cents": project.budget_cents,
            "premium_rate": str(premium),
        },
        result=valuation.as_dict(),
        total_present_value_cents=valuation.total_present_value_cents,
        total_conservative_value_cents=valuation.total_conservative_value_cents,
        tokens_total=valuation.tokens_total,
        budget_cents=project.budget_cents,
        premium_rate=premium,
        token_price_cents=pricing.token_price_cents if pricing else None,
        threshold_tokens=pricing.threshold_tokens if pricing else None,
    )
    session.add(snapshot)
    session.flush()
    project.valuation = snapshot
    value_for_money.expected(project, snapshot)
    project.premium_rate = premium
    project.tokens_total = valuation.tokens_total
    project.token_price_cents = snapshot.token_price_cents
    project.threshold_tokens = snapshot.threshold_tokens
    if pricing:
        reason = Message(
            "valued at %(tokens)s tokens of %(price_cents)s each; threshold %(threshold)s tokens",
            tokens=valuation.tokens_total,
            price_cents=pricing.token_price_cents,
            threshold=pricing.threshold_tokens,
        )
    else:
        reason = Message("valued at 0 tokens: it cannot be listed")
    transition(session, project, ProjectState.VALUED, actor=admin, now=now, reason=reason)
    notices.project_valued(
        session,
        project,
        snapshot_id=snapshot.id,
        tokens=valuation.tokens_total,
        price_cents=snapshot.token_price_cents or 0 if pricing else 0,
        threshold=snapshot.threshold_tokens or 0,
        now=now,
    )
    return snapshot


def list_for_funding(
    session: Session, admin: User, project: Project, *, now: datetime, today: date
) -> Project:
    """Open funding: the project becomes public. Raises Forbidden, Conflict, InvalidTransition."""
    require_role(admin, Role.ADMIN)
    if project.state is ProjectState.VALUED:
        if not project.is_listable:
            raise Conflict(
                "The valuation gives no token to sell; re-value or reject it.", code="not_listable"
            )
        if project.funding_deadline <= today:
            raise Conflict(
                "The funding deadline has passed; the entrepreneur must re-plan.",
                code="funding_deadline_passed",
            )
    transition(
        session,
        project,
        ProjectState.FUNDING,
        actor=admin,
        now=now,
        reason=Message("listed for funding"),
    )
    project.listed_at = now
    notices.project_listed(
        session,
        project,
        deadline=project.funding_deadline,
        tokens=project.tokens_total or 0,
        threshold=project.threshold_tokens or 0,
        now=now,
    )
    session.flush()
    return project


def reject(
    session: Session, admin: User, project: Project, *, reason: str, now: datetime
) -> Project:
    """Turn a submitted or valued project down.

    Raises Forbidden, ValidationFailed (no reason), InvalidTransition.
    """
    require_role(admin, Role.ADMIN)
    if len(reason.strip()) < 10:
        raise ValidationFailed(
            errors={"reason": ["Explain the decision (at least 10 characters)."]}
        )
    transition(session, project, ProjectState.REJECTED, actor=admin, now=now, reason=reason.strip())
    notices.project_rejected(session, project, reason=reason.strip(), now=now)
    return project


# ---------------------------------------------------------------- browsing


def list_projects(
    session: Session,
    user: User | None,
    filters: ProjectFilters,
    counts: listing_counts.CountCache | None = None,
) -> tuple[list[Project], int]:
    """A page of the projects ``user`` may see, filtered and sorted, and the total.

    With ``counts``, the total is taken from the cache when nothing in the
    listings changed since it was counted.
    """
    found = None
    if filters.q and session.get_bind().dialect.name != "sqlite":
        found = _text_match_rows(filters.q)
    columns = found.c if found is not None else Project.__table__.c
    conditions = _listing_conditions(columns, user, filters, text=found is None)
    where = and_(*conditions) if conditions else true()

    def count() -> int:
        counted = select(func.count(columns.id))
        return session.scalar(counted.where(where)) or 0

    if counts is None:
        total = count()
    else:
        scope = (
            "admin" if user and user.role is Role.ADMIN else user.organisation_id if user else None
        )
        key = (
            listing_counts.current(session),
            scope,
            filters.state,
            filters.city and city_key(filters.city),
            filters.theme,
            filters.outcome_type and filters.outcome_type.upper(),
            filters.q and filters.q.lower(),
            filters.organisation_id,
            filters.round_id,
        )
        total = counts.get_or_count(key, count)
    order = _listing_order(Project.__table__.c, filters.sort)
    offset = (filters.page - 1) * filters.per_page
    if found is None:
        query = select(Project).where(where).order_by(*order).offset(offset)
        query = query.limit(filters.per_page)
    else:  # the page among the matches, then its rows: each match is read once
        page = (
            select(columns.id)
            .where(where)
            .order_by(*_listing_order(columns, filters.sort))
            .offset(offset)
            .limit(filters.per_page)
        )
        query = select(Project).where(Project.id.in_(page)).order_by(*order)
    items = session.scalars(query)
    return list(items), total


def _listing_conditions(
    c: Any, user: User | None, filters: ProjectFilters, *, text: bool
) -> list[Any]:
    """The conditions of a listing on the columns ``c`` of projects (the table's, or the
    text matches'); with ``text``, the text search is one of them."""
    conditions = [visible_to(user, c)]
    if filters.state:
        conditions.append(c.state == filters.state)
    if filters.city:
        conditions.append(c.city_key == city_key(filters.city))
    if filters.theme:
        conditions.append(c.theme == filters.theme)
    if filters.organisation_id is not None:
        conditions.append(c.organisation_id == filters.organisation_id)
    if filters.round_id is not None:
        conditions.append(c.round_id == filters.round_id)
    if filters.outcome_type:
        conditions.append(
            select(OutcomeCommitment.id)
            .join(OutcomeType, OutcomeType.id == OutcomeCommitment.outcome_type_id)
            .where(
                OutcomeCommitment.project_id == c.id,
                OutcomeType.code == filters.outcome_type.upper(),
            )
            .exists()
        )
    if filters.q and text:
        conditions.append(_text_matches(filters.q))
    return conditions


def _listing_order(c: Any, sort: str) -> tuple[Any, ...]:
    return {
        "newest": (c.listed_at.desc().nulls_first(), c.id.desc()),
        "deadline": (c.funding_deadline.asc(), c.id.asc()),
        "title": (c.title.asc(), c.id.asc()),
        "budget": (c.budget_cents.desc(), c.id.desc()),
        # social value per euro, highest first; projects not valued yet last
        "value": (c.value_per_euro_bp.desc().nulls_last(), c.id.desc()),
    }[sort]


# On SQLite: the FTS5 trigram index of migration 0012 (a phrase of three or more
# characters is looked up in it; shorter ones are scanned for).
_FTS_MATCHES = text("SELECT rowid FROM project_text WHERE project_text MATCH :phrase").columns(
    column("rowid", Integer)
)


def _text_matches(q: str):
    """Projects whose title or summary contains ``q``, ignoring case (SQLite)."""
    term = q.lower()
    if len(term) >= 3:
        phrase = '"' + term.replace('"', '""') + '"'
        return Project.id.in_(_FTS_MATCHES.bindparams(phrase=phrase))
    pattern = f"%{term}%"
    return or_(func.lower(Project.title).like(pattern), func.lower(Project.summary).like(pattern))


# The columns a listing filters and sorts by (``_listing_conditions``, ``_listing_order``).
_LISTED_BY = (
    "id",
    "organisation_id",
    "state",
    "city_key",
    "theme",
    "round_id",
    "listed_at",
    "funding_deadline",
    "title",
    "budget_cents",
    "value_per_euro_bp",
)


def _text_match_rows(q: str) -> Any:
    """The projects whose title or summary contains ``q``, ignoring case (PostgreSQL), with
    the columns a listing filters and sorts by. Found first, through the trigram indexes:
    the listing's other conditions, its order and its page are then taken among them
    without reading each match again, and only the page's rows are read whole (otherwise
    the planner may walk the newest-first index and test every summary on the way)."""
    pattern = f"%{q.lower()}%"
    projects = Project.__table__
    return (
        select(*[projects.c[name] for name in _LISTED_BY])
        .where(
            or_(
                func.lower(projects.c.title).like(pattern),
                func.lower(projects.c.summary).like(pattern),
            )
        )
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )


def history(session: Session, project: Project) -> list[ProjectStateChange]:
    return list(
        session.scalars(
            select(ProjectStateChange)
            .where(ProjectStateChange.project_id == project.id)
            .order_by(ProjectStateChange.id)
        )
    )


# The distinct cities of public projects by a loose index scan: one index probe a
# city instead of reading every project.
_CITIES = text("""
WITH RECURSIVE keys(k) AS (
    SELECT min(city_key) FROM projects WHERE listed_at IS NOT NULL
    UNION ALL
    SELECT (SELECT min(city_key) FROM projects WHERE city_key > keys.k AND listed_at IS NOT NULL)
    FROM keys WHERE keys.k IS NOT NULL
)
SELECT (SELECT city FROM projects WHERE city_key = keys.k AND listed_at IS NOT NULL LIMIT 1)
FROM keys WHERE keys.k IS NOT NULL
""")


def cities(session: Session) -> list[str]:
    """The cities of the public projects, for the marketplace's filter."""
    return list(session.scalars(_CITIES))
