"""Finding 3 of issue 15: signing out ends the session everywhere, and a session ends
12 hours after sign-in whatever the activity."""

from __future__ import annotations

from tests.conftest import csrf_from
from tests.factories import UserFactory


def test_a_cookie_copied_before_sign_out_opens_nothing_after_it(app, web):
    user = UserFactory()
    web.login(user.email)
    assert web.client.get("/account").status_code == 200
    stolen = web.client.get_cookie("som_session").value
    page = web.client.get("/account").get_data(as_text=True)

    web.submit("/account", {}, action="/logout")

    thief = app.test_client()
    thief.set_cookie("som_session", stolen)
    assert thief.get("/account").status_code == 302  # to the log-in page
    minted = thief.post(
        "/account/tokens",
        data={"name": "mine", "scopes": ["read", "write", "money"], "csrf_token": csrf_from(page)},
    )
    assert minted.status_code in (302, 400)
    assert "som_" not in minted.get_data(as_text=True)  # no token shown


def test_a_session_ends_twelve_hours_after_sign_in_however_busy(app, web, clock):
    user = UserFactory()
    web.login(user.email)
    answers = []
    for _ in range(26):  # a request every 29 minutes: never idle
        clock.advance(minutes=29)
        answers.append(web.client.get("/account").status_code)

    # Alive through 24 x 29 = 696 minutes; the 25th request (725 minutes) is past 12 hours.
    assert answers[:24] == [200] * 24
    assert answers[24] == 302
    assert web.client.get("/account").status_code == 302  # and for good
