"""IntervalTrigger's shortcut for zones without DST gives exactly the grid of the general
(UTC round trip) computation, whatever zones the inputs come in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest

from tickwork.triggers import IntervalTrigger
from tickwork.utils import is_fixed_offset

BERLIN = ZoneInfo("Europe/Berlin")
FIXED = [UTC, ZoneInfo("UTC"), ZoneInfo("Etc/GMT+5"), timezone(timedelta(hours=5, minutes=30))]


def reference(start: datetime, interval: timedelta, previous: datetime) -> datetime:
    """The next grid point after ``previous``, computed in UTC only."""
    start_utc, previous_utc = start.astimezone(UTC), previous.astimezone(UTC)
    steps = max((previous_utc - start_utc) // interval + 1, 0)
    return start_utc + steps * interval


@pytest.mark.parametrize("zone", FIXED, ids=str)
@pytest.mark.parametrize("output_zone", [None, BERLIN], ids=["same", "berlin"])
def test_fixed_zone_grid_matches_the_utc_computation(zone: timezone, output_zone: ZoneInfo) -> None:
    rng = random.Random(7)
    for _ in range(300):
        interval = timedelta(seconds=rng.choice([0.25, 1, 7, 60, 3600, 86400 * 3]))
        start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC).astimezone(zone)
        start += timedelta(microseconds=rng.randrange(10**6))
        trigger = IntervalTrigger(
            seconds=interval.total_seconds(), start_at=start, timezone=output_zone or zone
        )
        # Previous times around the grid, some off it, some before start, in several zones
        # (Berlin crosses its DST change on that night).
        offset = timedelta(seconds=rng.uniform(-3, 5) * interval.total_seconds())
        previous = (start + offset).astimezone(rng.choice([zone, BERLIN, UTC]))
        got = trigger.get_next_trigger_time(trigger.timezone, previous)
        assert got is not None
        assert got == reference(start, interval, previous)
        assert got.tzinfo is trigger.timezone


def test_end_at_still_ends_the_fixed_zone_grid() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    trigger = IntervalTrigger(minutes=10, start_at=start, end_at=start + timedelta(minutes=25))
    assert trigger.get_next_trigger_time(UTC, start + timedelta(minutes=10)) == start + timedelta(
        minutes=20
    )
    assert trigger.get_next_trigger_time(UTC, start + timedelta(minutes=20)) is None


def test_which_zones_count_as_fixed() -> None:
    for zone in FIXED:
        assert is_fixed_offset(zone)
    assert not is_fixed_offset(BERLIN)
    assert not is_fixed_offset(ZoneInfo("America/New_York"))
    assert not is_fixed_offset(None)

    class Custom(tzinfo):
        def utcoffset(self, dt: datetime | None) -> timedelta:
            return timedelta(0)

    assert not is_fixed_offset(Custom())
