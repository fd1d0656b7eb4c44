"""IntervalTrigger: a fixed grid of elapsed time."""

from __future__ import annotations

import itertools
import pickle
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tickwork.exceptions import InvalidTriggerError
from tickwork.triggers import IntervalTrigger

UTC = UTC
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_first_fire_is_one_interval_after_now_without_start() -> None:
    trigger = IntervalTrigger(minutes=5)
    assert trigger.get_next_trigger_time(UTC, None, T0) == T0 + timedelta(minutes=5)
    # anchored: asking again later keeps the grid
    assert trigger.get_next_trigger_time(UTC, T0 + timedelta(minutes=5), T0) == T0 + timedelta(
        minutes=10
    )


def test_start_in_the_past_fires_at_next_grid_point_not_in_the_past() -> None:
    trigger = IntervalTrigger(seconds=10, start_at=T0)
    now = T0 + timedelta(seconds=25)
    assert trigger.get_next_trigger_time(UTC, None, now) == T0 + timedelta(seconds=30)
    assert trigger.get_next_trigger_time(UTC, None, T0 + timedelta(seconds=30)) == T0 + timedelta(
        seconds=30
    )


def test_start_in_the_future_is_the_first_fire() -> None:
    trigger = IntervalTrigger(hours=1, start_at=T0 + timedelta(days=1))
    assert trigger.get_next_trigger_time(UTC, None, T0) == T0 + timedelta(days=1)


def test_no_drift_with_a_late_or_jittered_previous_time() -> None:
    trigger = IntervalTrigger(seconds=10, start_at=T0)
    assert trigger.get_next_trigger_time(UTC, T0 + timedelta(seconds=13), T0) == T0 + timedelta(
        seconds=20
    )


def test_end_at_stops_the_trigger() -> None:
    trigger = IntervalTrigger(seconds=10, start_at=T0, end_at=T0 + timedelta(seconds=25))
    assert trigger.get_next_trigger_time(UTC, T0 + timedelta(seconds=20), T0) is None
    assert trigger.get_next_trigger_time(UTC, T0 + timedelta(seconds=10), T0) == T0 + timedelta(
        seconds=20
    )


def test_fractional_and_combined_units() -> None:
    assert IntervalTrigger(seconds=0.5).interval == timedelta(milliseconds=500)
    assert IntervalTrigger(weeks=1, days=1, hours=1, minutes=1, seconds=1).interval == timedelta(
        days=8, hours=1, minutes=1, seconds=1
    )


def test_jitter_only_delays_and_stays_within_bounds() -> None:
    trigger = IntervalTrigger(seconds=10, start_at=T0, jitter=2)
    previous = T0
    for _ in range(200):
        fire = trigger.get_next_trigger_time(UTC, previous, T0)
        assert fire is not None
        nominal = T0 + ((fire - T0) // timedelta(seconds=10)) * timedelta(seconds=10)
        assert timedelta(0) <= fire - nominal <= timedelta(seconds=2)
        assert fire > previous
        previous = fire


def test_elapsed_time_across_dst_changes() -> None:
    zone = ZoneInfo("America/New_York")
    start = datetime(2026, 11, 1, 0, 30, tzinfo=zone)  # clocks go back at 02:00 EDT
    trigger = IntervalTrigger(hours=1, start_at=start)
    times = [start]
    for _ in range(4):
        nxt = trigger.get_next_trigger_time(zone, times[-1], start)
        assert nxt is not None
        times.append(nxt)
    gaps = {
        (b.astimezone(UTC) - a.astimezone(UTC)).total_seconds()
        for a, b in itertools.pairwise(times)
    }
    assert gaps == {3600.0}


def test_naive_start_is_read_in_the_trigger_zone() -> None:
    trigger = IntervalTrigger(hours=1, start_at=datetime(2026, 7, 1, 9), timezone="Europe/Berlin")
    assert trigger.start_at is not None
    assert trigger.start_at.utcoffset() == timedelta(hours=2)


def test_state_round_trip_equality_and_repr() -> None:
    trigger = IntervalTrigger(minutes=2, start_at=T0, end_at=T0 + timedelta(days=1), jitter=1)
    copy = pickle.loads(pickle.dumps(trigger))
    assert copy == trigger
    assert trigger.__getstate__()["version"] == 1
    assert "interval=0:02:00" in repr(trigger)
    assert IntervalTrigger(minutes=2, start_at=T0) != IntervalTrigger(minutes=3, start_at=T0)


def test_bad_arguments() -> None:
    with pytest.raises(InvalidTriggerError, match="start_at"):
        IntervalTrigger(seconds=1, start_at=T0, end_at=T0 - timedelta(seconds=1))
    with pytest.raises(InvalidTriggerError, match="'ten'"):
        IntervalTrigger(seconds="ten")  # type: ignore[arg-type]
    with pytest.raises(InvalidTriggerError, match="jitter"):
        IntervalTrigger(seconds=1, jitter=-1)
    with pytest.raises(InvalidTriggerError, match="Nowhere/Land"):
        IntervalTrigger(seconds=1, timezone="Nowhere/Land")


def test_anchor_from_a_local_now_is_elapsed_time() -> None:
    zone = ZoneInfo("America/New_York")
    now = datetime(2026, 11, 1, 0, 30, tzinfo=zone)  # EDT; clocks go back at 02:00
    trigger = IntervalTrigger(hours=2, timezone=zone)
    first = trigger.get_next_trigger_time(zone, None, now)
    assert first is not None
    assert (first.astimezone(UTC) - now.astimezone(UTC)) == timedelta(hours=2)
