"""Password hashing and policy, without a database."""

import pytest

from marketplace.accounts.passwords import PasswordHasher, PasswordPolicy


@pytest.fixture(scope="module")
def hasher():
    return PasswordHasher(time_cost=1, memory_cost_kib=1024, parallelism=1)


def test_a_hash_is_argon2id_and_verifies_only_its_password(hasher):
    hashed = hasher.hash("correct horse battery")

    assert hashed.startswith("$argon2id$")
    assert hasher.verify(hashed, "correct horse battery")
    assert not hasher.verify(hashed, "correct horse battery!")


def test_a_missing_or_corrupt_hash_never_verifies(hasher):
    assert not hasher.verify(None, "not a real password, used for equal timing")
    assert not hasher.verify("not-a-hash", "anything")


def test_a_hash_made_with_a_lower_cost_is_due_for_an_upgrade(hasher):
    stronger = PasswordHasher(time_cost=2, memory_cost_kib=2048, parallelism=1)

    assert stronger.needs_rehash(hasher.hash("correct horse battery"))
    assert not hasher.needs_rehash(hasher.hash("correct horse battery"))


@pytest.mark.parametrize(
    ("password", "problems"),
    [
        ("Kx7#pQ2!", ["Use at least 10 characters."]),
        (
            "123456789",
            [
                "Use at least 10 characters.",
                "This password is common in published data breaches; choose another.",
            ],
        ),
        ("Password123", ["This password is common in published data breaches; choose another."]),
        (" QWERTYUIOP ", ["This password is common in published data breaches; choose another."]),
        ("xy" * 64 + "z", ["Use at most 128 characters."]),
        ("Ana@Example.org", ["The password must not be your e-mail address."]),
        ("a fine long password", []),
    ],
)
def test_the_policy_names_each_problem(password, problems):
    assert PasswordPolicy(min_length=10).problems(password, email="ana@example.org") == problems


def test_the_breach_list_is_loaded_whole_and_lower_case():
    from marketplace.accounts.passwords import breached_passwords

    listed = breached_passwords()
    assert len(listed) == 19_640
    assert all(p == p.lower() for p in listed)
    assert "correct horse battery" not in listed


def test_the_breach_list_can_be_turned_off():
    assert PasswordPolicy(refuse_breached=False).problems("password123") == []
