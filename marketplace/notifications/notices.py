"""Every notice the platform sends: one function per event.

Each function owns its event's key (so a repeated sweep notifies once), its
recipients (which organisations, and which person where it is one), its link
and its message. Services call these and never build keys, links or texts
themselves. Subjects (projects, pledges) are passed as plain values or any
object with the named attributes: this module sits below the features.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from marketplace.notifications import messages
from marketplace.notifications.services import notice as _one
from marketplace.notifications.services import notify_many


class ProjectLike(Protocol):
    id: int
    title: str
    organisation_id: int


def _to_each(organisations: Iterable[int], key: str, *rest: Any) -> list[dict[str, Any]]:
    """One notice for each organisation, keyed ``{key}:org:{id}``; ``rest`` is ``_one``'s
    arguments after the organisation (kind, message, params, link, now)."""
    return [_one(f"{key}:org:{org}", org, *rest) for org in organisations]


def _send(session: Session, notices: list[dict[str, Any]]) -> int:
    return notify_many(session, notices)


def project_link(project_id: int) -> str:
    return f"/projects/{project_id}"


def pledge_link(pledge_id: int) -> str:
    return f"/pledges#pledge-{pledge_id}"


# --- accounts --------------------------------------------------------------------------------


class WarningLike(Protocol):
    @property
    def user_id(self) -> int: ...
    @property
    def organisation_id(self) -> int: ...
    @property
    def failures(self) -> int: ...


def many_failed_logins(session: Session, warning: WarningLike | None, *, now: datetime) -> int:
    """To the person whose account saw many failed log-ins: once an hour at most."""
    if warning is None:
        return 0
    hour = now.strftime("%Y%m%d%H")
    return _send(
        session,
        [
            _one(
                f"failed_logins:user:{warning.user_id}:{hour}",
                warning.organisation_id,
                "failed_logins",
                messages.FAILED_LOGINS,
                {"failures": warning.failures},
                "/account",
                now,
                user_id=warning.user_id,
            )
        ],
    )


# --- submissions --------------------------------------------------------------------------


def project_valued(
    session: Session,
    project: ProjectLike,
    *,
    snapshot_id: int,
    tokens: int,
    price_cents: int,
    threshold: int,
    now: datetime,
) -> int:
    message = messages.VALUED if price_cents else messages.VALUED_AT_NOTHING
    params = {
        "project": project.title,
        "tokens": tokens,
        "price_cents": price_cents,
        "threshold": threshold,
    }
    key = f"valued:project:{project.id}:snapshot:{snapshot_id}"
    return _send(
        session,
        [
            _one(
                key,
                project.organisation_id,
                "submission_decided",
                message,
                params,
                project_link(project.id),
                now,
            )
        ],
    )


def project_listed(
    session: Session,
    project: ProjectLike,
    *,
    deadline: date,
    tokens: int,
    threshold: int,
    now: datetime,
) -> int:
    params = {
        "project": project.title,
        "deadline_date": deadline.isoformat(),
        "tokens": tokens,
        "threshold": threshold,
    }
    return _send(
        session,
        [
            _one(
                f"listed:project:{project.id}",
                project.organisation_id,
                "project_listed",
                messages.LISTED,
                params,
                project_link(project.id),
                now,
            )
        ],
    )


def project_rejected(session: Session, project: ProjectLike, *, reason: str, now: datetime) -> int:
    return _send(
        session,
        [
            _one(
                f"rejected:project:{project.id}",
                project.organisation_id,
                "submission_decided",
                messages.REJECTED,
                {"project": project.title, "reason": reason},
                project_link(project.id),
                now,
            )
        ],
    )


# --- funding ----------------------------------------------------------------------------------


def threshold_reached(
    session: Session,
    project: ProjectLike,
    *,
    pledged: int,
    total: int,
    threshold: int,
    deadline: date,
    now: datetime,
) -> int:
    params = {
        "project": project.title,
        "pledged": pledged,
        "total": total,
        "threshold": threshold,
        "deadline_date": deadline.isoformat(),
    }
    return _send(
        session,
        [
            _one(
                f"threshold:project:{project.id}",
                project.organisation_id,
                "threshold_reached",
                messages.THRESHOLD_REACHED,
                params,
                project_link(project.id),
                now,
            )
        ],
    )


def funding_closed(
    session: Session,
    project: ProjectLike,
    buyers: Sequence[int],
    *,
    funded: bool,
    pledged: int,
    total: int,
    threshold: int,
    start: date,
    now: datetime,
) -> int:
    """To the buyers and the owner, once each, funded or not."""
    to_buyers, to_owner = (
        (messages.FUNDED_BUYER, messages.FUNDED_OWNER)
        if funded
        else (messages.UNFUNDED_BUYER, messages.UNFUNDED_OWNER)
    )
    params = {
        "project": project.title,
        "pledged": pledged,
        "total": total,
        "threshold": threshold,
        "start_date": start.isoformat(),
    }
    key = f"funding_closed:project:{project.id}"
    return _send(
        session,
        [
            *_to_each(
                buyers, key, "funding_closed", to_buyers, params, project_link(project.id), now
            ),
            _one(
                f"{key}:owner",
                project.organisation_id,
                "funding_closed",
                to_owner,
                params,
                f"/projects/{project.id}/funding",
                now,
            ),
        ],
    )


def project_withdrawn(
    session: Session, project: ProjectLike, buyers: Sequence[int], *, now: datetime
) -> int:
    """To the buyers whose pledges were released because the project was withdrawn."""
    return _send(
        session,
        _to_each(
            buyers,
            f"withdrawn:project:{project.id}",
            "project_withdrawn",
            messages.WITHDRAWN_BUYER,
            {"project": project.title},
            "/pledges",
            now,
        ),
    )


def payment_failed(
    session: Session,
    *,
    pledge_id: int,
    organisation_id: int,
    project_title: str,
    tokens: int,
    code: str,
    until: datetime,
    now: datetime,
) -> int:
    params = {
        "project": project_title,
        "tokens": tokens,
        "code": code,
        "until_at": until.isoformat(),
    }
    return _send(
        session,
        [
            _one(
                f"payment_failed:pledge:{pledge_id}",
                organisation_id,
                "payment_failed",
                messages.PAYMENT_FAILED,
                params,
                pledge_link(pledge_id),
                now,
            )
        ],
    )


def debit_failed(
    session: Session,
    *,
    pledge_id: int,
    organisation_id: int,
    project_title: str,
    tokens: int,
    code: str,
    until: datetime,
    now: datetime,
) -> int:
    params = {"project": project_title, "tokens": tokens, "code": code, "until_at": until}
    return _send(
        session,
        [
            _one(
                f"payment_failed:pledge:{pledge_id}",
                organisation_id,
                "payment_failed",
                messages.DEBIT_FAILED,
                {**params, "until_at": until.isoformat()},
                pledge_link(pledge_id),
                now,
            )
        ],
    )


def transfer_due(
    session: Session,
    *,
    pledge_id: int,
    organisation_id: int,
    project_title: str,
    amount_cents: int,
    instructions: dict[str, str],
    until: datetime,
    now: datetime,
) -> int:
    params = {
        "project": project_title,
        "amount_cents": amount_cents,
        "iban": instructions.get("iban", ""),
        "bic": instructions.get("bic", ""),
        "reference": instructions.get("reference", ""),
        "until_at": until.isoformat(),
    }
    return _send(
        session,
        [
            _one(
                f"transfer_due:pledge:{pledge_id}",
                organisation_id,
                "transfer_due",
                messages.TRANSFER_DUE,
                params,
                pledge_link(pledge_id),
                now,
            )
        ],
    )


def transfer_partly_received(
    session: Session,
    *,
    pledge_id: int,
    organisation_id: int,
    project_title: str,
    amount_cents: int,
    received_cents: int,
    reference: str,
    until: datetime,
    now: datetime,
) -> int:
    params = {
        "project": project_title,
        "amount_cents": amount_cents,
        "received_cents": received_cents,
        "remaining_cents": amount_cents - received_cents,
        "reference": reference,
        "until_at": until.isoformat(),
    }
    return _send(
        session,
        [
            _one(
                f"transfer_partly_received:pledge:{pledge_id}:{received_cents}",
                organisation_id,
                "transfer_due",
                messages.TRANSFER_PARTLY_RECEIVED,
                params,
                pledge_link(pledge_id),
                now,
            )
        ],
    )


def transfer_unpaid(
    session: Session,
    *,
    pledge_id: int,
    organisation_id: int,
    project_title: str,
    tokens: int,
    amount_cents: int,
    until: datetime,
    now: datetime,
) -> int:
    params = {
        "project": project_title,
        "tokens": tokens,
        "amount_cents": amount_cents,
        "until_at": until.isoformat(),
    }
    return _send(
        session,
        [
            _one(
                f"transfer_unpaid:pledge:{pledge_id}",
                organisation_id,
                "payment_failed",
                messages.TRANSFER_UNPAID,
                params,
                pledge_link(pledge_id),
                now,
            )
        ],
    )


def grace_ending(
    session: Session,
    *,
    pledge_id: int,
    organisation_id: int,
    project_title: str,
    tokens: int,
    until: datetime,
    now: datetime,
) -> int:
    params = {"project": project_title, "tokens": tokens, "until_at": until.isoformat()}
    return _send(
        session,
        [
            _one(
                f"grace_ending:pledge:{pledge_id}",
                organisation_id,
                "grace_ending",
                messages.GRACE_ENDING,
                params,
                pledge_link(pledge_id),
                now,
            )
        ],
    )


def surplus_refunded(
    session: Session,
    *,
    payment_id: int,
    pledge_id: int,
    organisation_id: int,
    project_title: str,
    amount_cents: int,
    now: datetime,
) -> int:
    """A second successful charge of one pledge was refunded at once."""
    params = {"project": project_title, "amount_cents": amount_cents}
    return _send(
        session,
        [
            _one(
                f"surplus:payment:{payment_id}",
                organisation_id,
                "surplus_refunded",
                messages.SURPLUS_REFUNDED,
                params,
                pledge_link(pledge_id),
                now,
            )
        ],
    )


def project_started(
    session: Session,
    project: ProjectLike,
    buyers: Sequence[int],
    *,
    amount_cents: int,
    fee_cents: int,
    end: date,
    now: datetime,
) -> int:
    key = f"started:project:{project.id}"
    return _send(
        session,
        [
            _one(
                f"{key}:owner",
                project.organisation_id,
                "project_started",
                messages.STARTED_OWNER,
                {"project": project.title, "amount_cents": amount_cents, "fee_cents": fee_cents},
                f"/projects/{project.id}/funding",
                now,
            ),
            *_to_each(
                buyers,
                key,
                "project_started",
                messages.STARTED_BUYER,
                {"project": project.title, "end_date": end.isoformat()},
                project_link(project.id),
                now,
            ),
        ],
    )


# --- evaluation and settlement -------------------------------------------------------------------


def evaluation_assigned(
    session: Session,
    *,
    evaluation_id: int,
    evaluator_id: int,
    evaluator_organisation_id: int,
    project_title: str,
    organisation_name: str,
    end: date,
    now: datetime,
) -> int:
    params = {
        "project": project_title,
        "organisation": organisation_name,
        "end_date": end.isoformat(),
    }
    return _send(
        session,
        [
            _one(
                # per evaluator: an evaluation handed to another evaluator tells that one
                f"evaluation_assigned:evaluation:{evaluation_id}:user:{evaluator_id}",
                evaluator_organisation_id,
                "evaluation_assigned",
                messages.EVALUATION_ASSIGNED,
                params,
                f"/evaluations/{evaluation_id}",
                now,
                user_id=evaluator_id,
            )
        ],
    )


def declaration_needed(
    session: Session,
    *,
    evaluation_id: int,
    evaluator_id: int,
    evaluator_organisation_id: int,
    project_title: str,
    now: datetime,
) -> int:
    return _send(
        session,
        [
            _one(
                f"declaration_needed:evaluation:{evaluation_id}:user:{evaluator_id}",
                evaluator_organisation_id,
                "declaration_needed",
                messages.DECLARATION_NEEDED,
                {"project": project_title},
                f"/evaluations/{evaluation_id}",
                now,
                user_id=evaluator_id,
            )
        ],
    )


def evaluation_returned(
    session: Session,
    *,
    evaluation_id: int,
    evaluator_id: int,
    evaluator_organisation_id: int,
    project_title: str,
    reason: str,
    now: datetime,
) -> int:
    return _send(
        session,
        [
            _one(
                # Each return is its own event: an evaluation can be returned more than once.
                f"evaluation_returned:evaluation:{evaluation_id}:{now.isoformat()}",
                evaluator_organisation_id,
                "evaluation_returned",
                messages.EVALUATION_RETURNED,
                {"project": project_title, "reason": reason},
                f"/evaluations/{evaluation_id}",
                now,
                user_id=evaluator_id,
            )
        ],
    )


class ShareLike(Protocol):
    organisation_id: int
    tokens_minted: int
    tokens_paid: int
    refund_cents: int


def project_settled(
    session: Session,
    project: ProjectLike,
    shares: Iterable[ShareLike],
    *,
    minted: int,
    premium_cents: int,
    now: datetime,
) -> int:
    """To each buyer with its own figures, and to the owner."""
    buyers = [
        _one(
            f"settled:project:{project.id}:org:{share.organisation_id}",
            share.organisation_id,
            "project_settled",
            messages.SETTLED_BUYER if share.refund_cents else messages.SETTLED_BUYER_NO_REFUND,
            {
                "project": project.title,
                "minted": share.tokens_minted,
                "paid": share.tokens_paid,
                "refund_cents": share.refund_cents,
            },
            "/holdings",
            now,
        )
        for share in shares
    ]
    owner = _one(
        f"settled:project:{project.id}:owner",
        project.organisation_id,
        "project_settled",
        messages.SETTLED_OWNER,
        {"project": project.title, "minted": minted, "premium_cents": premium_cents},
        f"/projects/{project.id}/settlement",
        now,
    )
    return _send(session, [*buyers, owner])


def certificate_ready(
    session: Session,
    *,
    retirement_id: int,
    organisation_id: int,
    quantity: int,
    beneficiary: str,
    now: datetime,
) -> int:
    params = {"id": retirement_id, "quantity": quantity, "beneficiary": beneficiary}
    return _send(
        session,
        [
            _one(
                f"retired:retirement:{retirement_id}",
                organisation_id,
                "certificate_ready",
                messages.CERTIFICATE_READY,
                params,
                f"/registry/retirements/{retirement_id}",
                now,
            )
        ],
    )


# --- concerns and disputes ---------------------------------------------------------------


class PersonLike(Protocol):
    id: int
    organisation_id: int


def concern_filed(
    session: Session,
    *,
    concern_id: int,
    project_title: str,
    organisation_name: str,
    admins: Iterable[PersonLike],
    now: datetime,
) -> int:
    """To each admin, who triages it."""
    return _send(
        session,
        [
            _one(
                f"concern_filed:concern:{concern_id}:user:{admin.id}",
                admin.organisation_id,
                "concern_filed",
                messages.CONCERN_FILED,
                {"project": project_title, "organisation": organisation_name},
                f"/admin/concerns/{concern_id}",
                now,
                user_id=admin.id,
            )
            for admin in admins
        ],
    )


def concern_dismissed(
    session: Session,
    *,
    concern_id: int,
    filer: PersonLike,
    project_id: int,
    project_title: str,
    reason: str,
    now: datetime,
) -> int:
    return _send(
        session,
        [
            _one(
                f"concern_dismissed:concern:{concern_id}",
                filer.organisation_id,
                "concern_decided",
                messages.CONCERN_DISMISSED,
                {"project": project_title, "reason": reason},
                project_link(project_id),
                now,
                user_id=filer.id,
            )
        ],
    )


def dispute_event(
    session: Session,
    *,
    event: str,
    concern_id: int,
    project: ProjectLike,
    organisations: Iterable[int],
    params: dict[str, Any],
    now: datetime,
) -> int:
    """A dispute opened, dismissed or upheld: to the project's owner, the organisations
    holding or having retired its tokens, and the one that filed the concern."""
    message = {
        "opened": messages.DISPUTE_OPENED,
        "dismissed": messages.DISPUTE_DISMISSED,
        "upheld": messages.DISPUTE_UPHELD,
    }[event]
    everyone = dict.fromkeys([project.organisation_id, *organisations])
    return _send(
        session,
        _to_each(
            everyone,
            f"dispute_{event}:concern:{concern_id}",
            "dispute",
            message,
            {"project": project.title, **params},
            project_link(project.id),
            now,
        ),
    )


# --- social-return obligations -------------------------------------------------------------


def obligation_link(obligation_id: int) -> str:
    return f"/obligations/{obligation_id}"


def obligation_registered(
    session: Session,
    *,
    obligation_id: int,
    authority_id: int,
    supplier: str,
    contract: str,
    obligation_cents: int,
    now: datetime,
) -> int:
    """To the authority, which accepts or rejects it."""
    return _send(
        session,
        _to_each(
            [authority_id],
            f"obligation_registered:obligation:{obligation_id}",
            "obligation",
            messages.OBLIGATION_REGISTERED,
            {"supplier": supplier, "contract": contract, "obligation_cents": obligation_cents},
            obligation_link(obligation_id),
            now,
        ),
    )


def obligation_decided(
    session: Session,
    *,
    obligation_id: int,
    buyer_id: int,
    authority: str,
    contract: str,
    accepted: bool,
    reason: str,
    now: datetime,
) -> int:
    """To the supplier: its obligation accepted or rejected."""
    params = {"authority": authority, "contract": contract}
    if not accepted:
        params["reason"] = reason
    return _send(
        session,
        _to_each(
            [buyer_id],
            f"obligation_decided:obligation:{obligation_id}",
            "obligation",
            messages.OBLIGATION_ACCEPTED if accepted else messages.OBLIGATION_REJECTED,
            params,
            obligation_link(obligation_id),
            now,
        ),
    )


def credit_made(
    session: Session,
    *,
    credit_id: int,
    obligation_id: int,
    authority_id: int,
    supplier: str,
    contract: str,
    credit_cents: int,
    now: datetime,
) -> int:
    """To the authority, which signs the credit off or rejects it."""
    return _send(
        session,
        _to_each(
            [authority_id],
            f"credit_made:credit:{credit_id}",
            "obligation_credit",
            messages.CREDIT_MADE,
            {"supplier": supplier, "contract": contract, "credit_cents": credit_cents},
            obligation_link(obligation_id),
            now,
        ),
    )


def credit_decided(
    session: Session,
    *,
    credit_id: int,
    obligation_id: int,
    buyer_id: int,
    authority: str,
    contract: str,
    credit_cents: int,
    signed_off: bool,
    reason: str,
    now: datetime,
) -> int:
    """To the supplier: a credit signed off or rejected."""
    params: dict[str, Any] = {
        "authority": authority,
        "contract": contract,
        "credit_cents": credit_cents,
    }
    if not signed_off:
        params["reason"] = reason
    return _send(
        session,
        _to_each(
            [buyer_id],
            f"credit_decided:credit:{credit_id}",
            "obligation_credit",
            messages.CREDIT_SIGNED_OFF if signed_off else messages.CREDIT_REJECTED,
            params,
            obligation_link(obligation_id),
            now,
        ),
    )
