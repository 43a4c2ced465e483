"""An organisation's public page: its profile, its listed projects, and its track record
(for each settled project, the social value verified against the value targeted, and
whether it was late); and its verification by an administrator."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.authorisation import require_role
from marketplace.accounts.models import Organisation, Role, User
from marketplace.audit import services as audit
from marketplace.core.errors import Conflict, NotFound
from marketplace.projects.models import PUBLIC_STATES, Project, ProjectState
from marketplace.settlement.models import Settlement

# Approval later than this after the end date is late to verify (product.md).
VERIFY_WITHIN_DAYS = 60


@dataclass(frozen=True)
class TrackRecord:
    project: Project
    v_target_cents: int
    v_verified_cents: int
    tokens_paid: int
    tokens_minted: int
    settled_on: date

    @property
    def verified_share(self) -> Decimal:
        """Verified value as a fraction of the target (1 = all of it)."""
        if not self.v_target_cents:
            return Decimal(0)
        return Decimal(self.v_verified_cents) / Decimal(self.v_target_cents)

    @property
    def verified_late(self) -> bool:
        return (self.settled_on - self.project.end_date).days > VERIFY_WITHIN_DAYS


@dataclass(frozen=True)
class PublicProfile:
    organisation: Organisation
    projects: list[Project]
    record: list[TrackRecord]

    @property
    def verified_share(self) -> Decimal | None:
        """Over every settled project: verified value of the value targeted."""
        target = sum(r.v_target_cents for r in self.record)
        if not target:
            return None
        return Decimal(sum(r.v_verified_cents for r in self.record)) / Decimal(target)


def public_profile(session: Session, organisation_id: int) -> PublicProfile:
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound("No such organisation.")
    projects = list(
        session.scalars(
            select(Project)
            .where(Project.organisation_id == organisation_id, Project.state.in_(PUBLIC_STATES))
            .order_by(Project.listed_at.desc(), Project.id.desc())
        )
    )
    settled = {p.id: p for p in projects if p.state is ProjectState.SETTLED}
    rows: Iterable[Settlement] = session.scalars(
        select(Settlement)
        .where(Settlement.project_id.in_(list(settled)))
        .order_by(Settlement.id.desc())
    )
    record = [
        TrackRecord(
            project=settled[row.project_id],
            v_target_cents=row.v_target_cents,
            v_verified_cents=row.v_verified_cents,
            tokens_paid=row.tokens_paid,
            tokens_minted=row.tokens_minted,
            settled_on=(row.finished_at or row.computed_at).date(),
        )
        for row in rows
    ]
    return PublicProfile(organisation, projects, record)


def verify_organisation(
    session: Session, admin: User, organisation_id: int, *, now: datetime
) -> Organisation:
    """An administrator verified the organisation's legal details against its registry
    entry (a public badge; lifts the limits of product.md). Needs a legal name and a
    registry id; verifying again changes nothing. Raises Forbidden, NotFound, Conflict."""
    require_role(admin, Role.ADMIN)
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound("No such organisation.")
    if organisation.verified_at is not None:
        return organisation
    if not organisation.legal_name or not organisation.registry_id:
        raise Conflict(
            "%(name)s has no legal name and registry id to verify yet.",
            code="legal_details_missing",
            params={"name": organisation.name},
        )
    organisation.verified_at = now
    audit.record(
        session,
        "admin",
        "organisation verified",
        f"organisation:{organisation.id}",
        now,
        legal_name=organisation.legal_name,
        registry_id=organisation.registry_id,
    )
    session.flush()
    return organisation
