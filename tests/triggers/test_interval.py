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
    # the previous fire time carries the grid, however late "now" is
    later = T0 + timedelta(hours=3)
    assert trigger.get_next_trigger_time(UTC, T0 + timedelta(minutes=5), later) == T0 + timedelta(
        minutes=10
    )


def test_without_start_or_jitter_the_trigger_keeps_no_state() -> None:
    trigger = IntervalTrigger(minutes=5, timezone=UTC)
    state = trigger.__getstate__()
    assert trigger.shareable
    first = trigger.get_next_trigger_time(UTC, None, T0)
    assert trigger.__getstate__() == state  # asking anchored nothing
    # a second task asking later gets its own grid from the same instance
    other_now = T0 + timedelta(seconds=7)
    assert trigger.get_next_trigger_time(UTC, None, other_now) == other_now + timedelta(minutes=5)
    assert first == T0 + timedelta(minutes=5)
    assert trigger.start_at is None


def test_a_previous_time_off_the_grid_starts_the_grid_there() -> None:
    # e.g. next_run_time set by hand: the next run is one interval after it
    trigger = IntervalTrigger(seconds=10, timezone=UTC)
    odd = T0 + timedelta(seconds=3.25)
    assert trigger.get_next_trigger_time(UTC, odd, T0) == odd + timedelta(seconds=10)


def test_end_at_without_start_at() -> None:
    trigger = IntervalTrigger(seconds=10, end_at=T0 + timedelta(seconds=25), timezone=UTC)
    assert trigger.get_next_trigger_time(UTC, T0 + timedelta(seconds=10), T0) == T0 + timedelta(
        seconds=20
    )
    assert trigger.get_next_trigger_time(UTC, T0 + timedelta(seconds=20), T0) is None


def test_without_start_fire_times_in_a_dst_zone_are_elapsed_time() -> None:
    zone = ZoneInfo("Europe/Berlin")
    trigger = IntervalTrigger(minutes=30, timezone=zone)
    previous = datetime(2026, 10, 25, 2, 15, tzinfo=zone)  # CEST, first 02:15
    times = [previous]
    for _ in range(4):
        nxt = trigger.get_next_trigger_time(zone, times[-1], previous)
        assert nxt is not None
        assert nxt.tzinfo is zone
        times.append(nxt)
    gaps = {(b.timestamp() - a.timestamp()) for a, b in itertools.pairwise(times)}
    assert gaps == {1800.0}
    assert [t.fold for t in times[:4]] == [0, 0, 1, 1]  # 02:15, 02:45, then the repeated hour


def test_jitter_without_start_anchors_once_and_never_drifts() -> None:
    trigger = IntervalTrigger(seconds=10, jitter=3, timezone=UTC)
    assert not trigger.shareable  # it will anchor itself: one task's own
    previous = trigger.get_next_trigger_time(UTC, None, T0)
    assert trigger.start_at == T0 + timedelta(seconds=10)
    assert previous is not None
    for step in range(2, 300):
        fire = trigger.get_next_trigger_time(UTC, previous, T0)
        assert fire is not None
        delay = fire - (T0 + step * timedelta(seconds=10))
        assert timedelta(0) <= delay <= timedelta(seconds=3), step  # on the grid, not drifting
        previous = fire


def test_anchored_copy_starts_its_grid_one_interval_after_now() -> None:
    trigger = IntervalTrigger(minutes=1, timezone=UTC)
    copy = trigger.anchored(T0)
    assert copy is not trigger
    assert trigger.start_at is None
    assert copy.start_at == T0 + timedelta(minutes=1)
    assert copy.get_next_trigger_time(UTC, None, T0 + timedelta(seconds=61)) == T0 + timedelta(
        minutes=2
    )
    assert copy.anchored(T0 + timedelta(days=1)) is copy


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
