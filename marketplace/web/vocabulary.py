"""Words that reach the pages as data (states, themes, purposes, kinds).

The templates translate them with ``_(value)``; listing them here, marked with
``N_``, lets pybabel extract them into the catalogue (``make translations``).
"""

from __future__ import annotations


def N_(text: str) -> str:
    return text


VOCABULARY = (
    # project states
    N_("draft"),
    N_("submitted"),
    N_("valued"),
    N_("funding"),
    N_("funded"),
    N_("running"),
    N_("evaluating"),
    N_("settled"),
    N_("rejected"),
    N_("unfunded"),
    N_("withdrawn"),
    # themes
    N_("work"),
    N_("housing"),
    N_("youth"),
    N_("health"),
    N_("safety"),
    N_("education"),
    N_("wellbeing"),
    # pledge states (shown with spaces)
    N_("committed"),
    N_("cancelled"),
    N_("released"),
    N_("payment failed"),
    N_("paid"),
    N_("refunded"),
    # evaluation states
    N_("assigned"),
    N_("returned"),
    N_("approved"),
    N_("not assigned"),
    # e-mail states
    N_("pending"),
    N_("sending"),
    N_("sent"),
    N_("logged"),
    N_("failed"),
    N_("skipped"),
    # retirement purposes and claims
    N_("sroi obligation"),
    N_("csr voluntary"),
    N_("csrd report"),
    N_("contribution"),
    N_("offset"),
    # transfer kinds, token chart
    N_("cost tranche"),
    N_("premium"),
    N_("held"),
)

# Messages the services and the form schemas give, translated where pages show them
# (constant ones; a message with figures in it stays in English).
MESSAGES = (
    N_("A date such as 2027-12-31."),
    N_("A one-off outcome lasts one year with no drop-off."),
    N_("A positive whole number of cents."),
    N_("An account with this e-mail address already exists."),
    N_("An organisation with this name is already registered."),
    N_("At least one token."),
    N_("Between 1 and 255 characters."),
    N_("Choose entrepreneur or buyer."),
    N_("Commit to at least one outcome."),
    N_("Explain the decision (at least 10 characters)."),
    N_("Explain the override (at least 10 characters)."),
    N_("Funding has closed; the pledge can no longer be cancelled."),
    N_("Give at least one outcome line."),
    N_("Give one override per outcome."),
    N_("Given twice."),
    N_("Holdings belong to buyers."),
    N_("Name who the claim is made for."),
    N_("No settlement for this project."),
    N_("No such API token."),
    N_("No such evaluation."),
    N_("No such file."),
    N_("No such pledge."),
    N_("No such progress report."),
    N_("No such project."),
    N_("No such retirement."),
    N_("Not an active evaluator account."),
    N_("Not an outcome of this project."),
    N_("Not one of this project's outcomes."),
    N_("Only buyers pledge."),
    N_("Only the assigned evaluator records results."),
    N_("Only the assigned evaluator submits."),
    N_("Only the platform team sees the books."),
    N_("Only the project's organisation sees its pledges."),
    N_("Only the project's own organisation can close its funding."),
    N_("Only the project's own organisation can do this."),
    N_("Only the project's own organisation reports on it."),
    N_("Payout accounts belong to entrepreneurs."),
    N_("Say how the project is doing."),
    N_("Say what evidence supports the figure."),
    N_("Say what needs another look."),
    N_("Some of these serials were retired a moment ago."),
    N_("Stripe does not know this payment method."),
    N_("The end comes after the start."),
    N_("The evaluator belongs to the project's own organisation."),
    N_("The evaluator cannot approve its own evaluation."),
    N_("The evaluator's organisation pledged to this project."),
    N_("The funding deadline must be in the future."),
    N_("The grace period to pay this pledge has ended."),
    N_("The impact report is for buyers."),
    N_("The outbox is for the administrators."),
    N_("The project must end after it starts."),
    N_("The project must start after the funding deadline."),
    N_("The stored file is damaged; the administrators have been told."),
    N_("The tokens were taken by another buyer."),
    N_("This Idempotency-Key was first used with another request."),
    N_("This code is already in the catalogue."),
    N_("This page is for the expert panel and evaluators."),
    N_("Zero or more."),
    N_("Missing data for required field."),
    N_("Field may not be null."),
    N_("Not a valid string."),
    N_("Not a valid integer."),
    N_("Not a valid number."),
    N_("Not a valid date."),
    N_("Not a valid list."),
    N_("Must be a whole number."),
    N_("Unknown field."),
)
