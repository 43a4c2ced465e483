"""Social-return obligations for the tests' worlds, made by the services as a supplier
and its authority would (obligations are never made by a factory)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from marketplace.obligations import services as obligations


def obligation(session, supplier, authority_organisation_id: int, reference: str, now: datetime):
    """A pending obligation of 5% of a EUR 1,200,000.00 contract; its id."""
    return obligations.register(
        session,
        supplier,
        obligations.NewObligation(
            authority_organisation_id=authority_organisation_id,
            contract_reference=reference,
            contract_title="Schoonmaak stadhuis",
            contract_value_cents=120_000_000,
            percentage=Decimal("0.05"),
            due_date=date(2030, 6, 30),
        ),
        now=now,
    ).id


def accepted_obligation(session, supplier, authority, reference: str, now: datetime) -> int:
    """An obligation its authority (a person) has accepted; its id."""
    made = obligation(session, supplier, authority.organisation_id, reference, now)
    obligations.accept(session, authority, made, now=now)
    return made
