"""Findings 6 and 7 of issue 15: no look-alike organisation, no trivial password."""

from __future__ import annotations

import pytest

from marketplace.accounts.names import name_key
from tests.factories import OrganisationFactory

LOOK_ALIKES = [
    "Havenstad Bank",
    "havenstad  bank",
    "Havenstad\u200b Bank",  # a zero-width space
    "Havenstad\u00ad Bank",  # a soft hyphen
    "\u0397\u0391V\u0395\u039dS\u03a4\u0391D \u0392\u0391\u039d\u039a",  # Greek capitals
    "Havenstad \u0412ank",  # a Cyrillic Ve
    "\uff28\uff41\uff56\uff45\uff4e\uff53\uff54\uff41\uff44 \uff22\uff41\uff4e\uff4b",  # full width
]
PASSPHRASE = "a long and odd passphrase"


def register(client, organisation: str, email: str, password: str = PASSPHRASE):
    return client.post(
        "/api/v1/auth/register",
        json={
            "email": email,
            "password": password,
            "name": "Someone",
            "role": "buyer",
            "organisation": organisation,
        },
    )


@pytest.mark.parametrize("name", LOOK_ALIKES)
def test_a_look_alike_of_a_registered_organisation_is_refused(client, session, name):
    OrganisationFactory(name="Havenstad Bank")
    session.commit()

    answer = register(client, name, "new@example.org")

    # Refused as the same name, or (invisible characters) as no plain one-line name.
    assert answer.status_code in (409, 422), answer.json
    if answer.status_code == 409:
        assert answer.json["code"] == "organisation_taken"
    else:
        assert "organisation" in answer.json["errors"]
    assert name_key(name) == name_key("Havenstad Bank")


def test_a_different_name_is_still_welcome(client, session):
    OrganisationFactory(name="Havenstad Bank")
    session.commit()
    assert register(client, "Havenstad Zorg", "zorg@example.org").status_code == 201
    assert name_key("Havenstad Bank") != name_key("Havenstad Zorg")


@pytest.mark.parametrize("password", [" " * 10, "\t" * 12, "a" * 12, "!" * 30])
def test_a_blank_or_one_letter_password_is_refused(client, password):
    answer = register(client, "Stichting Nieuw", "nieuw@example.org", password)

    assert answer.status_code == 422
    assert "password" in answer.json["errors"]
