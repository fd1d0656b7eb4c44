"""CronTrigger: field expressions, defaults, crontab lines, bounds, state and bad input.

The DST rules live in test_dst.py, the oracle comparison in test_cron_oracle.py.
"""

from __future__ import annotations

import gc
import math
import pickle
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwork.exceptions import InvalidTriggerError
from tickwork.triggers import CronTrigger, create_trigger

T0 = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday
ROOT = Path(__file__).resolve().parents[2]


def fire_times(trigger: CronTrigger, count: int, now: datetime = T0) -> list[datetime]:
    """The first ``count`` fire times from ``now`` (fewer if the trigger ends)."""
    times: list[datetime] = []
    previous = None
    while len(times) < count:
        previous = trigger.get_next_trigger_time(UTC, previous, now)
        if previous is None:
            break
        times.append(previous)
    return times


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# -- fields and defaults -----------------------------------------------------------------


def test_hour_alone_means_that_hour_on_the_dot_every_day() -> None:
    assert fire_times(CronTrigger(hour=3, timezone="UTC"), 2) == [
        utc(2026, 1, 1, 3),
        utc(2026, 1, 2, 3),
    ]


def test_fields_more_significant_than_the_last_given_are_wildcards() -> None:
    trigger = CronTrigger(minute=30, timezone="UTC")  # every hour at :30:00
    assert fire_times(trigger, 2) == [utc(2026, 1, 1, 0, 30), utc(2026, 1, 1, 1, 30)]
    assert trigger.fields == {
        "year": "*",
        "month": "*",
        "day": "*",
        "week": "*",
        "day_of_week": "*",
        "hour": "*",
        "minute": "30",
        "second": "0",
    }


def test_month_alone_is_its_first_day_at_midnight() -> None:
    assert fire_times(CronTrigger(month="jun", timezone="UTC"), 2) == [
        utc(2026, 6, 1),
        utc(2027, 6, 1),
    ]


def test_day_of_week_alone_is_that_day_at_midnight_and_zero_is_monday() -> None:
    monday = CronTrigger(day_of_week=0, timezone="UTC")
    assert fire_times(monday, 2) == [utc(2026, 1, 5), utc(2026, 1, 12)]
    assert monday == CronTrigger(day_of_week="0", timezone="UTC")
    assert fire_times(CronTrigger(day_of_week="sun", timezone="UTC"), 1) == [utc(2026, 1, 4)]


def test_no_field_at_all_fires_every_second() -> None:
    assert fire_times(CronTrigger(timezone="UTC"), 3) == [
        T0,
        utc(2026, 1, 1, 0, 0, 1),
        utc(2026, 1, 1, 0, 0, 2),
    ]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"minute": "*/20"},
            [utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 0, 20), utc(2026, 1, 1, 0, 40)],
        ),
        (
            {"hour": "9-10", "minute": 0},
            [utc(2026, 1, 1, 9), utc(2026, 1, 1, 10), utc(2026, 1, 2, 9)],
        ),
        (
            {"hour": "1-9/4", "minute": 0},
            [utc(2026, 1, 1, 1), utc(2026, 1, 1, 5), utc(2026, 1, 1, 9)],
        ),
        (
            {"minute": "50/5"},
            [utc(2026, 1, 1, 0, 50), utc(2026, 1, 1, 0, 55), utc(2026, 1, 1, 1, 50)],
        ),
        (
            {"second": "5,10, 7"},
            [utc(2026, 1, 1, 0, 0, 5), utc(2026, 1, 1, 0, 0, 7), utc(2026, 1, 1, 0, 0, 10)],
        ),
        ({"month": "feb-mar", "day": 1}, [utc(2026, 2, 1), utc(2026, 3, 1), utc(2027, 2, 1)]),
        (
            {"day_of_week": "mon-fri", "hour": 8},
            [utc(2026, 1, 1, 8), utc(2026, 1, 2, 8), utc(2026, 1, 5, 8)],
        ),
        ({"day": "last"}, [utc(2026, 1, 31), utc(2026, 2, 28), utc(2026, 3, 31)]),
        ({"day": "last fri"}, [utc(2026, 1, 30), utc(2026, 2, 27), utc(2026, 3, 27)]),
        ({"day": "1st mon"}, [utc(2026, 1, 5), utc(2026, 2, 2), utc(2026, 3, 2)]),
        ({"day": "5th sun"}, [utc(2026, 3, 29), utc(2026, 5, 31), utc(2026, 8, 30)]),
        (
            {"day_of_week": "2nd tue, last sat"},
            [utc(2026, 1, 13), utc(2026, 1, 31), utc(2026, 2, 10)],
        ),
        (
            {"week": 53, "day_of_week": "mon"},
            [utc(2026, 12, 28), utc(2032, 12, 27), utc(2037, 12, 28)],
        ),
        ({"year": "2027,2029", "month": 1}, [utc(2027, 1, 1), utc(2029, 1, 1)]),
        (
            {"day": 29, "month": 2, "day_of_week": "mon"},
            [utc(2044, 2, 29), utc(2072, 2, 29), utc(2112, 2, 29)],
        ),
    ],
)
def test_field_expressions(kwargs: dict[str, Any], expected: list[datetime]) -> None:
    assert fire_times(CronTrigger(**kwargs, timezone="UTC"), 3) == expected


def test_ints_and_strings_mean_the_same() -> None:
    assert CronTrigger(hour=3, minute=15) == CronTrigger(hour="3", minute=" 15 ")
    assert CronTrigger(month="JAN") == CronTrigger(month="jan")


def test_last_day_of_a_year_that_ends_is_none() -> None:
    trigger = CronTrigger(year=2026, month=1, day=1, timezone="UTC")
    assert fire_times(trigger, 3) == [T0]
    assert trigger.get_next_trigger_time(UTC, None, utc(2030, 1, 1)) is None
    assert (
        CronTrigger(hour=0, timezone="UTC").get_next_trigger_time(
            UTC, None, datetime(9999, 12, 31, 1, tzinfo=UTC)
        )
        is None
    )


# -- now, previous_time, start_at, end_at, jitter, zones --------------------------------


def test_first_fire_may_equal_now_later_ones_are_strictly_after() -> None:
    trigger = CronTrigger(minute="*/5", timezone="UTC")
    assert trigger.get_next_trigger_time(UTC, None, T0) == T0
    assert trigger.get_next_trigger_time(UTC, T0, T0) == T0 + timedelta(minutes=5)
    # a jittered or late previous_time still lands on the schedule
    late = T0 + timedelta(minutes=1, microseconds=7)
    assert trigger.get_next_trigger_time(UTC, late, T0) == T0 + timedelta(minutes=5)
    assert trigger.get_next_trigger_time(UTC, None, late) == T0 + timedelta(minutes=5)


def test_start_at_and_end_at_bound_the_fire_times() -> None:
    trigger = CronTrigger(
        hour="*",
        minute=0,
        start_at=utc(2026, 1, 1, 5, 30),
        end_at=utc(2026, 1, 1, 8),
        timezone="UTC",
    )
    assert fire_times(trigger, 10) == [utc(2026, 1, 1, h) for h in (6, 7, 8)]
    assert trigger.get_next_trigger_time(UTC, None, utc(2026, 1, 2)) is None
    # without now, the first fire time counts from start_at
    assert trigger.get_next_trigger_time(UTC, None, None) == utc(2026, 1, 1, 6)


def test_without_now_or_start_at_the_first_fire_time_cannot_be_found() -> None:
    with pytest.raises(InvalidTriggerError, match="now"):
        CronTrigger(hour=1).get_next_trigger_time(UTC, None, None)


def test_jitter_only_delays_within_the_bound() -> None:
    trigger = CronTrigger(minute="*", timezone="UTC", jitter=10)
    previous = None
    for _ in range(50):
        fire = trigger.get_next_trigger_time(UTC, previous, T0)
        assert fire is not None
        nominal = fire.replace(second=0, microsecond=0)
        assert timedelta(0) <= fire - nominal <= timedelta(seconds=10)
        assert previous is None or fire > previous
        previous = fire


def test_a_trigger_without_a_zone_follows_the_schedulers() -> None:
    trigger = CronTrigger(hour=9, start_at=datetime(2026, 7, 2))  # naive: the scheduler's zone
    assert trigger.timezone is None
    tokyo = ZoneInfo("Asia/Tokyo")
    fire = trigger.get_next_trigger_time(tokyo, None, utc(2026, 7, 1))
    assert fire == datetime(2026, 7, 2, 9, tzinfo=tokyo)
    assert fire is not None
    assert fire.tzinfo is tokyo
    berlin = ZoneInfo("Europe/Berlin")
    assert trigger.get_next_trigger_time(berlin, None, utc(2026, 7, 1)) == datetime(
        2026, 7, 2, 9, tzinfo=berlin
    )


def test_own_zone_wins_and_results_are_in_it() -> None:
    trigger = CronTrigger(hour=9, timezone="America/New_York")
    fire = trigger.get_next_trigger_time(ZoneInfo("Asia/Tokyo"), None, T0)
    assert fire == datetime(2026, 1, 1, 9, tzinfo=ZoneInfo("America/New_York"))
    assert fire is not None
    assert str(fire.tzinfo) == "America/New_York"


def test_alias_builds_a_cron_trigger() -> None:
    trigger = create_trigger("cron", hour=3, timezone="Europe/Berlin")
    assert trigger == CronTrigger(hour=3, timezone="Europe/Berlin")


# -- crontab lines -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "*/5 9-17 * * mon-fri",
        "0 0 1,15 * *",
        "30 4 1 1 *",
        "0 12 * * 0",
        "0 12 * * 7",
        "15 10 L * *",
        "0 9 * * 5#3",
        "0 9 13 * 5",  # both day fields restricted: the 13th OR a Friday
        "59 23 * jan,jul sat,sun",
    ],
)
def test_crontab_lines_agree_with_croniter_in_utc(line: str) -> None:
    trigger = CronTrigger.from_crontab(line, timezone="UTC")
    reference = croniter(line, T0 - timedelta(microseconds=1))
    expected = [reference.get_next(datetime) for _ in range(12)]
    assert fire_times(trigger, 12) == expected


def test_crontab_sunday_is_zero_or_seven() -> None:
    assert fire_times(CronTrigger.from_crontab("0 0 * * 0", "UTC"), 2) == fire_times(
        CronTrigger.from_crontab("0 0 * * 7", "UTC"), 2
    )
    assert fire_times(CronTrigger.from_crontab("0 0 * * 0", "UTC"), 1) == [utc(2026, 1, 4)]
    assert fire_times(CronTrigger.from_crontab("0 0 * * fri-sun", "UTC"), 3) == [
        utc(2026, 1, 2),
        utc(2026, 1, 3),
        utc(2026, 1, 4),
    ]


def test_crontab_day_fields_are_ored_when_both_are_restricted() -> None:
    either = CronTrigger.from_crontab("0 0 13 * fri", "UTC")
    assert fire_times(either, 3) == [utc(2026, 1, 2), utc(2026, 1, 9), utc(2026, 1, 13)]
    # the constructor is APScheduler's: every field must match (Friday the 13th)
    both = CronTrigger(day=13, day_of_week="fri", timezone="UTC")
    assert fire_times(both, 2) == [utc(2026, 2, 13), utc(2026, 3, 13)]


def test_a_day_field_starting_with_a_star_is_unrestricted_as_in_vixie_cron() -> None:
    # Vixie cron (and cronie) AND the day fields when either starts with '*'; croniter
    # would OR them here and also fire on every odd day.
    trigger = CronTrigger.from_crontab("0 9 */2 * 1", "UTC")
    assert fire_times(trigger, 3) == [utc(2026, 1, 5, 9), utc(2026, 1, 19, 9), utc(2026, 2, 9, 9)]


def test_six_fields_put_the_seconds_first() -> None:
    trigger = CronTrigger.from_crontab("30 */10 * * * *", "UTC")
    assert fire_times(trigger, 2) == [utc(2026, 1, 1, 0, 0, 30), utc(2026, 1, 1, 0, 10, 30)]


@pytest.mark.parametrize(
    ("alias", "line"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
    ],
)
def test_crontab_aliases(alias: str, line: str) -> None:
    assert fire_times(CronTrigger.from_crontab(alias, "UTC"), 3) == fire_times(
        CronTrigger.from_crontab(line, "UTC"), 3
    )


def test_crontab_last_weekday_of_the_month() -> None:
    assert fire_times(CronTrigger.from_crontab("0 0 * * L5", "UTC"), 2) == [
        utc(2026, 1, 30),
        utc(2026, 2, 27),
    ]


# -- state, equality, repr ---------------------------------------------------------------


@pytest.mark.parametrize(
    "trigger",
    [
        CronTrigger(day="last fri", hour="9-17/2", timezone="Europe/Berlin"),
        CronTrigger(minute=5, start_at=datetime(2026, 3, 1), end_at="2027-01-01T00:00:00+00:00"),
        CronTrigger.from_crontab("*/5 9-17 * * mon-fri", timezone="America/New_York"),
    ],
)
def test_pickles_to_an_equal_trigger_that_fires_the_same(trigger: CronTrigger) -> None:
    copy = pickle.loads(pickle.dumps(trigger))
    assert copy == trigger
    assert fire_times(copy, 5) == fire_times(trigger, 5)
    assert trigger.__getstate__()["version"] == 1


def test_jitter_survives_pickling() -> None:
    trigger = CronTrigger(hour=1, jitter=5)
    assert pickle.loads(pickle.dumps(trigger)) == trigger
    assert trigger != CronTrigger(hour=1)


def test_state_is_plain_data() -> None:
    state = CronTrigger.from_crontab("0 3 * * *", "UTC").__getstate__()
    assert state["crontab"] == "0 3 * * *"
    assert state["fields"] is None
    assert CronTrigger(hour=3).__getstate__()["fields"]["hour"] == "3"


def test_a_newer_state_version_is_refused() -> None:
    state = CronTrigger(hour=3).__getstate__() | {"version": 99}
    trigger = CronTrigger.__new__(CronTrigger)
    with pytest.raises(InvalidTriggerError, match="version 99"):
        trigger.__setstate__(state)


def test_equality() -> None:
    assert CronTrigger(hour=3) != CronTrigger(hour=4)
    assert CronTrigger(hour=3, timezone="UTC") != CronTrigger(hour=3)
    assert CronTrigger.from_crontab("0 3 * * *") != CronTrigger(hour=3)  # built differently


def test_repr_reads_like_the_call_that_built_it() -> None:
    assert repr(CronTrigger(hour=3, timezone="Europe/Berlin")) == (
        "CronTrigger(hour='3', minute='0', second='0', timezone='Europe/Berlin')"
    )
    assert repr(CronTrigger.from_crontab("@daily", "UTC", jitter=2)) == (
        "CronTrigger.from_crontab('@daily', timezone='UTC', jitter=2.0)"
    )
    assert "start_at='2026-01-01T00:00:00+00:00'" in repr(CronTrigger(hour=1, start_at=T0))


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"minute": 60}, ["minute", "60", "0-59"]),
        ({"month": 13}, ["month", "13"]),
        ({"hour": -1}, ["hour", "-1"]),
        ({"day_of_week": 7}, ["day_of_week", "7", "Monday"]),
        ({"month": "foo"}, ["month", "'foo'"]),
        ({"day_of_week": "mon-fry"}, ["day_of_week", "'fry'"]),
        ({"day": "6th mon"}, ["day", "'6th mon'"]),
        ({"day": "last xyz"}, ["day", "'xyz'"]),
        ({"minute": "*/0"}, ["minute", "step"]),
        ({"hour": "5-1"}, ["hour", "5-1", "backwards"]),
        ({"hour": ""}, ["hour", "empty"]),
        ({"hour": True}, ["hour", "True"]),
        ({"hour": 1.5}, ["hour", "1.5"]),
        ({"day": 31, "month": "feb"}, ["day='31'", "month='feb'", "never fire"]),
        ({"day": 30, "month": 2}, ["day='30'", "month='2'", "never fire"]),
        ({"year": 2025, "month": 2, "day": 29}, ["year='2025'", "never fire"]),
        ({"timezone": "Nowhere/Land"}, ["Nowhere/Land"]),
        ({"jitter": -1}, ["jitter"]),
        ({"start_at": "yesterday"}, ["start_at", "'yesterday'"]),
        ({"start_at": utc(2026, 2, 1), "end_at": utc(2026, 1, 1)}, ["start_at", "end_at"]),
    ],
)
def test_bad_fields_are_refused_naming_field_and_value(
    kwargs: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(InvalidTriggerError) as caught:
        CronTrigger(**kwargs)
    for word in words:
        assert word in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_an_unknown_keyword_is_refused_with_a_suggestion() -> None:
    with pytest.raises(InvalidTriggerError, match=r"'minutes'.*'minute'"):
        CronTrigger(minutes=5)  # type: ignore[arg-type]  # a type checker catches it too
    with pytest.raises(InvalidTriggerError, match="minutes"):
        create_trigger("cron", minutes=5)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("* * * *", ["4 fields", "expected 5"]),
        ("* * * * * * *", ["7 fields"]),
        ("", ["0 fields"]),
        ("*/0 * * * *", ["minute", "'*/0'"]),
        ("5-1 * * * *", ["minute", "'5-1'", "backwards"]),
        ("0 0 * * fri-mon", ["day_of_week", "backwards"]),
        ("60 * * * *", ["minute", "'60'"]),
        ("0 24 * * *", ["hour", "'24'"]),
        ("0 0 0 * *", ["day", "'0'"]),
        ("0 0 * 13 *", ["month", "'13'"]),
        ("0 0 * foo *", ["month", "'foo'"]),
        ("0 0 * * 8", ["day_of_week", "'8'"]),
        ("0 0 15W * *", ["day", "'15w'", "W"]),
        ("0 0 30 2 *", ["never fire"]),
        ("@reboot", ["@reboot", "alias"]),
        ("H * * * *", ["minute", "'h'"]),
    ],
)
def test_malformed_crontabs_are_refused(line: str, words: list[str]) -> None:
    with pytest.raises(InvalidTriggerError) as caught:
        CronTrigger.from_crontab(line)
    for word in words:
        assert word in str(caught.value)


def test_a_crontab_must_be_a_string() -> None:
    with pytest.raises(InvalidTriggerError, match="string"):
        CronTrigger.from_crontab(5)  # type: ignore[arg-type]


# -- package surface ---------------------------------------------------------------------


def test_exported_and_registered_under_their_aliases() -> None:
    import tickwork.triggers as triggers
    from tickwork.triggers import AndTrigger, OrTrigger, trigger_registry

    for name in ("CronTrigger", "AndTrigger", "OrTrigger"):
        assert name in triggers.__all__
    assert trigger_registry.lookup("cron") is CronTrigger
    assert trigger_registry.lookup("and") is AndTrigger
    assert trigger_registry.lookup("or") is OrTrigger


def test_importing_the_triggers_does_not_import_croniter() -> None:
    code = "import sys, tickwork.triggers; sys.exit('croniter' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False)
    assert result.returncode == 0


# -- cost: many tasks share few schedules, and stores parse every loaded trigger again ------


def test_triggers_with_the_same_expression_share_one_compiled_spec() -> None:
    by_fields = [CronTrigger(hour=3, minute=15, timezone="UTC") for _ in range(3)]
    assert by_fields[0]._spec is by_fields[1]._spec is by_fields[2]._spec
    by_line = [
        CronTrigger.from_crontab("*/5 * * * *", timezone=zone) for zone in ("UTC", "Europe/Berlin")
    ]
    assert by_line[0]._spec is by_line[1]._spec  # the spec knows no zone
    reloaded = pickle.loads(pickle.dumps(by_fields[0]))
    assert reloaded._spec is by_fields[0]._spec


def test_a_cron_trigger_is_small() -> None:
    # A year field of "*" is 8,030 years: kept as a range, not as 8,030 int objects
    # (which made every cron trigger about 330 KB and half a millisecond to build).
    trigger = CronTrigger(hour=3, timezone="UTC")
    assert isinstance(trigger._spec.years, range)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [
            CronTrigger(hour=i % 24, minute=i % 60, second=i % 7, timezone="UTC")
            for i in range(500)
        ]
        per_trigger = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert per_trigger < 8_000, f"{per_trigger:.0f} bytes per distinct cron trigger"


# -- jitter: finite, shorter than the schedule's gaps, never past end_at ------------------


@pytest.mark.parametrize(
    ("jitter", "words"),
    [
        (math.nan, ["jitter", "nan"]),
        (math.inf, ["jitter", "inf"]),
        (-math.inf, ["jitter", "-inf"]),
        (1e300, ["jitter", "1e+300"]),
        (-0.5, ["jitter", "-0.5"]),
    ],
)
def test_jitter_that_is_not_a_finite_delay_is_refused(jitter: float, words: list[str]) -> None:
    with pytest.raises(InvalidTriggerError) as caught:
        CronTrigger(hour=3, jitter=jitter)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    ("build", "gap"),
    [
        (lambda j: CronTrigger(minute="*", jitter=j), 60),
        (lambda j: CronTrigger.from_crontab("*/5 * * * *", jitter=j), 300),
        (
            lambda j: CronTrigger(
                day_of_week="mon,tue", hour=9, timezone="Europe/Berlin", jitter=j
            ),
            86400,
        ),
        (lambda j: CronTrigger(second="0,10", jitter=j, start_at=utc(2026, 6, 1)), 10),
    ],
)
def test_jitter_must_be_shorter_than_the_time_between_fire_times(build: Any, gap: int) -> None:
    assert build(gap - 1).jitter == timedelta(seconds=gap - 1)
    with pytest.raises(InvalidTriggerError) as caught:
        build(gap)
    message = str(caught.value)
    assert f"got {gap}" in message
    assert str(timedelta(seconds=gap)) in message


def test_jitter_is_not_checked_on_a_schedule_that_fires_once() -> None:
    once = CronTrigger(year=2030, month=1, day=1, jitter=10**6)
    assert once.jitter == timedelta(seconds=10**6)


@settings(max_examples=100, deadline=None)
@given(
    step=st.sampled_from([1, 2, 5, 15, 30]),
    jitter_part=st.floats(min_value=0.01, max_value=0.99),
    fires=st.integers(min_value=1, max_value=12),
    end_part=st.floats(min_value=0, max_value=0.999),
    zone=st.sampled_from([None, "UTC", "America/New_York", "Australia/Lord_Howe"]),
)
def test_jitter_never_pushes_a_fire_time_past_end_at(
    step: int, jitter_part: float, fires: int, end_part: float, zone: str | None
) -> None:
    # a minute grid from T0; end_at a little after the last fire time that jitter could
    # push past it
    end_at = T0 + timedelta(minutes=step * (fires - 1 + end_part))
    trigger = CronTrigger(
        minute=f"*/{step}", end_at=end_at, timezone=zone, jitter=step * 60 * jitter_part
    )
    times = fire_times(trigger, fires + 5)
    assert all(fire_time <= end_at for fire_time in times)
    assert all(a < b for a, b in pairwise(times))
    assert len(times) == fires  # the last one capped at end_at, not dropped


def test_start_date_and_end_date_are_synonyms_and_misspellings_get_the_right_name() -> None:
    end = utc(2026, 2, 1)
    assert CronTrigger(hour=3, start_date=T0, end_date=end) == CronTrigger(
        hour=3, start_at=T0, end_at=end
    )
    with pytest.raises(InvalidTriggerError, match=r"end_at.*end_date.*not both"):
        CronTrigger(hour=3, end_at=end, end_date=end)
    with pytest.raises(InvalidTriggerError) as caught:
        CronTrigger(hour=3, misfire_grace_time=5)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "'misfire_grace_time'" in message
    assert "'mistrigger_grace_time'" in message
    assert "'hour'" not in message.partition(";")[0]  # only the unknown keyword is named
