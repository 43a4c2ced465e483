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
