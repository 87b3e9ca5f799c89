"""The report ranges, on a fixed team day: completed months exclude the current month, the
previous period has the same length, the contract year holds today."""

from __future__ import annotations

from datetime import date

import pytest

from reporting.ranges import resolve

TODAY = date(2026, 11, 29)
CONTRACT = {"contract_start": date(2024, 3, 1), "contract_end": date(2027, 3, 1)}


@pytest.mark.parametrize(
    "key,start,end",
    [
        ("30d", date(2026, 10, 31), date(2026, 11, 29)),
        ("3m", date(2026, 8, 1), date(2026, 10, 31)),
        ("6m", date(2026, 5, 1), date(2026, 10, 31)),
        ("9m", date(2026, 2, 1), date(2026, 10, 31)),
        ("12m", date(2025, 11, 1), date(2026, 10, 31)),
        ("contract", date(2026, 3, 1), date(2027, 2, 28)),
    ],
)
def test_each_range_on_the_teams_today(key, start, end):
    period = resolve(key, today=TODAY, **CONTRACT)
    assert (period.start, period.end) == (start, end)
    previous = period.previous()
    assert previous.days == period.days and previous.end.toordinal() == start.toordinal() - 1


def test_completed_months_cross_the_new_year():
    period = resolve("3m", today=date(2027, 1, 15), **CONTRACT)
    assert (period.start, period.end) == (date(2026, 10, 1), date(2026, 12, 31))


def test_all_dates_is_open_and_has_no_previous_period():
    period = resolve("all", today=TODAY, **CONTRACT)
    assert (period.start, period.end, period.previous()) == (None, None, None)
    assert period.slug == "all-dates"


def test_a_custom_range_and_its_file_name():
    period = resolve("custom", today=TODAY, start=date(2026, 1, 1), end=date(2026, 3, 31), **CONTRACT)
    assert period.days == 90 and period.slug == "2026-01-01_2026-03-31"
    assert (period.previous().start, period.previous().end) == (date(2025, 10, 3), date(2025, 12, 31))
