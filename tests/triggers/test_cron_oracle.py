"""CronTrigger against the brute-force oracle, near DST transitions in four zones.

Random schedules (built through the constructor or as a crontab line), random start
points within days of a transition in 2024-2030; the trigger's fire times over the next
few days must be exactly the oracle's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cron_oracle import OracleSpec, oracle_fire_times, transitions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickwork.triggers import CronTrigger

# New York: 1 h at 02:00; Berlin: 1 h at 02:00/03:00; Lord Howe: 30 min at 02:00;
# Santiago: 1 h at midnight, so the gap and the repeated hour cross a date change.
ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Santiago"]
CRON_WEEKDAY = ["1", "2", "3", "4", "5", "6", "0"]  # crontab number of Monday-first weekdays
WEEKDAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ORDINALS = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "5th", -1: "last"}


@dataclass(frozen=True)
class Case:
    """One generated schedule: the oracle's sets and how to build the trigger."""

    spec: OracleSpec
    kwargs: dict[str, str] | None  # constructor fields, or
    crontab: str | None


def listing(values: frozenset[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


@st.composite
def time_field(
    draw: st.DrawFn, high: int, favourites: list[int], steps: list[int]
) -> tuple[frozenset[int], str]:
    kind = draw(st.sampled_from(["all", "list", "list", "step"]))
    if kind == "all":
        return frozenset(range(high + 1)), "*"
    if kind == "step":
        step = draw(st.sampled_from(steps))
        return frozenset(range(0, high + 1, step)), f"*/{step}"
    pick = st.one_of(st.sampled_from(favourites), st.integers(0, high))
    values = frozenset(draw(st.lists(pick, min_size=1, max_size=5, unique=True)))
    return values, listing(values)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    # Hours near the transitions (Santiago's are at midnight) make the DST rules bite.
    hours, hour_text = draw(time_field(23, [0, 1, 2, 3, 22, 23], [2, 3, 6]))
    minutes, minute_text = draw(time_field(59, [0, 15, 30, 45, 59], [5, 15, 20, 30]))
    if draw(st.integers(0, 5)) == 0:
        seconds, second_text = draw(time_field(59, [0, 30], [20, 30]))
    else:
        seconds, second_text = frozenset({0}), "0"
    days: frozenset[int] = frozenset(range(1, 32))
    weekdays: frozenset[int] = frozenset(range(7))
    day_nth: frozenset[tuple[int, int]] = frozenset()
    weekday_nth: frozenset[tuple[int, int]] = frozenset()
    last_day = False
    day_restricted = draw(st.integers(0, 3)) == 0
    weekday_restricted = draw(st.integers(0, 3)) == 0
    if day_restricted:
        days = frozenset(draw(st.lists(st.integers(1, 31), min_size=1, max_size=12, unique=True)))
        last_day = draw(st.booleans())
    if weekday_restricted:
        weekdays = frozenset(draw(st.lists(st.integers(0, 6), min_size=1, max_size=4, unique=True)))
    months = frozenset(range(1, 13))
    every_day = not day_restricted and not weekday_restricted

    if draw(st.booleans()):  # the constructor, APScheduler-style: every field must match
        day_terms = [listing(days)] if day_restricted else []
        if day_restricted and last_day:
            day_terms.append("last")
        if day_restricted and draw(st.booleans()):
            pair = (draw(st.integers(0, 6)), draw(st.sampled_from(list(ORDINALS))))
            day_nth = frozenset({pair})
            day_terms.append(f"{ORDINALS[pair[1]]} {WEEKDAY_NAMES[pair[0]]}")
        kwargs = {
            "year": "*",
            "month": "*",
            "day": ",".join(day_terms) or "*",
            "week": "*",
            "day_of_week": ",".join(WEEKDAY_NAMES[d] for d in sorted(weekdays))
            if weekday_restricted
            else "*",
            "hour": hour_text,
            "minute": minute_text,
            "second": second_text,
        }
        spec = OracleSpec(
            months, days, last_day, day_nth, weekdays, weekday_nth, hours, minutes, seconds,
            day_or=False, dom_star=not day_restricted, dow_star=not weekday_restricted,
        )  # fmt: skip
        return Case(spec, kwargs, None)

    # A crontab line: both day fields restricted means either one suffices.
    dom_text = listing(days) + (",L" if last_day else "") if day_restricted else "*"
    if weekday_restricted and draw(st.integers(0, 3)) == 0:
        weekday, n = draw(st.integers(0, 6)), draw(st.integers(1, 5))
        weekdays, weekday_nth = frozenset(), frozenset({(weekday, n)})
        dow_text = f"{CRON_WEEKDAY[weekday]}#{n}"
    elif weekday_restricted:
        sunday = draw(st.sampled_from(["0", "7"]))
        dow_text = ",".join(sunday if d == 6 else CRON_WEEKDAY[d] for d in sorted(weekdays))
    else:
        dow_text = "*"
    fields = f"{minute_text} {hour_text} {dom_text} * {dow_text}"
    line = fields if seconds == {0} else f"{second_text} {fields}"
    if every_day and line == "0 * * * *" and draw(st.booleans()):
        line = "@hourly"
    spec = OracleSpec(
        months, days, last_day, day_nth, weekdays, weekday_nth, hours, minutes, seconds,
        day_or=True, dom_star=not day_restricted, dow_star=not weekday_restricted,
    )  # fmt: skip
    return Case(spec, None, line)


@st.composite
def start_points(draw: st.DrawFn) -> tuple[str, datetime]:
    zone = draw(st.sampled_from(ZONES))
    year = draw(st.integers(2024, 2030))
    change = draw(st.sampled_from(transitions(zone, year)))
    # Exactly at the change, a second either side, or anywhere from 2 days before to 1 after.
    shift = draw(
        st.one_of(
            st.sampled_from([0, -1, 1]),
            st.integers(-2 * 86400, 86400),
            st.floats(-7200, 7200, allow_nan=False),
        )
    )
    return zone, change + timedelta(seconds=shift)


def build(case: Case, zone: str | None) -> CronTrigger:
    if case.crontab is not None:
        return CronTrigger.from_crontab(case.crontab, timezone=zone)
    kwargs: dict[str, Any] = dict(case.kwargs or {})
    return CronTrigger(**kwargs, timezone=zone)


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(case=cases(), start=start_points(), own_zone=st.booleans())
def test_cron_trigger_matches_the_oracle(
    case: Case, start: tuple[str, datetime], own_zone: bool
) -> None:
    zone_name, begin = start
    zone = ZoneInfo(zone_name)
    # Second-level schedules need a one-second walk: keep that window short.
    window = timedelta(days=3) if case.spec.seconds == {0} else timedelta(hours=3)
    if case.spec.step == timedelta(seconds=1):
        begin = begin - timedelta(hours=1)
    expected = oracle_fire_times(case.spec, zone, begin, window)

    # A trigger without a zone follows the zone the scheduler passes in.
    trigger = build(case, zone_name if own_zone else None)
    scheduler_zone = UTC if own_zone else zone
    got: list[datetime] = []
    fire_time = trigger.get_next_trigger_time(scheduler_zone, None, begin)
    while fire_time is not None and fire_time < begin + window:
        assert fire_time.tzinfo is not None
        assert fire_time.utcoffset() == zone.utcoffset(fire_time)  # reported in the zone
        if got:
            assert fire_time.astimezone(UTC) > got[-1]
        got.append(fire_time.astimezone(UTC))
        fire_time = trigger.get_next_trigger_time(scheduler_zone, fire_time, begin)
    assert got == expected, (case, zone_name, begin)
