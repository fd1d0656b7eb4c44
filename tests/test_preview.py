"""Offset changes between upcoming run times are marked, with their direction."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tickwork._preview import mark_offset_changes

BERLIN = ZoneInfo("Europe/Berlin")


def test_dst_start_and_end_are_marked() -> None:
    times = [
        datetime(2026, 3, 28, 9, tzinfo=BERLIN),
        datetime(2026, 3, 29, 9, tzinfo=BERLIN),
        datetime(2026, 3, 30, 9, tzinfo=BERLIN),
        datetime(2026, 10, 25, 9, tzinfo=BERLIN),
    ]
    notes = [marked.change for marked in mark_offset_changes(times)]
    assert notes == [
        None,
        "UTC offset +01:00 → +02:00 (daylight saving time starts)",
        None,
        "UTC offset +02:00 → +01:00 (daylight saving time ends)",
    ]


def test_the_first_time_compares_with_before() -> None:
    before = datetime(2026, 3, 28, 9, tzinfo=BERLIN)
    (first,) = mark_offset_changes([datetime(2026, 3, 29, 9, tzinfo=BERLIN)], before)
    assert first.change is not None
    assert first.change.endswith("(daylight saving time starts)")


def test_fixed_offsets_never_change() -> None:
    start = datetime(2026, 3, 28, 9, tzinfo=ZoneInfo("UTC"))
    times = [start + timedelta(days=day) for day in range(5)]
    assert all(marked.change is None for marked in mark_offset_changes(times))
