"""Finding 8 of issue 15: nobody elsewhere can lock a person out, and the person hears of
many failed attempts."""

from __future__ import annotations

from sqlalchemy import select

from marketplace.notifications.models import Notification
from tests.factories import DEFAULT_PASSWORD, UserFactory

EMAIL = "lotte@havenstad.example"
WRONG = {"email": EMAIL, "password": "wrong password"}
RIGHT = {"email": EMAIL, "password": DEFAULT_PASSWORD}


def login(client, body: dict, address: str) -> int:
    answer = client.post("/api/v1/auth/tokens", json=body, environ_base={"REMOTE_ADDR": address})
    return answer.status_code


def test_an_attacker_elsewhere_cannot_lock_the_person_out(client, clock):
    UserFactory(email=EMAIL)
    assert login(client, RIGHT, "192.0.2.10") == 201  # the person's own address

    attacker = [login(client, WRONG, "198.51.100.66") for _ in range(12)]

    assert attacker[:10] == [401] * 10
    assert set(attacker[10:]) == {429}  # the attacker's address is slowed down
    assert login(client, RIGHT, "192.0.2.10") == 201  # the person is not


def test_guessing_from_many_addresses_meets_the_slower_account_limit(client, clock):
    UserFactory(email=EMAIL)
    assert login(client, RIGHT, "192.0.2.10") == 201
    clock.advance(seconds=1)
    answers = []
    for n in range(60):  # one guess each from 60 addresses, a second apart
        answers.append(login(client, WRONG, f"203.0.113.{n + 1}"))
        clock.advance(seconds=1)

    assert answers[:50] == [401] * 50
    assert set(answers[50:]) == {429}  # 50 an hour from addresses the account never used
    assert login(client, RIGHT, "203.0.113.200") == 429  # even with the right password
    assert login(client, RIGHT, "192.0.2.10") == 201  # but not from the person's own


def test_the_person_is_told_once_when_their_account_sees_many_failures(client, session, clock):
    user = UserFactory(email=EMAIL)
    for n in range(25):
        login(client, WRONG, f"203.0.113.{n + 1}")

    session.rollback()
    told = session.scalars(select(Notification).where(Notification.kind == "failed_logins")).all()
    assert len(told) == 1
    assert told[0].user_id == user.id
    assert told[0].params == {"failures": 10}
