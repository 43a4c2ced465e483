"""The notices' texts, as catalogue entries with named parameters.

A notice stores the English template and its parameters; each reader sees it in
their own language (the pages translate the template), and the e-mail goes out
in English. Parameters are formatted by their name: ``*_cents`` as money,
``*_date`` as a date, ``*_at`` as an instant, other numbers as numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal


def N_(text: str) -> str:
    return text


PAYMENT_FAILED = (
    N_("Payment needed for %(project)s"),
    N_(
        "We could not charge your card for %(tokens)s tokens of %(project)s (%(code)s). "
        "Please pay before %(until_at)s, or the pledge is cancelled."
    ),
)
DEBIT_FAILED = (
    N_("Direct debit failed for %(project)s"),
    N_(
        "Your bank did not pay the direct debit for %(tokens)s tokens of %(project)s "
        "(%(code)s). Please pay by card before %(until_at)s, or the pledge is cancelled."
    ),
)
TRANSFER_DUE = (
    N_("Please transfer %(amount_cents)s for %(project)s"),
    N_(
        "Funding for %(project)s has closed. Please transfer %(amount_cents)s to IBAN "
        "%(iban)s (BIC %(bic)s) with the reference %(reference)s before %(until_at)s. The "
        "invoice is on your pledges page."
    ),
)
TRANSFER_PARTLY_RECEIVED = (
    N_("Part of your transfer for %(project)s has arrived"),
    N_(
        "We have received %(received_cents)s of %(amount_cents)s for %(project)s. Please "
        "transfer the remaining %(remaining_cents)s with the reference %(reference)s before "
        "%(until_at)s."
    ),
)
TRANSFER_UNPAID = (
    N_("Pledge for %(project)s cancelled: the transfer did not arrive"),
    N_(
        "The %(amount_cents)s for %(tokens)s tokens of %(project)s did not arrive in full by "
        "%(until_at)s, so the pledge is cancelled. Whatever part you transferred is returned "
        "to your account."
    ),
)
GRACE_ENDING = (
    N_("Last day to pay for %(project)s"),
    N_(
        "Your pledge of %(tokens)s tokens of %(project)s is still unpaid. Pay before "
        "%(until_at)s, or it is cancelled."
    ),
)
THRESHOLD_REACHED = (
    N_("%(project)s reached its threshold"),
    N_(
        "%(pledged)s of %(total)s tokens are pledged; the threshold is %(threshold)s. Funding "
        "stays open until %(deadline_date)s, or you can close it now."
    ),
)
FUNDED_BUYER = (
    N_("Funding closed: %(project)s is funded"),
    N_(
        "Funding for %(project)s closed with %(pledged)s tokens pledged. Your pledge is now "
        "paid as you chose: charged to your card, debited from your account, or, for a bank "
        "transfer, you receive the IBAN and reference."
    ),
)
FUNDED_OWNER = (
    FUNDED_BUYER[0],
    N_(
        "Funding closed with %(pledged)s of %(total)s tokens pledged. The pledges are charged "
        "now; the cost tranche follows on %(start_date)s."
    ),
)
UNFUNDED_BUYER = (
    N_("Funding closed: %(project)s did not reach its threshold"),
    N_(
        "%(project)s did not reach its threshold of %(threshold)s tokens. Your pledge is "
        "released and nothing is charged."
    ),
)
UNFUNDED_OWNER = (
    UNFUNDED_BUYER[0],
    N_(
        "%(project)s did not reach its threshold of %(threshold)s tokens. Every pledge is "
        "released and nothing is charged."
    ),
)
STARTED_OWNER = (
    N_("%(project)s has started"),
    N_(
        "The cost tranche of %(amount_cents)s (after the platform fee of %(fee_cents)s) is on "
        "its way to your payout account."
    ),
)
STARTED_BUYER = (
    STARTED_OWNER[0],
    N_(
        "%(project)s reached its threshold and starts today; its evaluation follows the end "
        "date, %(end_date)s."
    ),
)
VALUED = (
    N_("%(project)s is valued"),
    N_(
        "The expert panel valued %(project)s at %(tokens)s tokens of %(price_cents)s; the "
        "threshold is %(threshold)s. It is listed for funding next."
    ),
)
VALUED_AT_NOTHING = (
    VALUED[0],
    N_("The expert panel valued %(project)s at 0 tokens: it cannot be listed."),
)
LISTED = (
    N_("%(project)s is listed for funding"),
    N_(
        "%(project)s is public and open for pledges until %(deadline_date)s: %(tokens)s "
        "tokens, threshold %(threshold)s."
    ),
)
REJECTED = (
    N_("%(project)s was not accepted"),
    N_("The expert panel turned %(project)s down: %(reason)s"),
)
EVALUATION_ASSIGNED = (
    N_("You are asked to evaluate %(project)s"),
    N_(
        "The expert panel assigned you to verify the outcomes of %(project)s "
        "(%(organisation)s), which ended on %(end_date)s."
    ),
)
DECLARATION_NEEDED = (
    N_("Declare any conflict of interest for %(project)s"),
    N_(
        "Before you record results for %(project)s, sign the conflict-of-interest "
        "declaration on the evaluation page. It is shown on the public claim trail."
    ),
)
EVALUATION_RETURNED = (
    N_("Your evaluation of %(project)s was returned"),
    N_("The panel returned your evaluation of %(project)s: %(reason)s"),
)
SETTLED_BUYER = (
    N_("%(project)s is settled"),
    N_(
        "The evaluator verified the outcomes of %(project)s. You receive %(minted)s of your "
        "%(paid)s tokens and a refund of %(refund_cents)s."
    ),
)
SETTLED_BUYER_NO_REFUND = (
    SETTLED_BUYER[0],
    N_(
        "The evaluator verified the outcomes of %(project)s. You receive %(minted)s of your "
        "%(paid)s tokens."
    ),
)
SETTLED_OWNER = (
    SETTLED_BUYER[0],
    N_(
        "%(minted)s tokens are minted for the verified outcomes; the success premium of "
        "%(premium_cents)s (before the fee) is on its way to your payout account."
    ),
)
CONCERN_FILED = (
    N_("A concern about %(project)s was filed"),
    N_("%(organisation)s filed a concern about the settled project %(project)s. Triage it."),
)
CONCERN_DISMISSED = (
    N_("Your concern about %(project)s was dismissed"),
    N_("The platform looked into your concern about %(project)s and dismissed it: %(reason)s"),
)
DISPUTE_OPENED = (
    N_("The results of %(project)s are disputed"),
    N_(
        "A dispute about the verified results of %(project)s is open: %(reason)s. Until it "
        "is resolved, the project's tokens that are not retired cannot be retired."
    ),
)
DISPUTE_DISMISSED = (
    N_("The dispute about %(project)s is dismissed"),
    N_("The dispute about %(project)s is dismissed: %(reason)s. Its tokens can be retired again."),
)
DISPUTE_UPHELD = (
    N_("The dispute about %(project)s is upheld"),
    N_(
        "The dispute about %(project)s is upheld: %(reason)s. %(over)s tokens were minted "
        "in excess; %(cancelled)s were cancelled from the buffer pool. Your tokens and "
        "retirements stay valid."
    ),
)
CERTIFICATE_READY = (
    N_("Certificate of retirement no. %(id)s is ready"),
    N_(
        "%(quantity)s tokens are retired on behalf of %(beneficiary)s. The certificate (PDF) "
        "and the public page are at the link below."
    ),
)
WITHDRAWN_BUYER = (
    N_("%(project)s was withdrawn"),
    N_(
        "The entrepreneur withdrew %(project)s while its funding was open. Your pledge is "
        "released: nothing was charged."
    ),
)
SURPLUS_REFUNDED = (
    N_("A second payment for %(project)s was refunded"),
    N_(
        "Your pledge for %(project)s was paid twice. The second payment of %(amount_cents)s "
        "is refunded to the card it came from."
    ),
)
OBLIGATION_REGISTERED = (
    N_("%(supplier)s registered a social-return obligation"),
    N_(
        "%(supplier)s registered its social-return obligation of %(obligation_cents)s under "
        "the contract %(contract)s. Accept or reject it."
    ),
)
OBLIGATION_ACCEPTED = (
    N_("%(authority)s accepted your obligation"),
    N_(
        "%(authority)s accepted your social-return obligation under the contract "
        "%(contract)s. Retirements for it now count toward it."
    ),
)
OBLIGATION_REJECTED = (
    N_("%(authority)s rejected your obligation"),
    N_(
        "%(authority)s rejected your social-return obligation under the contract "
        "%(contract)s: %(reason)s"
    ),
)
CREDIT_MADE = (
    N_("%(supplier)s retired tokens for its obligation"),
    N_(
        "%(supplier)s retired tokens for its social-return obligation under the contract "
        "%(contract)s, credited %(credit_cents)s. Sign the credit off or reject it."
    ),
)
CREDIT_SIGNED_OFF = (
    N_("%(authority)s signed off your credit"),
    N_(
        "%(authority)s signed off the credit of %(credit_cents)s toward your social-return "
        "obligation under the contract %(contract)s."
    ),
)
CREDIT_REJECTED = (
    N_("%(authority)s rejected your credit"),
    N_(
        "%(authority)s rejected the credit of %(credit_cents)s toward your social-return "
        "obligation under the contract %(contract)s: %(reason)s. It no longer counts; the "
        "retirement stays final."
    ),
)
FAILED_LOGINS = (
    N_("Failed attempts to log in to your account"),
    N_(
        "There were %(failures)s failed attempts to log in to your account in the last hour. "
        "If that was not you, choose a new password; attempts from addresses you have not "
        "used are slowed down, yours are not."
    ),
)

PLAIN = {"id", "code"}


def formatted(params: dict, *, locale: str, currency: str, zone: str) -> dict[str, str]:
    out = {}
    for name, value in params.items():
        if name.endswith("_cents"):
            out[name] = format_currency(Decimal(value) / 100, currency, locale=locale)
        elif name.endswith("_date"):
            out[name] = format_date(date.fromisoformat(value), "long", locale=locale)
        elif name.endswith("_at"):
            # as the pages write an instant: 22 November 2026, 09:00
            instant = datetime.fromisoformat(value).astimezone(ZoneInfo(zone))
            written_day = format_date(instant.date(), "long", locale=locale)
            out[name] = f"{written_day}, {format_time(instant, 'short', locale=locale)}"
        elif isinstance(value, int) and name not in PLAIN:
            out[name] = format_decimal(value, locale=locale)
        else:
            out[name] = str(value)
    return out


def render(
    template: str,
    params: dict | None,
    *,
    translate: Callable[[str], str] = lambda text: text,
    locale: str = "en_GB",
    currency: str = "EUR",
    zone: str = "Europe/Amsterdam",
) -> str:
    """The template in the reader's language with its parameters for the reader's locale."""
    if params is None:  # a notice from before parameters: stored as final text
        return template
    return translate(template) % formatted(params, locale=locale, currency=currency, zone=zone)
