"""CalendarIntervalTrigger: every N years/months/weeks/days at one wall-clock time."""

from __future__ import annotations

import calendar
import pickle
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickwork.clock import FakeClock
from tickwork.exceptions import InvalidTriggerError
from tickwork.executors import DebugExecutor
from tickwork.schedulers import BackgroundScheduler
from tickwork.stores.sqlalchemy import SQLAlchemyStore
from tickwork.triggers import CalendarIntervalTrigger, build_trigger, create_trigger

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
DST_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def fire_times(trigger: CalendarIntervalTrigger, now: datetime, count: int) -> list[datetime]:
    times: list[datetime] = []
    previous = None
    while len(times) < count:
        previous = trigger.get_next_trigger_time(UTC, previous, now)
        if previous is None:
            break
        times.append(previous)
    return times


def iso(times: list[datetime]) -> list[str]:
    return [t.isoformat() for t in times]


# -- month ends and leap days -------------------------------------------------------------


def test_31_january_plus_one_month_clamps_to_the_end_of_february_and_never_drifts() -> None:
    monthly = CalendarIntervalTrigger(months=1, hour=9, start_at=date(2027, 1, 31), timezone=UTC)
    times = fire_times(monthly, T0, 5)
    assert [t.date() for t in times] == [
        date(2027, 1, 31),
        date(2027, 2, 28),  # clamped: 2027 is no leap year
        date(2027, 3, 31),  # counted from the anchor, not from 28 February
        date(2027, 4, 30),
        date(2027, 5, 31),
    ]
    assert {t.time() for t in times} == {time(9)}
    leap = CalendarIntervalTrigger(months=1, start_at=date(2028, 1, 31), timezone=UTC)
    assert fire_times(leap, T0, 2)[1].date() == date(2028, 2, 29)


def test_29_february_plus_one_year_is_28_february_then_29_again_in_a_leap_year() -> None:
    yearly = CalendarIntervalTrigger(years=1, start_at=date(2028, 2, 29), timezone=UTC)
    assert [t.date() for t in fire_times(yearly, T0, 5)] == [
        date(2028, 2, 29),
        date(2029, 2, 28),
        date(2030, 2, 28),
        date(2031, 2, 28),
        date(2032, 2, 29),
    ]


def test_months_and_days_add_up_as_k_times_each() -> None:
    trigger = CalendarIntervalTrigger(months=1, days=1, start_at=date(2027, 1, 31), timezone=UTC)
    assert [t.date() for t in fire_times(trigger, T0, 4)] == [
        date(2027, 1, 31),
        date(2027, 3, 1),  # 28 Feb + 1 day
        date(2027, 4, 2),  # 31 Mar + 2 days
        date(2027, 5, 3),  # 30 Apr + 3 days
    ]


def test_weeks_and_years() -> None:
    fortnightly = CalendarIntervalTrigger(weeks=2, hour=8, start_at=date(2026, 3, 2), timezone=UTC)
    assert [t.date() for t in fire_times(fortnightly, T0, 3)] == [
        date(2026, 3, 2),
        date(2026, 3, 16),
        date(2026, 3, 30),
    ]
    quarterly = CalendarIntervalTrigger(months=3, start_at=date(2026, 11, 30), timezone=UTC)
    assert [t.date() for t in fire_times(quarterly, T0, 3)] == [
        date(2026, 11, 30),
        date(2027, 2, 28),
        date(2027, 5, 30),
    ]


# -- DST --------------------------------------------------------------------------------------


def test_same_wall_clock_time_on_both_sides_of_a_dst_change() -> None:
    daily = CalendarIntervalTrigger(days=1, hour=9, start_at=date(2026, 3, 28), timezone=BERLIN)
    times = fire_times(daily, T0, 3)
    assert iso(times) == [
        "2026-03-28T09:00:00+01:00",
        "2026-03-29T09:00:00+02:00",  # 23 hours later: the wall clock, not elapsed time
        "2026-03-30T09:00:00+02:00",
    ]


def test_a_time_in_the_gap_fires_at_the_end_of_the_gap() -> None:
    daily = CalendarIntervalTrigger(
        days=1, hour=2, minute=30, start_at=date(2026, 3, 28), timezone=BERLIN
    )
    assert iso(fire_times(daily, T0, 3)) == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:30 does not exist that day
        "2026-03-30T02:30:00+02:00",
    ]


def test_a_repeated_time_fires_at_its_first_pass() -> None:
    daily = CalendarIntervalTrigger(
        days=1, hour=1, minute=30, start_at=date(2026, 10, 31), timezone=NEW_YORK
    )
    times = fire_times(daily, T0, 3)
    assert iso(times) == [
        "2026-10-31T01:30:00-04:00",
        "2026-11-01T01:30:00-04:00",  # EDT, the first pass; not again at 01:30 EST
        "2026-11-02T01:30:00-05:00",
    ]
    assert times[1].fold == 0


def test_a_midnight_gap_in_santiago() -> None:
    # Chile springs forward at 00:00 (to 01:00): a daily midnight run fires at 01:00.
    zone = ZoneInfo("America/Santiago")
    daily = CalendarIntervalTrigger(days=1, start_at=date(2026, 9, 5), timezone=zone)
    assert [t.strftime("%m-%d %H:%M") for t in fire_times(daily, T0, 3)] == [
        "09-05 00:00",
        "09-06 01:00",
        "09-07 00:00",
    ]


# -- anchors and bounds -----------------------------------------------------------------------


def test_start_at_later_in_the_day_than_the_time_passes_over_that_date() -> None:
    trigger = CalendarIntervalTrigger(
        months=1, hour=9, start_at=datetime(2027, 1, 31, 10, tzinfo=UTC), timezone=UTC
    )
    assert fire_times(trigger, T0, 1)[0] == datetime(2027, 2, 28, 9, tzinfo=UTC)


def test_a_start_at_in_the_past_fires_first_at_the_next_grid_point_from_now() -> None:
    trigger = CalendarIntervalTrigger(months=1, hour=9, start_at=date(2025, 1, 31), timezone=UTC)
    now = datetime(2026, 2, 10, tzinfo=UTC)
    assert iso(fire_times(trigger, now, 2)) == [
        "2026-02-28T09:00:00+00:00",
        "2026-03-31T09:00:00+00:00",
    ]
    # a grid point equal to now is due
    assert trigger.get_next_trigger_time(UTC, None, datetime(2026, 3, 31, 9, tzinfo=UTC)) == (
        datetime(2026, 3, 31, 9, tzinfo=UTC)
    )


def test_without_start_at_the_grid_is_carried_by_the_run_times() -> None:
    trigger = CalendarIntervalTrigger(months=1, hour=9, timezone=UTC)
    assert trigger.shareable
    state = trigger.__getstate__()
    now = datetime(2027, 1, 31, 10, tzinfo=UTC)  # 09:00 has passed today
    times = fire_times(trigger, now, 3)
    # From the previous fire date: a day that clamped stays clamped.
    assert [t.date() for t in times] == [date(2027, 2, 28), date(2027, 3, 28), date(2027, 4, 28)]
    assert trigger.__getstate__() == state  # asking anchored nothing
    early = datetime(2027, 1, 31, 8, tzinfo=UTC)
    assert trigger.get_next_trigger_time(UTC, None, early) == datetime(2027, 1, 31, 9, tzinfo=UTC)


def test_without_start_at_a_previous_time_moved_by_a_gap_keeps_its_date() -> None:
    daily = CalendarIntervalTrigger(days=1, hour=2, minute=30, timezone=BERLIN)
    gap_end = datetime(2026, 3, 29, 3, tzinfo=BERLIN)  # 02:30 that day, moved to 03:00
    following = daily.get_next_trigger_time(UTC, gap_end, gap_end)
    assert following == datetime(2026, 3, 30, 2, 30, tzinfo=BERLIN)
    # set by hand off the grid: the next run is a period after that date's fire time
    odd = datetime(2026, 5, 4, 1, tzinfo=BERLIN)  # before 02:30: belongs to 3 May
    assert daily.get_next_trigger_time(UTC, odd, odd) == datetime(2026, 5, 4, 2, 30, tzinfo=BERLIN)


def test_jitter_without_start_at_anchors_on_first_use() -> None:
    trigger = CalendarIntervalTrigger(months=1, hour=9, timezone=UTC, jitter=60)
    assert not trigger.shareable
    now = datetime(2027, 1, 31, 8, tzinfo=UTC)
    times = fire_times(trigger, now, 3)
    assert trigger.start_at == now
    assert [t.date() for t in times] == [date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31)]


def test_anchored_returns_an_anchored_copy() -> None:
    trigger = CalendarIntervalTrigger(days=1, timezone=UTC)
    copy = trigger.anchored(T0)
    assert copy is not trigger
    assert trigger.start_at is None
    assert copy.start_at == T0
    assert copy.anchored(T0 + timedelta(days=3)) is copy


def test_needs_now_without_start_at() -> None:
    with pytest.raises(InvalidTriggerError, match="needs 'now'"):
        CalendarIntervalTrigger(days=1).get_next_trigger_time(UTC, None)


def test_an_end_at_date_includes_that_whole_day() -> None:
    trigger = CalendarIntervalTrigger(
        days=1, hour=18, start_at=date(2026, 5, 1), end_date=date(2026, 5, 3), timezone=BERLIN
    )
    assert [t.day for t in fire_times(trigger, T0, 10)] == [1, 2, 3]
    assert trigger.end_at == datetime(2026, 5, 3, 23, 59, 59, 999999, tzinfo=BERLIN)
    as_text = CalendarIntervalTrigger(days=1, start_at="2026-05-01", end_at="2026-05-03")
    assert as_text.end_at is not None
    assert as_text.end_at.time() == time(23, 59, 59, 999999)


def test_an_end_at_datetime_is_an_instant() -> None:
    trigger = CalendarIntervalTrigger(
        days=1,
        hour=18,
        start_at=date(2026, 5, 1),
        end_at=datetime(2026, 5, 3, 12, tzinfo=UTC),
        timezone=UTC,
    )
    assert [t.day for t in fire_times(trigger, T0, 10)] == [1, 2]


def test_the_grid_ends_before_the_year_9999_does() -> None:
    trigger = CalendarIntervalTrigger(years=1, start_at=date(9998, 6, 1), timezone=UTC)
    assert [t.year for t in fire_times(trigger, T0, 5)] == [9998, 9999]


def test_jitter_delays_within_half_the_shortest_period() -> None:
    trigger = CalendarIntervalTrigger(days=1, hour=9, start_at=T0, timezone=UTC, jitter=3600)
    for fire_time, grid in zip(fire_times(trigger, T0, 20), range(20), strict=True):
        delay = fire_time - datetime(2026, 1, 1 + grid, 9, tzinfo=UTC)
        assert timedelta(0) <= delay <= timedelta(hours=1)
    with pytest.raises(InvalidTriggerError, match=r"half the shortest .*12:00:00.*days=1"):
        CalendarIntervalTrigger(days=1, jitter=12 * 3600)
    CalendarIntervalTrigger(months=1, jitter=13 * 86400)  # 28 days / 2 > 13 days


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, r"at least one day long: got years=0, months=0, weeks=0, days=0.*'interval'"),
        ({"days": 0, "months": 0}, "at least one day long"),
        ({"months": -1}, r"months must be a whole number from 0 to 12000, got -1"),
        ({"days": 1.5}, r"days must be a whole number .*got 1\.5"),
        ({"weeks": True}, r"weeks must be a whole number .*got True"),
        ({"years": 1001}, r"years must be a whole number from 0 to 1000, got 1001"),
        ({"years": 1000, "months": 1}, r"at most 1000 years, got years=1000, months=1"),
        ({"days": 1, "hour": 24}, r"hour must be a whole number from 0 to 23, got 24"),
        ({"days": 1, "minute": "5"}, r"minute must be .*got '5'"),
        ({"days": 1, "timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"days": 1, "start_at": "soon"}, "start_at='soon'"),
        (
            {"days": 1, "start_at": date(2026, 2, 1), "end_at": date(2026, 1, 1)},
            "is after end_at",
        ),
        ({"days": 1, "jitter": -1}, "must not be negative"),
        (
            {"days": 1, "start_at": date(2026, 1, 1), "start_date": date(2026, 1, 1)},
            "not both",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_value(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidTriggerError, match=message):
        CalendarIntervalTrigger(**options)  # type: ignore[arg-type]


def test_a_misspelt_keyword_through_the_alias_names_the_right_one() -> None:
    with pytest.raises(InvalidTriggerError, match=r"'hours'.*did you mean 'hour'"):
        create_trigger("calendarinterval", days=1, hours=9)


def test_invalid_trigger_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        CalendarIntervalTrigger()


# -- the alias, state, equality -------------------------------------------------------------------


def test_alias_takes_the_schedulers_zone_and_apscheduler_3_names() -> None:
    trigger = build_trigger(
        "calendarinterval",
        {"months": 1, "hour": 6, "start_date": "2026-01-15"},
        default_zone=BERLIN,
    )
    assert isinstance(trigger, CalendarIntervalTrigger)
    assert trigger.timezone is BERLIN
    assert trigger.start_at == datetime(2026, 1, 15, tzinfo=BERLIN)


def test_state_round_trips_through_pickle_and_refuses_a_newer_version() -> None:
    trigger = CalendarIntervalTrigger(
        months=2, hour=7, minute=5, second=9, start_at=date(2026, 1, 31), timezone=BERLIN
    )
    copy = pickle.loads(pickle.dumps(trigger))
    assert copy == trigger
    assert fire_times(copy, T0, 4) == fire_times(trigger, T0, 4)
    assert trigger != CalendarIntervalTrigger(months=2, hour=7, start_at=date(2026, 1, 31))
    state = trigger.__getstate__()
    assert state["version"] == 1
    blank = CalendarIntervalTrigger.__new__(CalendarIntervalTrigger)
    with pytest.raises(InvalidTriggerError, match="state version 2"):
        blank.__setstate__({**state, "version": 2})


def test_repr() -> None:
    trigger = CalendarIntervalTrigger(months=1, days=2, hour=9, start_at=T0, timezone=UTC)
    assert repr(trigger) == (
        "CalendarIntervalTrigger(months=1, days=2, time='09:00:00', "
        "start_at='2026-01-01T00:00:00+00:00', timezone='UTC')"
    )


def send_report() -> None:
    """A task function a persistent store can name."""


@pytest.mark.parametrize("start_at", [None, "2027-01-31"])
def test_a_program_that_adds_its_task_at_every_start_keeps_the_schedule(
    tmp_path: Path, start_at: str | None
) -> None:
    """Restarted on another day, the same task added again (replace_existing=True) is the
    same schedule: its stored next run time stays, and the grid with it."""
    url = f"sqlite:///{tmp_path / 'tasks.sqlite'}"
    clock = FakeClock(datetime(2027, 1, 31, 8, tzinfo=UTC))

    def start() -> BackgroundScheduler:
        scheduler = BackgroundScheduler(
            stores={"default": SQLAlchemyStore(url)},
            executors={"default": DebugExecutor()},
            timezone="UTC",
            clock=clock,
        )
        options = {} if start_at is None else {"start_at": start_at}
        scheduler.add_task(
            send_report,
            "calendarinterval",
            months=1,
            hour=9,
            id="report",
            replace_existing=True,
            **options,
        )
        scheduler.start(paused=True)
        return scheduler

    start().shutdown()
    clock.set(datetime(2027, 2, 10, tzinfo=UTC))
    second = start()
    task = second.get_task("report")
    assert task is not None
    assert isinstance(task.trigger, CalendarIntervalTrigger)
    assert task.next_run_time == datetime(2027, 1, 31, 9, tzinfo=UTC)
    assert [t.date() for t in second.preview_task_runs("report", 3)] == [
        date(2027, 1, 31),
        date(2027, 2, 28),
        date(2027, 3, 28) if start_at is None else date(2027, 3, 31),
    ]
    second.shutdown()


# -- against a brute-force oracle ---------------------------------------------------------------


def oracle_date(anchor: date, k: int, months: int, days: int) -> date:
    """The k-th grid date, one month at a time: obviously right, and slow."""
    year, month = anchor.year, anchor.month
    for _ in range(k * months):
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return date(year, month, day) + timedelta(days=k * days)


def oracle_instant(zone: tzinfo, wall: datetime) -> datetime:
    """The first real instant whose wall clock shows ``wall`` or later, found minute by
    minute from three hours before it: rules 1 and 2 of docs/triggers.md."""
    moment = wall.replace(tzinfo=zone).astimezone(UTC) - timedelta(hours=3)
    while moment.astimezone(zone).replace(tzinfo=None) < wall:
        moment += timedelta(minutes=1)
    return moment


def valid_dates() -> st.SearchStrategy[date]:
    def build(year: int, month: int, day: int) -> date:
        return date(year, month, min(day, calendar.monthrange(year, month)[1]))

    return st.one_of(
        st.dates(date(2024, 1, 1), date(2029, 12, 31)),
        st.builds(build, st.integers(2024, 2029), st.integers(1, 12), st.integers(28, 31)),
        st.sampled_from([date(2026, 3, 27), date(2026, 10, 23), date(2026, 9, 4)]),
    )


PERIODS = st.tuples(
    st.integers(0, 1), st.integers(0, 13), st.integers(0, 2), st.integers(0, 9)
).filter(lambda p: any(p))


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    zone_name=st.sampled_from([*DST_ZONES, "UTC"]),
    anchor=valid_dates(),
    period=PERIODS,
    clock=st.tuples(st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59])),
    skip=st.integers(0, 40),
)
def test_fire_times_match_the_oracle(
    zone_name: str,
    anchor: date,
    period: tuple[int, int, int, int],
    clock: tuple[int, int],
    skip: int,
) -> None:
    zone = ZoneInfo(zone_name)
    years, months, weeks, days = period
    trigger = CalendarIntervalTrigger(
        years, months, weeks, days, *clock, start_at=anchor, timezone=zone
    )
    month_step, day_step = years * 12 + months, weeks * 7 + days
    expected: list[datetime] = []
    for k in range(skip, skip + 8):
        when = datetime.combine(oracle_date(anchor, k, month_step, day_step), time(*clock))
        instant = oracle_instant(zone, when)
        if not expected or instant > expected[-1]:  # (two dates in one gap fire once)
            expected.append(instant)
    # Asked from just after the grid point before the skip, as after a run.
    previous = None
    if skip:
        before = datetime.combine(oracle_date(anchor, skip - 1, month_step, day_step), time(*clock))
        previous = oracle_instant(zone, before).astimezone(zone)
    got: list[datetime] = []
    for _ in range(len(expected)):
        previous = trigger.get_next_trigger_time(UTC, previous, datetime(2020, 1, 1, tzinfo=UTC))
        assert previous is not None
        assert previous.tzinfo is zone
        got.append(previous)
    assert [t.astimezone(UTC) for t in got] == expected
    assert all(a.astimezone(UTC) < b.astimezone(UTC) for a, b in pairwise(got))
    # latest_fire_time jumps to the last of them (any "now" before the next).
    now = expected[-1] + timedelta(minutes=1)
    latest = trigger.latest_fire_time(UTC, got[0], now)
    assert latest is not None
    assert latest.astimezone(UTC) == expected[-1]
    assert latest.utcoffset() == got[-1].utcoffset()
    assert trigger.latest_fire_time(UTC, got[0], got[0]) == got[0]


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    zone_name=st.sampled_from([*DST_ZONES, "UTC"]),
    first=valid_dates(),
    period=PERIODS,
    clock=st.tuples(st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59])),
)
def test_without_start_at_each_date_is_the_previous_plus_the_period(
    zone_name: str, first: date, period: tuple[int, int, int, int], clock: tuple[int, int]
) -> None:
    zone = ZoneInfo(zone_name)
    years, months, weeks, days = period
    trigger = CalendarIntervalTrigger(years, months, weeks, days, *clock, timezone=zone)
    month_step, day_step = years * 12 + months, weeks * 7 + days
    day = first
    expected = [oracle_instant(zone, datetime.combine(day, time(*clock)))]
    for _ in range(8):
        day = oracle_date(day, 1, month_step, day_step)
        instant = oracle_instant(zone, datetime.combine(day, time(*clock)))
        if instant > expected[-1]:
            expected.append(instant)
    # The first, asked at that very instant (due); then each from the previous.
    previous = trigger.get_next_trigger_time(UTC, None, expected[0])
    got = [previous]
    while len(got) < len(expected):
        assert previous is not None
        previous = trigger.get_next_trigger_time(UTC, previous, previous)
        got.append(previous)
    assert [t.astimezone(UTC) for t in got if t is not None] == expected
    latest = trigger.latest_fire_time(UTC, expected[0], expected[-1] + timedelta(minutes=1))
    if latest is not None:  # (None: the walk it asks for finds the same)
        assert latest.astimezone(UTC) == expected[-1]
    if not month_step or (first.day <= 28 and not day_step):
        assert latest is not None
