"""IntervalTrigger: a fixed grid of elapsed time."""

from __future__ import annotations

import itertools
import math
import pickle
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# -- lengths, jitter and bounds that cannot make a schedule --------------------------------


@pytest.mark.parametrize(
    ("length", "words"),
    [
        ({"days": 3_000_000}, ["days=3000000", "1000 years"]),
        ({"weeks": 10**12}, ["weeks=1000000000000", "1000 years"]),
        ({"seconds": 1e300}, ["seconds=1e+300", "1000 years"]),
        ({"seconds": math.nan}, ["seconds=nan", "finite"]),
        ({"minutes": math.inf}, ["minutes=inf", "finite"]),
        ({"hours": -math.inf}, ["hours=-inf", "finite"]),
        ({"days": 1, "seconds": -86400}, ["days=1", "seconds=-86400", "positive"]),
    ],
)
def test_lengths_whose_fire_times_cannot_be_computed_are_refused(
    length: dict[str, float], words: list[str]
) -> None:
    with pytest.raises(InvalidTriggerError) as caught:
        IntervalTrigger(**length)
    for word in words:
        assert word in str(caught.value)


def test_the_longest_interval_is_accepted() -> None:
    trigger = IntervalTrigger(days=365_250, timezone=UTC)
    assert trigger.get_next_trigger_time(UTC, None, T0) == T0 + timedelta(days=365_250)


def test_a_start_at_without_room_for_a_second_fire_time_is_refused() -> None:
    with pytest.raises(InvalidTriggerError, match=r"start_at=9990-01-01.*9999"):
        IntervalTrigger(days=4000, start_at=datetime(9990, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("start_at", [None, T0])
def test_the_grid_ends_at_the_year_9999_instead_of_overflowing(start_at: datetime | None) -> None:
    # Not one OverflowError out of the trigger (a scheduler's pass would stop on it): the
    # trigger ends where datetime does.
    trigger = IntervalTrigger(days=365_000, start_at=start_at, timezone=UTC)
    previous = None
    times = []
    while (previous := trigger.get_next_trigger_time(UTC, previous, T0)) is not None:
        times.append(previous)
    assert 7 <= len(times) <= 9
    assert times[-1].year > 9000


@pytest.mark.parametrize(
    ("jitter", "words"),
    [
        (math.nan, ["jitter", "nan"]),
        (math.inf, ["jitter", "inf"]),
        (1e300, ["jitter", "1e+300"]),
        (-1, ["jitter", "-1"]),
        (timedelta(seconds=-1), ["jitter", "days=-1"]),
        (10, ["jitter", "shorter than the interval", "0:00:10", "got 10"]),
        (11.5, ["jitter", "got 11.5"]),
        (timedelta(minutes=1), ["jitter", "seconds=60"]),
    ],
)
def test_jitter_that_is_not_finite_negative_or_an_interval_long_is_refused(
    jitter: float | timedelta, words: list[str]
) -> None:
    with pytest.raises(InvalidTriggerError) as caught:
        IntervalTrigger(seconds=10, jitter=jitter)
    for word in words:
        assert word in str(caught.value)


def test_jitter_just_shorter_than_the_interval_is_accepted() -> None:
    assert IntervalTrigger(seconds=10, jitter=9.999).jitter == timedelta(seconds=9.999)


@settings(max_examples=150, deadline=None)
@given(
    interval=st.integers(min_value=1, max_value=3600),
    jitter_part=st.floats(min_value=0.01, max_value=0.99),
    steps=st.integers(min_value=0, max_value=20),
    end_offset=st.floats(min_value=0, max_value=0.999),
    with_start=st.booleans(),
)
def test_jitter_never_pushes_a_fire_time_past_end_at(
    interval: int, jitter_part: float, steps: int, end_offset: float, with_start: bool
) -> None:
    # end_at a little after a grid point: jitter would push that last run past it
    end_at = T0 + timedelta(seconds=interval * (steps + end_offset + 1))
    trigger = IntervalTrigger(
        seconds=interval,
        start_at=T0 if with_start else None,
        end_at=end_at,
        jitter=interval * jitter_part,
        timezone=UTC,
    )
    # without start_at the grid starts one interval after "now": at T0 as well
    now = T0 if with_start else T0 - timedelta(seconds=interval)
    times: list[datetime] = []
    previous = None
    while (previous := trigger.get_next_trigger_time(UTC, previous, now)) is not None:
        assert previous <= end_at
        assert not times or previous > times[-1]
        times.append(previous)
        assert len(times) <= steps + 2
    # every grid point within end_at runs (T0 ... T0 + (steps + 1) intervals): a jittered
    # one is capped at end_at, not dropped
    assert len(times) == steps + 2


def test_a_jittered_last_run_is_capped_at_end_at_not_dropped() -> None:
    end_at = T0 + timedelta(seconds=10.5)
    for _ in range(50):
        trigger = IntervalTrigger(seconds=10, start_at=T0, end_at=end_at, jitter=9)
        last = trigger.get_next_trigger_time(UTC, T0, T0)
        assert last is not None
        assert T0 + timedelta(seconds=10) <= last <= end_at


def test_start_date_and_end_date_are_synonyms_of_start_at_and_end_at() -> None:
    end = T0 + timedelta(days=1)
    trigger = IntervalTrigger(minutes=5, start_date=T0, end_date=end)
    assert trigger == IntervalTrigger(minutes=5, start_at=T0, end_at=end)
    with pytest.raises(InvalidTriggerError, match=r"start_at.*start_date.*not both"):
        IntervalTrigger(minutes=5, start_at=T0, start_date=T0)
