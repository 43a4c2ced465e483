"""When a running project is late to report (product.md: at least every three months)."""

from datetime import UTC, date, datetime

import pytest

from outcomes.progress import is_late

START = date(2027, 1, 22)


@pytest.mark.parametrize(
    ("last", "today", "late"),
    [
        (None, date(2027, 4, 23), False),  # 91 days after the start
        (None, date(2027, 4, 24), True),  # 92 days
        (datetime(2027, 3, 1, 12, tzinfo=UTC), date(2027, 5, 31), False),  # 91 days after it
        (datetime(2027, 3, 1, 12, tzinfo=UTC), date(2027, 6, 1), True),
        # A report from before the start (posted early) counts from the start.
        (datetime(2026, 11, 29, 9, tzinfo=UTC), date(2027, 4, 23), False),
        (datetime(2026, 11, 29, 9, tzinfo=UTC), date(2027, 4, 24), True),
    ],
)
def test_late_means_more_than_three_months_since_the_start_or_the_last_report(last, today, late):
    assert is_late(START, last, today) is late
