"""Concerns, disputes and their findings (product.md "Concerns, disputes and the buffer pool").

- Anyone signed in files a concern about a settled project within 365 days of its
  settlement. Admins triage it: dismiss it, or open a dispute.
- Opening a dispute sets the project's public ``disputed`` flag, and resolving the
  last open one clears it, by an update of the project row: retirements read that
  row FOR SHARE (registry.services.refuse_if_frozen), so none slips past the freeze.
- A dispute is dismissed (the flag cleared) or upheld with corrected verified
  quantities: the tokens those give, ``minted'``, are recomputed by the settlement's
  own rule, and ``over = current - minted'`` buffer serials are cancelled; what
  the pool cannot cover is the public shortfall. Money does not move back.
Every move goes through the concern's lifecycle (history row, audit log).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from marketplace.accounts.authorisation import require_role
from marketplace.accounts.models import Organisation, Role, User
from marketplace.core.storage import Storage
from marketplace.disputes.models import (
    LIFECYCLE,
    MAX_REASON,
    MAX_TEXT,
    Concern,
    ConcernState,
    ConcernStateChange,
)
from marketplace.evaluations import files
from marketplace.notifications import notices
from marketplace.projects.models import Project, ProjectState
from marketplace.registry.models import TokenBlock
from marketplace.registry.services import cancel_buffer
from marketplace.settlement.models import Settlement
from marketplace.settlement.services import snapshot_values
from outcomes.errors import Conflict, Message, NotFound, ValidationFailed
from outcomes.evaluation import Evaluation
from outcomes.evidence import EvidenceFile

WINDOW = timedelta(days=365)
MIN_REASON = 10


def _text(value: str, field: str, *, least: int, most: int, ask: str) -> str:
    clean = value.strip()
    if len(clean) < least:
        raise ValidationFailed(errors={field: [Message(ask, n=least)]})
    if len(clean) > most:
        raise ValidationFailed(errors={field: [Message("At most %(n)s characters.", n=most)]})
    return clean


def settled_project(session: Session, project_id: int) -> tuple[Project, Settlement]:
    project = session.get(Project, project_id)
    settlement = session.scalar(select(Settlement).where(Settlement.project_id == project_id))
    if project is None or project.state is not ProjectState.SETTLED or settlement is None:
        raise NotFound("No settled project with this number.")
    return project, settlement


def settled_on(settlement: Settlement) -> datetime:
    return settlement.finished_at or settlement.computed_at


def open_for_concerns(settlement: Settlement, now: datetime) -> bool:
    return now <= settled_on(settlement) + WINDOW


def file_concern(
    session: Session, user: User, project_id: int, *, text: str, now: datetime
) -> Concern:
    """Raises NotFound (no settled project), Conflict ``concern_window_closed`` (more than
    365 days after settlement) and ValidationFailed (text)."""
    project, settlement = settled_project(session, project_id)
    if not open_for_concerns(settlement, now):
        raise Conflict(
            "Concerns about a project are taken for 365 days after its settlement.",
            code="concern_window_closed",
        )
    clean = _text(
        text,
        "text",
        least=20,
        most=MAX_TEXT,
        ask="Describe the concern (at least %(n)s characters).",
    )
    concern = Concern(
        project_id=project.id,
        user_id=user.id,
        organisation_id=user.organisation_id,
        text=clean,
        state=ConcernState.FILED,
        created_at=now,
        updated_at=now,
    )
    session.add(concern)
    session.flush()
    LIFECYCLE.record(session, concern.id, None, ConcernState.FILED, user.id, now, "filed")
    admins = session.scalars(
        select(User).where(User.role == Role.ADMIN, User.is_active).order_by(User.id)
    ).all()
    notices.concern_filed(
        session,
        concern_id=concern.id,
        project_title=project.title,
        organisation_name=session.get_one(Organisation, user.organisation_id).name,
        admins=admins,
        now=now,
    )
    session.flush()
    return concern


def add_file(
    session: Session,
    store: Storage,
    user: User,
    concern_id: int,
    *,
    filename: str,
    data: bytes,
    now: datetime,
) -> EvidenceFile:
    """A file supporting one's own concern, while it is filed or disputed; seen only by
    the person who raised it and the administrators."""
    concern = session.get(Concern, concern_id)
    if concern is None or concern.user_id != user.id:
        raise NotFound("No such concern.")
    if concern.state not in (ConcernState.FILED, ConcernState.DISPUTED):
        raise Conflict(
            "A %(state)s concern takes no more files.",
            code="invalid_transition",
            params={"state": concern.state.value},
        )
    return files.add_concern_file(
        session,
        store,
        user,
        project_id=concern.project_id,
        concern_id=concern.id,
        filename=filename,
        data=data,
        now=now,
    )


def files_of(session: Session, concern_id: int) -> list[EvidenceFile]:
    return list(
        session.scalars(
            select(EvidenceFile)
            .where(EvidenceFile.concern_id == concern_id)
            .order_by(EvidenceFile.id)
        )
    )


def history(session: Session, concern_id: int) -> list[ConcernStateChange]:
    return list(
        session.scalars(
            select(ConcernStateChange)
            .where(ConcernStateChange.concern_id == concern_id)
            .order_by(ConcernStateChange.id)
        )
    )


def get_concern(session: Session, user: User, concern_id: int) -> Concern:
    """Admins see every concern; the person who filed one sees it; others: not found."""
    found = session.get(Concern, concern_id)
    if found is None or not (user.role is Role.ADMIN or found.user_id == user.id):
        raise NotFound("No such concern.")
    return found


def list_concerns(
    session: Session, admin: User, *, state: ConcernState | None, page: int, per_page: int
) -> tuple[list[Concern], int]:
    require_role(admin, Role.ADMIN)
    query = select(Concern)
    if state is not None:
        query = query.where(Concern.state == state)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    # Open ones first: disputed, then filed, then the decided; newest first within each.
    rank = case(
        (Concern.state == ConcernState.DISPUTED, 0),
        (Concern.state == ConcernState.FILED, 1),
        else_=2,
    )
    items = session.scalars(
        query.order_by(rank, Concern.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return list(items), total


def public_disputes(session: Session, project_id: int) -> list[Concern]:
    """A project's disputes, open and decided, for its public page (never mere concerns,
    whose text is between the filer and the platform)."""
    return list(
        session.scalars(
            select(Concern)
            .where(
                Concern.project_id == project_id,
                Concern.disputed_at.is_not(None),
            )
            .order_by(Concern.id)
        )
    )


def _parties(session: Session, project_id: int) -> list[int]:
    """Organisations that hold or retired tokens of the project."""
    return list(
        session.scalars(
            select(TokenBlock.holder_id)
            .where(TokenBlock.project_id == project_id, TokenBlock.holder_id.is_not(None))
            .distinct()
            .order_by(TokenBlock.holder_id)
        )
    )


def _tell(
    session: Session,
    event: str,
    concern: Concern,
    project: Project,
    params: dict[str, object],
    now: datetime,
) -> None:
    """A dispute's event to the project's owner, its holders and who raised it."""
    notices.dispute_event(
        session,
        event=event,
        concern_id=concern.id,
        project=project,
        organisations=[*_parties(session, project.id), concern.organisation_id],
        params=params,
        now=now,
    )


def _refresh_flag(session: Session, project_id: int) -> None:
    """Set the project's public ``disputed`` flag to whether a dispute of it is open. An
    UPDATE of the project row even when the value stays: its row lock orders this against
    retirements, which read the row FOR SHARE before they check the flag."""
    still_open = (
        select(Concern.id)
        .where(Concern.project_id == project_id, Concern.state == ConcernState.DISPUTED)
        .exists()
    )
    session.execute(
        update(Project)
        .where(Project.id == project_id)
        .values(disputed=still_open)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()


def open_dispute(
    session: Session, admin: User, concern_id: int, *, reason: str, now: datetime
) -> Concern:
    """The project shows disputed and its unretired serials freeze until every open
    dispute of it is dismissed or upheld."""
    require_role(admin, Role.ADMIN)
    concern = get_concern(session, admin, concern_id)
    clean = _text(
        reason,
        "reason",
        least=MIN_REASON,
        most=MAX_REASON,
        ask="Say publicly what is disputed (at least %(n)s characters).",
    )
    LIFECYCLE.change(session, concern, ConcernState.DISPUTED, actor=admin, now=now, reason=clean)
    _refresh_flag(session, concern.project_id)
    concern = session.get_one(Concern, concern_id)
    concern.dispute_reason, concern.disputed_at = clean, now
    project = session.get_one(Project, concern.project_id)
    _tell(session, "opened", concern, project, {"reason": clean}, now)
    session.flush()
    return concern


def dismiss(
    session: Session, admin: User, concern_id: int, *, reason: str, now: datetime
) -> Concern:
    """A filed concern (no dispute) or an open dispute, dismissed with a reason."""
    require_role(admin, Role.ADMIN)
    concern = get_concern(session, admin, concern_id)
    clean = _text(
        reason,
        "reason",
        least=MIN_REASON,
        most=MAX_REASON,
        ask="Give the reason (at least %(n)s characters).",
    )
    was_disputed = concern.state is ConcernState.DISPUTED
    LIFECYCLE.change(session, concern, ConcernState.DISMISSED, actor=admin, now=now, reason=clean)
    concern.finding, concern.resolved_at = clean, now
    project = session.get_one(Project, concern.project_id)
    filer = session.get_one(User, concern.user_id)
    if was_disputed:
        _refresh_flag(session, concern.project_id)
        project = session.get_one(Project, concern.project_id)
        _tell(session, "dismissed", concern, project, {"reason": clean}, now)
    else:
        notices.concern_dismissed(
            session,
            concern_id=concern.id,
            filer=filer,
            project_id=project.id,
            project_title=project.title,
            reason=clean,
            now=now,
        )
    session.flush()
    return session.get_one(Concern, concern_id)


@dataclass(frozen=True)
class Correction:
    outcome_id: int
    verified_quantity: int


def minted_now(session: Session, settlement: Settlement) -> int:
    """The project's tokens as they stand: minted less the excess of upheld disputes."""
    over = session.scalar(
        select(func.coalesce(func.sum(Concern.tokens_over), 0)).where(
            Concern.project_id == settlement.project_id, Concern.state == ConcernState.UPHELD
        )
    )
    return settlement.tokens_minted - int(over or 0)


def uphold(
    session: Session,
    admin: User,
    concern_id: int,
    *,
    finding: str,
    corrections: list[Correction],
    now: datetime,
) -> Concern:
    """Uphold an open dispute with corrected verified quantities (those not given stay
    as verified); cancel the excess tokens from the buffer pool."""
    require_role(admin, Role.ADMIN)
    concern = get_concern(session, admin, concern_id)
    clean = _text(
        finding,
        "finding",
        least=MIN_REASON,
        most=MAX_TEXT,
        ask="Write the finding (at least %(n)s characters).",
    )
    # Two disputes of one project upheld at once: the second waits here, then counts the
    # first's excess in the tokens standing (minted_now).
    session.execute(
        select(Project.id).where(Project.id == concern.project_id).with_for_update()
    ).all()
    project, settlement = settled_project(session, concern.project_id)
    evaluation = session.get_one(Evaluation, settlement.evaluation_id)
    verified = {r.commitment_id: r.verified_quantity for r in evaluation.results}
    met = {r.commitment_id: r.met_grade for r in evaluation.results}
    errors: dict[str, list[str]] = {}
    corrected = dict(verified)
    for i, item in enumerate(corrections):
        if item.outcome_id not in verified:
            errors[f"quantities.{i}.outcome_id"] = ["Not an outcome of this project."]
        elif item.verified_quantity < 0:
            errors[f"quantities.{i}.verified_quantity"] = ["Zero or more."]
        elif item.verified_quantity > verified[item.outcome_id]:
            errors[f"quantities.{i}.verified_quantity"] = [
                Message(
                    "A correction lowers the verified quantity (%(n)s at most).",
                    n=verified[item.outcome_id],
                )
            ]
        else:
            corrected[item.outcome_id] = item.verified_quantity
    if errors:
        raise ValidationFailed(errors=errors)
    if project.valuation is None:
        raise NotFound("No settled project with this number.")
    _target, v_corrected = snapshot_values(project.valuation, corrected, met)
    tokens = settlement.tokens_paid * v_corrected // settlement.v_target_cents
    over = minted_now(session, settlement) - tokens
    if over <= 0:
        raise ValidationFailed(
            errors={
                "quantities": [
                    "These quantities mint no fewer tokens than stand now; dismiss the "
                    "dispute instead, with the finding."
                ]
            }
        )
    LIFECYCLE.change(
        session,
        concern,
        ConcernState.UPHELD,
        actor=admin,
        now=now,
        reason=Message("upheld: %(over)s tokens over", over=over),
    )
    cancelled = cancel_buffer(session, project.id, over, concern_id=concern.id)
    concern = session.get_one(Concern, concern_id)
    concern.finding, concern.resolved_at = clean, now
    concern.corrected = {str(k): v for k, v in sorted(corrected.items())}
    concern.v_verified_cents, concern.tokens_minted = v_corrected, tokens
    concern.tokens_over, concern.tokens_cancelled = over, cancelled
    session.flush()
    _refresh_flag(session, project.id)
    project = session.get_one(Project, concern.project_id)
    _tell(
        session,
        "upheld",
        concern,
        project,
        {"reason": clean, "over": over, "cancelled": cancelled},
        now,
    )
    session.flush()
    return session.get_one(Concern, concern_id)


def upheld(session: Session) -> list[Concern]:
    """Every upheld dispute, for the public buffer page."""
    return list(
        session.scalars(
            select(Concern).where(Concern.state == ConcernState.UPHELD).order_by(Concern.id)
        )
    )
