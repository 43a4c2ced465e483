"""The scheduler's sweep that writes receipts and credit notes for what Stripe charged
and refunded since the last tick."""

from __future__ import annotations

from datetime import datetime

from marketplace.core.sweeps import SweepContext
from marketplace.receipts.services import BATCH, Issuer, issue


def issue_receipts(ctx: SweepContext, now: datetime) -> str:
    """Every due document, a batch to a transaction (each batch's numbers with it)."""
    issuer = Issuer.of(ctx.settings)
    receipts = notes = 0
    while True:
        with ctx.db.transaction() as session:
            made, noted = issue(session, issuer, now=now)
        receipts, notes = receipts + made, notes + noted
        if made < BATCH and noted < BATCH:
            return f"{receipts} receipts, {notes} credit notes"
