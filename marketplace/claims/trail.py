"""A serial's claim trail (product.md "Claim trail"): everything an auditor follows from
a retired token back to the valuation, as one canonical JSON document with a
fingerprint.

The chain: retirement (if any) -> the block and its holder (frozen while a dispute is
open) -> the project and its disputes with their findings -> the settlement's figures
(with the buffer pool's share) -> each outcome's target and verified quantity with its
planned, proposed and met grades -> the evidence files' SHA-256, type and size (never
their content) -> the evaluator with its accreditation and conflict-of-interest
declaration, and the approver, with their dates -> the valuation snapshot (method
version, parameters, each line's proxy, source and URL, the panel's overrides and
grades with their reasons).

The fingerprint is the SHA-256 of the trail's canonical JSON (keys sorted, no spaces,
every figure as it is stored): change any link of the chain and it changes. A private
holder is named "private holder", as in the public registry.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Organisation, User
from marketplace.core.errors import NotFound, ValidationFailed
from marketplace.disputes.models import Concern
from marketplace.disputes.services import public_disputes
from marketplace.evaluations.services import accreditation_for
from marketplace.projects.models import Project, ValuationSnapshot
from marketplace.registry.models import SERIAL_PREFIX, BlockStatus, Retirement, TokenBlock
from marketplace.registry.services import find_serial, holder_name, transfers_of_serial
from marketplace.settlement.models import Settlement
from outcomes.errors import Message
from outcomes.evaluation import Evaluation, EvaluationResult
from outcomes.evidence import EvidenceFile


def _holder(organisation: Organisation | None) -> str:
    """As the public registry names a holder, in plain English (the trail is data)."""
    return str(holder_name(organisation))


def fingerprint(document: dict[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _at(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def claim_trail(session: Session, serial: str) -> dict[str, Any]:
    """The trail of one serial with its ``fingerprint``. Raises ValidationFailed (not a
    serial) and NotFound (no such serial issued)."""
    found = find_serial(serial)
    if found is None or found[1] != found[2]:
        raise ValidationFailed(
            errors={
                "serial": [
                    Message("Write one serial as %(example)s.", example="SOM-P000042-2027-0000017")
                ]
            }
        )
    project_id, number, _last = found
    block = session.scalar(
        select(TokenBlock).where(
            TokenBlock.project_id == project_id,
            TokenBlock.first_serial <= number,
            TokenBlock.last_serial >= number,
        )
    )
    project = session.get(Project, project_id)
    if block is None or project is None:
        raise NotFound("No such serial.")
    holder = session.get(Organisation, block.holder_id) if block.holder_id else None
    settlement = session.scalar(select(Settlement).where(Settlement.project_id == project_id))
    evaluation = session.scalar(select(Evaluation).where(Evaluation.project_id == project_id))
    snapshot = (
        session.get(ValuationSnapshot, project.valuation_id) if project.valuation_id else None
    )
    document: dict[str, Any] = {
        "serial": f"{SERIAL_PREFIX}-P{project_id:06d}-{block.vintage}-{number:07d}",
        "block": {
            "serial_block": block.serial,
            "status": block.status.value,
            "frozen": block.status is BlockStatus.ISSUED and project.disputed,
            "holder": _holder(holder),
            "transfers": [
                {
                    "from": _holder(session.get(Organisation, t.from_organisation_id)),
                    "to": _holder(session.get(Organisation, t.to_organisation_id)),
                    "transferred_at": _at(t.transferred_at),
                }
                for t in transfers_of_serial(session, project_id, number)
            ],
            "issued_at": _at(block.issued_at),
        },
        "retirement": _retirement(session, block.retirement_id),
        "project": {
            "id": project.id,
            "reference": project.reference,
            "title": project.title,
            "organisation": project.organisation.name,
            "city": project.city,
            "start_date": project.start_date.isoformat(),
            "end_date": project.end_date.isoformat(),
            "disputed": project.disputed,
        },
        "disputes": [_dispute(c) for c in public_disputes(session, project.id)],
        "settlement": None
        if settlement is None
        else {
            "tokens_paid": settlement.tokens_paid,
            "v_target_cents": settlement.v_target_cents,
            "v_verified_cents": settlement.v_verified_cents,
            "tokens_minted": settlement.tokens_minted,
            "tokens_buffer": settlement.tokens_buffer,
            "settled_at": _at(settlement.finished_at or settlement.computed_at),
        },
        "outcomes": _outcomes(session, project, evaluation, snapshot),
        "evidence": _evidence(session, evaluation),
        "evaluation": _evaluation(session, evaluation),
        "valuation": _valuation(snapshot),
    }
    return {**document, "fingerprint": fingerprint(document)}


def _retirement(session: Session, retirement_id: int | None) -> dict[str, Any] | None:
    if retirement_id is None:
        return None
    found = session.get_one(Retirement, retirement_id)
    return {
        "id": found.id,
        "quantity": found.quantity,
        "beneficiary": found.beneficiary,
        "purpose": found.purpose.value,
        "claim": found.claim.value,
        "contract_reference": found.contract_reference,
        "retired_at": _at(found.retired_at),
        "certificate": f"/registry/retirements/{found.id}/certificate.pdf",
    }


def _outcomes(
    session: Session,
    project: Project,
    evaluation: Evaluation | None,
    snapshot: ValuationSnapshot | None,
) -> list[dict[str, Any]]:
    results: dict[int, EvaluationResult] = {}
    if evaluation is not None:
        results = {
            r.commitment_id: r
            for r in session.scalars(
                select(EvaluationResult).where(EvaluationResult.evaluation_id == evaluation.id)
            )
        }
    proposed = {
        line["commitment_id"]: line.get("proposed_grade", line["evidence_grade"])
        for line in (snapshot.inputs["lines"] if snapshot else [])
    }
    rows = []
    for c in project.outcomes:
        found = results.get(c.id)
        rows.append(
            {
                "outcome_type": c.outcome_type.code,
                "name": c.outcome_type.name,
                "target_quantity": c.target_quantity,
                "verified_quantity": found.verified_quantity if found else None,
                "proposed_grade": proposed.get(c.id, c.evidence_grade.value),
                "planned_grade": c.evidence_grade.value,
                "met_grade": found.met_grade.value if found else None,
            }
        )
    return rows


def _evidence(session: Session, evaluation: Evaluation | None) -> list[dict[str, Any]]:
    if evaluation is None:
        return []
    files = session.scalars(
        select(EvidenceFile)
        .where(EvidenceFile.evaluation_id == evaluation.id)
        .order_by(EvidenceFile.id)
    )
    return [
        {"sha256": f.sha256, "content_type": f.content_type, "size_bytes": f.size_bytes}
        for f in files
    ]


def _person(session: Session, user_id: int | None) -> dict[str, str] | None:
    if user_id is None:
        return None
    user = session.get_one(User, user_id)
    return {"name": user.name, "organisation": user.organisation.name}


def _evaluation(session: Session, evaluation: Evaluation | None) -> dict[str, Any] | None:
    if evaluation is None:
        return None
    project = session.get_one(Project, evaluation.project_id)
    accredited = accreditation_for(
        session, evaluation.evaluator_id, project, evaluation.assigned_at.date()
    )
    return {
        "state": evaluation.state.value,
        "evaluator": _person(session, evaluation.evaluator_id),
        "accreditation": None
        if accredited is None
        else {
            "body": accredited.body,
            "reference": accredited.reference,
            "themes": sorted(accredited.themes),
            "valid_from": accredited.valid_from.isoformat(),
            "valid_until": accredited.valid_until.isoformat(),
        },
        "declaration": None
        if evaluation.declared_at is None
        else {"text": evaluation.declaration, "signed_at": _at(evaluation.declared_at)},
        "assigned_at": _at(evaluation.assigned_at),
        "submitted_at": _at(evaluation.submitted_at),
        "approved_by": _person(session, evaluation.approved_by_id),
        "approved_at": _at(evaluation.approved_at),
    }


def _dispute(concern: Concern) -> dict[str, Any]:
    return {
        "id": concern.id,
        "state": concern.state.value,
        "reason": concern.dispute_reason,
        "disputed_at": _at(concern.disputed_at),
        "finding": concern.finding,
        "resolved_at": _at(concern.resolved_at),
        "corrected_quantities": concern.corrected,
        "v_verified_cents": concern.v_verified_cents,
        "tokens_over": concern.tokens_over,
        "tokens_cancelled": concern.tokens_cancelled,
    }


def _valuation(snapshot: ValuationSnapshot | None) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    return {
        "method_version": snapshot.method_version,
        "valued_at": _at(snapshot.created_at),
        "inputs": snapshot.inputs,
        "total_conservative_value_cents": snapshot.total_conservative_value_cents,
        "tokens_total": snapshot.tokens_total,
        "token_price_cents": snapshot.token_price_cents,
    }
