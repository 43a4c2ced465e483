"""Reading a serial or a serial block as the registry writes it (registry search)."""

from __future__ import annotations

import pytest

from marketplace.registry.services import find_serial


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("SOM-P000042-2027-0000001", (42, 1, 1)),
        ("SOM-P000042-2027-0000101-0000250", (42, 101, 250)),
        ("  som-p000007-2028-0001000-0001000 ", (7, 1000, 1000)),
        ("SOM-P123456-2027-9999999", (123456, 9999999, 9999999)),
    ],
)
def test_a_serial_or_block_gives_its_project_and_range(text, found):
    assert find_serial(text) == found


@pytest.mark.parametrize(
    "text",
    [
        "",
        "P000042",
        "SOM-P42-2027-0000001",  # the project is six digits
        "SOM-P000042-2027-1",  # the serial is seven
        "SOM-P000042-2027-0000001-",
        "SOM-P000042-2027-0000001-0000002-0000003",
        "XYZ-P000042-2027-0000001",
        "SOM-P000042-2027-0000001\n-0000002",
    ],
)
def test_anything_else_is_not_a_serial(text):
    assert find_serial(text) is None
