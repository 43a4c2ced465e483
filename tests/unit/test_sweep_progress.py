"""A long sweep says how far it is: done of total, the rate, and the time left."""

from __future__ import annotations

import logging

from marketplace.core.sweeps import Progress


def test_progress_speaks_every_ten_seconds_with_the_rate_and_the_time_left(caplog):
    moments = iter([0.0, 5.0, 10.0, 12.0, 25.0, 30.0])
    progress = Progress(
        "refunds", 2000, logging.getLogger("test.progress"), clock=lambda: next(moments)
    )

    with caplog.at_level(logging.INFO, logger="test.progress"):
        progress.add(100)  # at 5 s: too soon to speak
        progress.add(150)  # at 10 s: 250 done, 25.0/s, 70 s left
        progress.add(50)  # at 12 s: too soon again
        progress.add(200)  # at 25 s: 500 done, 20.0/s, 75 s left
        progress.add(1500)  # at 30 s: all done, the sweep's own summary says so

    assert caplog.messages == [
        "refunds: 250 of 2,000 done, 25.0/s, 70 s left at this rate",
        "refunds: 500 of 2,000 done, 20.0/s, 75 s left at this rate",
    ]
    assert progress.done == 2000


def test_the_rate_limits_follow_the_key_less_a_margin_or_what_is_configured():
    import pytest

    from marketplace.payments.pacing import Limits

    assert Limits.parse("", "sk_test_abc") == Limits(25 * 0.95, 25 * 0.95)
    assert Limits.parse("", "sk_live_abc") == Limits(100 * 0.95, 25 * 0.95)
    assert Limits.parse("", "rk_live_abc") == Limits(100 * 0.95, 25 * 0.95)
    assert Limits.parse("50/20", "sk_live_abc") == Limits(50, 20)
    assert Limits.parse(" 30 ", "sk_test_abc") == Limits(30, 30)
    assert Limits.parse("OFF", "sk_live_abc") is None
    for bad in ("0/25", "25/-1", "fast", "20000"):
        with pytest.raises(ValueError):
            Limits.parse(bad, "sk_test_abc")


def test_a_limit_is_named_by_the_method_and_the_route_with_its_ids_left_out():
    from marketplace.payments.gateway import endpoint_of

    base = "http://127.0.0.1:8420"
    assert endpoint_of("post", f"{base}/v1/payment_intents") == "POST /v1/payment_intents"
    assert endpoint_of("get", f"{base}/v1/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa") == (
        "GET /v1/payment_intents/{id}"
    )
    assert endpoint_of("post", f"{base}/v1/payment_intents/pi_aTk8lwNFZKrRE1/cancel") == (
        "POST /v1/payment_intents/{id}/cancel"
    )
    assert endpoint_of("post", f"{base}/v1/account_links") == "POST /v1/account_links"
    assert endpoint_of("get", f"{base}/v1/accounts/acct_1Nv0FGQ9RKHgCVdK?x=1") == (
        "GET /v1/accounts/{id}"
    )
