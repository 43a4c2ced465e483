"""Open data: every listed project (public ones, settled included) with its outcomes,
prices, verified results and funders, in the format documented in the README ("Open
data"), each project also mapped to the INDIGO data standard's project fields where
they exist (``indigo``).

Funders are named as the public registry names them: an organisation that keeps its
holdings private is "private holder" here too. Amounts are integer cents in the
platform's own fields and exact decimal strings of euros in INDIGO's (its amounts are
numbers of the currency; a string keeps them exact).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from marketplace.accounts.models import Organisation
from marketplace.funding.models import Pledge, PledgeState
from marketplace.projects.models import Project, ProjectState
from marketplace.registry.services import PRIVATE_HOLDER
from marketplace.settlement.models import Settlement, SettlementShare

FORMAT = "som-open-data"
VERSION = 1
COUNTRY = "NL"

# Our stages in INDIGO's ``stage_development`` (None: INDIGO has no stage for it).
INDIGO_STAGE = {
    ProjectState.FUNDING: "Late-stage design",
    ProjectState.FUNDED: "Contracted",
    ProjectState.RUNNING: "Implementation",
    ProjectState.EVALUATING: "Service delivery complete",
    ProjectState.SETTLED: "Complete",
}
# Our themes in INDIGO's ``policy_sector``.
INDIGO_SECTOR = {
    "work": "Employment and training",
    "housing": "Homelessness",
    "youth": "Child and family welfare",
    "health": "Health",
    "safety": "Criminal justice",
    "education": "Education",
    "wellbeing": "Health",
}


def _euros(cents: int) -> str:
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))


def _value(value: Any) -> dict[str, Any]:
    return {"value": value.isoformat() if isinstance(value, date | datetime) else value}


def _funders(session: Session, project_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Per project: each organisation's paid tokens and money, and what settlement
    returned to it (the settlement's share, when settled)."""
    paid = session.execute(
        select(
            Pledge.project_id,
            Organisation.id,
            Organisation.name,
            Organisation.registry_public,
            func.sum(Pledge.tokens),
            func.sum(Pledge.amount_cents),
        )
        .join(Organisation, Organisation.id == Pledge.organisation_id)
        .where(Pledge.project_id.in_(project_ids), Pledge.state == PledgeState.PAID)
        .group_by(
            Pledge.project_id, Organisation.id, Organisation.name, Organisation.registry_public
        )
        .order_by(Pledge.project_id, Organisation.id)
    ).all()
    shares = {
        (row.project_id, row.organisation_id): row
        for row in session.execute(
            select(
                Settlement.project_id,
                SettlementShare.organisation_id,
                SettlementShare.tokens_minted,
                SettlementShare.refund_cents,
            )
            .join(Settlement, Settlement.id == SettlementShare.settlement_id)
            .where(Settlement.project_id.in_(project_ids))
        )
    }
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for project_id, org_id, name, public, tokens, cents in paid:
        share = shares.get((project_id, org_id))
        found[project_id].append(
            {
                "organisation": name if public else PRIVATE_HOLDER,
                "tokens_paid": int(tokens),
                "paid_cents": int(cents),
                "tokens_minted": share.tokens_minted if share else None,
                "refund_cents": share.refund_cents if share else None,
            }
        )
    return found


def _outcomes(project: Project) -> list[dict[str, Any]]:
    return [
        {
            "outcome_type": line.outcome_type.code,
            "name": line.outcome_type.name,
            "unit": line.outcome_type.unit,
            "target_quantity": line.target_quantity,
            "evidence_grade": line.evidence_grade.value,
            "verified_quantity": line.verified_quantity,
            "proxy_value": str(line.outcome_type.proxy_value),
            "proxy_currency": line.outcome_type.currency,
            "proxy_source": line.outcome_type.source,
            "esrs_topic": line.outcome_type.esrs_topic,
            "esrs_disclosure": line.outcome_type.esrs_disclosure,
            "sdg_targets": line.outcome_type.sdg_target_list,
        }
        for line in project.outcomes
    ]


def _indigo(
    project: Project,
    settlement: Settlement | None,
    funders: list[dict[str, Any]],
    currency: str,
) -> dict[str, Any]:
    """The project in INDIGO's project fields (INDIGO-Initiative/indigo-data-standard,
    schema/project.json), only those with a counterpart here."""
    targets = [t for line in project.outcomes for t in line.outcome_type.sdg_target_list]
    targets = list(dict.fromkeys(targets))
    money = {"currency": _value(currency)}
    mapped: dict[str, Any] = {
        "name": _value(project.title),
        "dates": {
            "start_date_of_service_provision": _value(project.start_date),
            "anticipated_end_date_of_service_provision": _value(project.end_date),
        },
        "purpose_and_classifications": {
            "intervention": _value(project.summary),
            "policy_sector": _value(INDIGO_SECTOR[project.theme.value]),
            "primary_sdg_target": _value(targets[0] if targets else None),
            "secondary_sdg_targets": _value(", ".join(targets[1:])),
        },
        "delivery_locations": [
            {"location_name": _value(project.city), "location_country": _value(COUNTRY)}
        ],
        "overall_project_finance": {
            "maximum_potential_outcome_payment_v2": {
                **money,
                "amount": _value(
                    _euros((project.tokens_total or 0) * (project.token_price_cents or 0))
                ),
            }
        },
        "outcome_metrics": [
            {
                "id": line.outcome_type.code,
                "definition": _value(line.outcome_type.name),
                "targeted_number_of_service_users_or_beneficiaries_total": _value(
                    line.target_quantity
                ),
            }
            for line in project.outcomes
        ],
        "service_provisions": [
            {
                "id": f"{project.reference}-delivery",
                "organisation_id": _value(f"som-organisation-{project.organisation_id}"),
                "intervention": _value(project.summary),
                "planned_service": {
                    "start_date": _value(project.start_date),
                    "end_date": _value(project.end_date),
                },
            }
        ],
        "outcome_payment_commitments": [
            {
                "organisation_id": _value(funder["organisation"]),
                "maximum_potential_outcome_payment": {
                    **money,
                    "amount": _value(_euros(funder["paid_cents"])),
                },
                **(
                    {
                        "total_outcome_payments": {
                            **money,
                            "amount": _value(
                                _euros(funder["paid_cents"] - (funder["refund_cents"] or 0))
                            ),
                        }
                    }
                    if settlement is not None
                    else {}
                ),
            }
            for funder in funders
        ],
    }
    stage = INDIGO_STAGE.get(project.state)
    if stage is not None:
        mapped["stage_development"] = _value(stage)
    if settlement is not None:
        mapped["overall_project_finance"]["total_outcome_payments_made"] = {
            **money,
            "amount": _value(_euros(settlement.raised_cents - settlement.refund_total_cents)),
        }
        if settlement.finished_at is not None:
            mapped["dates"]["actual_completion_date"] = _value(settlement.finished_at.date())
    return mapped


def export(
    session: Session, *, currency: str, now: datetime, page: int, per_page: int
) -> dict[str, Any]:
    """One page of the open-data export, oldest listing first, and how many there are."""
    public = Project.listed_at.is_not(None)
    total = session.scalar(select(func.count(Project.id)).where(public)) or 0
    projects = list(
        session.scalars(
            select(Project)
            .where(public)
            .options(selectinload(Project.outcomes))
            .order_by(Project.listed_at, Project.id)
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    )
    ids = [p.id for p in projects]
    settlements = {
        s.project_id: s
        for s in session.scalars(select(Settlement).where(Settlement.project_id.in_(ids)))
    }
    funders = _funders(session, ids)
    items = []
    for project in projects:
        settlement = settlements.get(project.id)
        items.append(
            {
                "id": project.reference,
                "title": project.title,
                "summary": project.summary,
                "organisation": project.organisation.name,
                "city": project.city,
                "country": COUNTRY,
                "theme": project.theme.value,
                "state": project.state.value,
                "round_id": project.round_id,
                "listed_at": project.listed_at.isoformat() if project.listed_at else None,
                "dates": {
                    "funding_deadline": project.funding_deadline.isoformat(),
                    "start_date": project.start_date.isoformat(),
                    "end_date": project.end_date.isoformat(),
                },
                "prices": {
                    "budget_cents": project.budget_cents,
                    "premium_rate": str(project.premium_rate),
                    "tokens_total": project.tokens_total,
                    "token_price_cents": project.token_price_cents,
                    "threshold_tokens": project.threshold_tokens,
                },
                "funding": {
                    "tokens_pledged": project.tokens_pledged,
                    "tokens_paid": project.tokens_paid,
                },
                "value_per_euro": str(project.value_per_euro)
                if project.value_per_euro is not None
                else None,
                "value_per_euro_basis": (
                    None
                    if project.value_per_euro is None
                    else "verified"
                    if project.value_verified
                    else "expected"
                ),
                "outcomes": _outcomes(project),
                "settlement": None
                if settlement is None
                else {
                    "v_target_cents": settlement.v_target_cents,
                    "v_verified_cents": settlement.v_verified_cents,
                    "raised_cents": settlement.raised_cents,
                    "refund_total_cents": settlement.refund_total_cents,
                    "tokens_minted": settlement.tokens_minted,
                    "premium_payout_cents": settlement.premium_payout_cents,
                    "settled_at": settlement.computed_at.isoformat(),
                },
                "funders": funders.get(project.id, []),
                "indigo": _indigo(project, settlement, funders.get(project.id, []), currency),
            }
        )
    return {
        "format": FORMAT,
        "version": VERSION,
        "generated_at": now.isoformat(),
        "currency": currency,
        "page": page,
        "per_page": per_page,
        "total": total,
        "projects": items,
    }
