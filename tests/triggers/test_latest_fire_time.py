"""``latest_fire_time``: the jump a coalesced task's catch-up takes instead of walking.

The oracle is the walk itself: from ``due``, ask ``get_next_trigger_time`` for the next
fire time until it is after ``now`` (compared in UTC). For interval and cron triggers
without jitter the answer must be exactly the last time that walk reaches, with the UTC
offset the walk gives it; triggers that cannot tell (jitter, combinations) answer
``None``. The cases concentrate around DST changes: Berlin and New York (one hour),
Lord Howe (30 minutes) and Santiago (at midnight).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import timezone as fixed_zone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickwork.triggers import (
    AndTrigger,
    BaseTrigger,
    CronTrigger,
    DateTrigger,
    IntervalTrigger,
    OrTrigger,
)
from tickwork.triggers import cron as cron_module

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
DST_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago"]
#: Walks longer than this are cut short: the oracle must stay cheap.
MAX_WALK = 800

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def walk(
    trigger: BaseTrigger,
    zone: tzinfo,
    due: datetime,
    limit: int = MAX_WALK,
    until: datetime | None = None,
) -> tuple[list[datetime], bool]:
    """``due`` and the fire times after it, as many as ``limit`` or up to the first after
    ``until``: what the scheduler's walk visits; and whether the trigger ended or passed
    ``until`` (else the list was cut short)."""
    times = [due]
    while len(times) < limit:
        following = trigger.get_next_trigger_time(zone, times[-1], due)
        if following is None:
            return times, True
        times.append(following)
        if until is not None and following.astimezone(UTC) > until.astimezone(UTC):
            return times, True
    return times, False


def last_not_after(times: list[datetime], now: datetime) -> datetime:
    """The walk's answer: the last of ``times`` (in order) that is not after ``now``."""
    answer = times[0]
    for fire_time in times:
        if fire_time.astimezone(UTC) > now.astimezone(UTC):
            break
        answer = fire_time
    return answer


def assert_same_time(answer: datetime | None, expected: datetime) -> None:
    """Same instant and same UTC offset (the wall time the walk would show)."""
    assert answer is not None
    assert answer.astimezone(UTC) == expected.astimezone(UTC)
    assert answer.utcoffset() == expected.utcoffset()


def transitions(zone: ZoneInfo, year: int) -> list[datetime]:
    """The instants (UTC) at which ``zone`` changes its offset in ``year``, found hour by
    hour and then to the second."""
    changes = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(zone).utcoffset()
    while moment < end:
        following = moment + timedelta(hours=1)
        if following.astimezone(zone).utcoffset() != offset:
            low, high = moment, following
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            changes.append(high.replace(microsecond=0))
            offset = following.astimezone(zone).utcoffset()
        moment = following
    return changes


@dataclass(frozen=True)
class Place:
    """Where a case happens: a zone with DST, one of its changes (UTC), and an instant
    within two days of it."""

    zone: ZoneInfo
    change: datetime
    moment: datetime


@st.composite
def near_a_change(draw: st.DrawFn) -> Place:
    zone = ZoneInfo(draw(st.sampled_from(DST_ZONES)))
    change = draw(st.sampled_from(transitions(zone, draw(st.integers(2024, 2028)))))
    shift = draw(
        st.one_of(
            st.sampled_from([0.0, -1.0, 1.0, -3600.0, -1800.0]),
            st.floats(-2 * 86400, 86400, allow_nan=False),
        )
    )
    return Place(zone, change, change + timedelta(seconds=round(shift, 3)))


@st.composite
def now_among(draw: st.DrawFn, walked: tuple[list[datetime], bool], place: Place) -> datetime:
    """A "now" among the walked fire times: on one, a microsecond either side, up to
    three hours later, or within two hours of the DST change (but never before the first
    fire time, nor past the last one when the walk was cut short); in UTC or in the zone
    (where ``fold`` says which pass of a repeated hour it is)."""
    times, ended = walked
    if draw(st.integers(0, 2)) == 0:
        base = place.change
        shift = draw(st.timedeltas(timedelta(hours=-2), timedelta(hours=2)))
    else:
        base = draw(st.sampled_from(times)).astimezone(UTC)
        shift = draw(
            st.one_of(
                st.just(timedelta(0)),
                st.sampled_from([timedelta(microseconds=1), timedelta(microseconds=-1)]),
                st.timedeltas(timedelta(0), timedelta(hours=3)),
            )
        )
    now = max(base + shift, times[0].astimezone(UTC))
    if not ended:
        now = min(now, times[-1].astimezone(UTC))
    return now.astimezone(place.zone) if draw(st.booleans()) else now


# -- IntervalTrigger ----------------------------------------------------------------------

INTERVALS = st.one_of(
    st.sampled_from([1, 7, 60, 900, 1800, 3600, 5400, 86400]).map(lambda s: timedelta(seconds=s)),
    st.timedeltas(timedelta(milliseconds=1), timedelta(hours=5)),
)


@SETTINGS
@given(
    place=near_a_change(),
    length=INTERVALS,
    anchored=st.sampled_from(["start_at", "none", "fixed start_at", "off the grid"]),
    due_in_zone=st.booleans(),
    with_end=st.booleans(),
    data=st.data(),
)
def test_interval_matches_the_walk(
    place: Place,
    length: timedelta,
    anchored: str,
    due_in_zone: bool,
    with_end: bool,
    data: st.DataObject,
) -> None:
    zone, moment = place.zone, place.moment
    start_at: datetime | None = None
    if anchored in ("start_at", "off the grid"):
        start_at = moment.astimezone(zone)
    elif anchored == "fixed start_at":  # the fast path for zones without DST
        start_at = moment.astimezone(fixed_zone(timedelta(hours=5, minutes=30)))
    end_at = None
    if with_end:
        end_at = moment + data.draw(st.timedeltas(timedelta(0), length * 500), label="end")
    trigger = IntervalTrigger(
        seconds=length.total_seconds(), start_at=start_at, end_at=end_at, timezone=zone
    )
    if start_at is None:
        # The task's next run time carries the grid: any instant can be the first.
        due = moment
    elif anchored == "off the grid":
        # A next run time set by hand, maybe before start_at: the walk goes on from it
        # to the grid.
        due = moment + data.draw(st.timedeltas(-2 * length, 2 * length), label="off")
    else:
        first = trigger.get_next_trigger_time(UTC, None, moment)
        assert first is not None
        due = first
    due = due.astimezone(zone) if due_in_zone else due.astimezone(UTC)
    walked = walk(trigger, UTC, due)
    now = data.draw(now_among(walked, place), label="now")
    answer = trigger.latest_fire_time(UTC, due, now)
    assert_same_time(answer, last_not_after(walked[0], now))


def test_interval_a_day_behind_jumps_in_one_step() -> None:
    start = datetime(2026, 3, 28, 12, tzinfo=UTC)
    now = start + timedelta(days=1, microseconds=400_000)  # over Berlin's spring change
    for trigger in (
        IntervalTrigger(seconds=1, timezone=UTC),
        IntervalTrigger(seconds=1, start_at=start - timedelta(seconds=0.5), timezone=BERLIN),
        IntervalTrigger(seconds=1, start_at=start, timezone=fixed_zone(timedelta(hours=-3))),
    ):
        due = trigger.get_next_trigger_time(UTC, None, start)
        assert due is not None
        answer = trigger.latest_fire_time(UTC, due, now)
        assert answer is not None
        assert now - timedelta(seconds=1) < answer <= now
        assert answer.tzinfo is trigger.timezone
        following = trigger.get_next_trigger_time(UTC, answer, now)
        assert following is not None
        assert following > now


def test_interval_stops_at_end_at() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(minutes=10, seconds=30)
    trigger = IntervalTrigger(minutes=1, start_at=start, end_at=end, timezone=UTC)
    answer = trigger.latest_fire_time(UTC, start, start + timedelta(days=3))
    assert answer == start + timedelta(minutes=10)


def test_interval_with_jitter_answers_none() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for trigger in (
        IntervalTrigger(seconds=10, start_at=start, jitter=2, timezone=UTC),
        IntervalTrigger(seconds=10, jitter=2, timezone=UTC),  # anchors on first use
    ):
        due = trigger.get_next_trigger_time(UTC, None, start)
        assert due is not None
        assert trigger.latest_fire_time(UTC, due, due + timedelta(hours=1)) is None


def test_interval_elapsed_time_through_the_repeated_hour() -> None:
    # New York falls back at 06:00 UTC on 2026-11-01: 01:00-02:00 local happens twice.
    start = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 00:00 EDT
    trigger = IntervalTrigger(minutes=20, start_at=start, timezone=NEW_YORK)
    now = datetime(2026, 11, 1, 6, 10, tzinfo=UTC).astimezone(NEW_YORK)  # 01:10 EST
    assert now.fold == 1
    answer = trigger.latest_fire_time(UTC, start, now)
    assert answer is not None
    assert answer.astimezone(UTC) == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    assert (answer.hour, answer.minute, answer.fold) == (1, 0, 1)  # 01:00 EST, 2nd pass


# -- CronTrigger --------------------------------------------------------------------------

HOURS = ["*", "*", "2", "1", "0,1,2,3", "22,23,0", "1-3", "*/2", "3", "0"]
MINUTES = ["*", "0", "30", "*/15", "0,59", "45", "5,50", "*/20"]
SECONDS = ["0", "0", "0", "30", "*/20", "*"]
DAYS = ["*", "*", "*", "1,15", "last", "29,30,31"]
WEEKDAYS = ["*", "*", "*", "sun", "mon-fri", "sat,sun"]


@st.composite
def cron_triggers(draw: st.DrawFn, zone: ZoneInfo) -> tuple[CronTrigger, tzinfo]:
    """A cron trigger (constructor or crontab line), and the scheduler's zone to ask with:
    the trigger has ``zone`` as its own, or none and follows the scheduler's."""
    own = draw(st.booleans())
    own_zone = zone if own else None
    if draw(st.integers(0, 3)) == 0:
        minute, hour = draw(st.sampled_from(MINUTES)), draw(st.sampled_from(HOURS))
        dom, dow = (
            draw(st.sampled_from(["*", "1,15", "L"])),
            draw(st.sampled_from(["*", "0", "1-5"])),
        )
        line = f"{minute} {hour} {dom} * {dow}"
        if draw(st.booleans()):
            line = f"{draw(st.sampled_from(SECONDS))} {line}"
        trigger = CronTrigger.from_crontab(line, timezone=own_zone)
    else:
        trigger = CronTrigger(
            day=draw(st.sampled_from(DAYS)),
            day_of_week=draw(st.sampled_from(WEEKDAYS)),
            hour=draw(st.sampled_from(HOURS)),
            minute=draw(st.sampled_from(MINUTES)),
            second=draw(st.sampled_from(SECONDS)),
            timezone=own_zone,
        )
    return trigger, (UTC if own else zone)


@SETTINGS
@given(place=near_a_change(), data=st.data())
def test_cron_matches_the_walk(place: Place, data: st.DataObject) -> None:
    zone, moment = place.zone, place.moment
    trigger, scheduler_zone = data.draw(cron_triggers(zone), label="trigger")
    due = trigger.get_next_trigger_time(scheduler_zone, None, moment)
    assert due is not None
    walked = walk(trigger, scheduler_zone, due)
    now = data.draw(now_among(walked, place), label="now")
    answer = trigger.latest_fire_time(scheduler_zone, due, now)
    assert_same_time(answer, last_not_after(walked[0], now))


@SETTINGS
@given(place=near_a_change(), data=st.data())
def test_cron_within_start_and_end_matches_the_walk(place: Place, data: st.DataObject) -> None:
    zone, moment = place.zone, place.moment
    start_at = moment - data.draw(st.timedeltas(timedelta(0), timedelta(hours=6)), label="start")
    end_at = moment + data.draw(st.timedeltas(timedelta(0), timedelta(days=2)), label="end")
    trigger = CronTrigger(
        hour=data.draw(st.sampled_from(HOURS), label="hour"),
        minute=data.draw(st.sampled_from(MINUTES), label="minute"),
        start_at=start_at.astimezone(zone),
        end_at=end_at.astimezone(zone),
        timezone=zone,
    )
    due = trigger.get_next_trigger_time(UTC, None, start_at)
    if due is None:  # nothing between start_at and end_at
        return
    walked = walk(trigger, UTC, due)
    now = data.draw(now_among(walked, place), label="now")
    answer = trigger.latest_fire_time(UTC, due, now)
    assert_same_time(answer, last_not_after(walked[0], now))


def berlin(year: int, month: int, day: int, hour: int, minute: int, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN, fold=fold)


def new_york(year: int, month: int, day: int, hour: int, minute: int, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK, fold=fold)


@pytest.mark.parametrize(
    ("trigger", "due", "now", "expected"),
    [
        # Gap (rule 1): a daily 02:30 in Berlin fires at 03:00 CEST on 2026-03-29.
        (
            CronTrigger(hour=2, minute=30, timezone=BERLIN),
            berlin(2026, 3, 20, 2, 30),
            berlin(2026, 3, 29, 3, 10),
            berlin(2026, 3, 29, 3, 0),
        ),
        # Repeated hour (rule 2): a daily 01:30 in New York fires at its first pass only,
        # so in the second pass the latest is the first pass, 01:30 EDT.
        (
            CronTrigger(hour=1, minute=30, timezone=NEW_YORK),
            new_york(2026, 10, 20, 1, 30),
            new_york(2026, 11, 1, 1, 40, fold=1),
            new_york(2026, 11, 1, 1, 30),
        ),
        # ... and still in the second pass before its own wall time comes round again.
        (
            CronTrigger(hour=1, minute=30, timezone=NEW_YORK),
            new_york(2026, 10, 20, 1, 30),
            new_york(2026, 11, 1, 1, 10, fold=1),
            new_york(2026, 11, 1, 1, 30),
        ),
        # Wildcard hour (rule 3): both passes count; in the second pass at 01:20 EST the
        # latest is 01:15 EST ...
        (
            CronTrigger(minute="*/15", timezone=NEW_YORK),
            new_york(2026, 10, 31, 12, 0),
            new_york(2026, 11, 1, 1, 20, fold=1),
            new_york(2026, 11, 1, 1, 15, fold=1),
        ),
        # ... and at 01:10 EST, with only :50 matching, 01:50 EDT (a wall time still ahead
        # of "now" on the clock, but already shown in the first pass).
        (
            CronTrigger(minute=50, timezone=NEW_YORK),
            new_york(2026, 10, 31, 12, 50),
            new_york(2026, 11, 1, 1, 10, fold=1),
            new_york(2026, 11, 1, 1, 50),
        ),
        # Wildcard hour over a gap: nothing inside it; 01:45 CET is the latest by 03:10.
        (
            CronTrigger(minute=45, timezone=BERLIN),
            berlin(2026, 3, 28, 12, 45),
            berlin(2026, 3, 29, 3, 10),
            berlin(2026, 3, 29, 1, 45),
        ),
        # A rare schedule, years behind: Feb 29 on a Monday (2016, 2044).
        (
            CronTrigger(month=2, day=29, day_of_week="mon", timezone=UTC),
            datetime(2016, 2, 29, tzinfo=UTC),
            datetime(2043, 1, 1, tzinfo=UTC),
            datetime(2016, 2, 29, tzinfo=UTC),
        ),
        (
            CronTrigger(month=2, day=29, timezone=UTC),
            datetime(2016, 2, 29, tzinfo=UTC),
            datetime(2031, 7, 1, tzinfo=UTC),
            datetime(2028, 2, 29, tzinfo=UTC),
        ),
    ],
)
def test_cron_dst_rules_backwards(
    trigger: CronTrigger, due: datetime, now: datetime, expected: datetime
) -> None:
    answer = trigger.latest_fire_time(UTC, due, now)
    assert_same_time(answer, expected)
    times, complete = walk(trigger, UTC, due, limit=100_000, until=now)
    assert complete
    assert_same_time(answer, last_not_after(times, now))


def test_cron_every_second_a_day_behind() -> None:
    trigger = CronTrigger(second="*", timezone=BERLIN)
    now = datetime(2026, 3, 29, 12, 0, 0, 250_000, tzinfo=UTC)
    due = trigger.get_next_trigger_time(UTC, None, now - timedelta(days=1))
    assert due is not None
    answer = trigger.latest_fire_time(UTC, due, now)
    assert answer is not None
    assert answer.astimezone(UTC) == now.replace(microsecond=0)


def test_cron_with_jitter_answers_none() -> None:
    trigger = CronTrigger(minute="*/5", jitter=30, timezone=UTC)
    due = datetime(2026, 1, 1, tzinfo=UTC)
    assert trigger.latest_fire_time(UTC, due, due + timedelta(days=1)) is None


def test_cron_stops_at_end_at() -> None:
    end = datetime(2026, 1, 1, 10, 7, tzinfo=UTC)
    trigger = CronTrigger(minute="*/5", end_at=end, timezone=UTC)
    due = datetime(2026, 1, 1, tzinfo=UTC)
    answer = trigger.latest_fire_time(UTC, due, due + timedelta(days=1))
    assert answer == datetime(2026, 1, 1, 10, 5, tzinfo=UTC)


def test_cron_a_wrong_candidate_is_never_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    # The backward search is checked with the forward one: a candidate that is not a
    # fire time (here, one second off) gives None, and the scheduler walks instead.
    def off_by_a_second(*args: object) -> datetime:
        return datetime(2026, 1, 1, 10, 0, 1, tzinfo=UTC)

    monkeypatch.setattr(cron_module, "_latest_by_wall_time", off_by_a_second)
    trigger = CronTrigger(hour="*/2", timezone=UTC)
    due = datetime(2026, 1, 1, tzinfo=UTC)
    assert trigger.latest_fire_time(UTC, due, due + timedelta(days=1)) is None


# -- DateTrigger and combinations ---------------------------------------------------------


def test_date_trigger_answers_its_run_time() -> None:
    run_at = datetime(2026, 5, 1, 9, tzinfo=BERLIN)
    trigger = DateTrigger(run_at)
    later = run_at + timedelta(days=2)
    assert trigger.latest_fire_time(UTC, run_at, later) == run_at
    assert trigger.latest_fire_time(UTC, run_at, run_at) == run_at
    assert trigger.latest_fire_time(UTC, run_at, run_at - timedelta(seconds=1)) is None
    assert DateTrigger().latest_fire_time(UTC, run_at, later) is None  # not anchored yet


def test_combinations_answer_none() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    members: list[BaseTrigger] = [
        IntervalTrigger(minutes=10, start_at=start, timezone=UTC),
        CronTrigger(minute="*/15", timezone=UTC),
    ]
    later = start + timedelta(days=1)
    assert OrTrigger(members).latest_fire_time(UTC, start, later) is None
    assert AndTrigger(members).latest_fire_time(UTC, start, later) is None


def test_a_trigger_without_the_hook_answers_none() -> None:
    class Once(BaseTrigger):
        __slots__ = ()

        def get_next_trigger_time(
            self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
        ) -> datetime | None:
            return None if previous_time else datetime(2026, 1, 1, tzinfo=UTC)

        def __getstate__(self) -> dict[str, object]:
            return {"version": 1}

        def __setstate__(self, state: dict[str, object]) -> None:
            pass

    moment = datetime(2026, 1, 1, tzinfo=UTC)
    assert Once().latest_fire_time(UTC, moment, moment + timedelta(days=1)) is None
    assert date(2026, 1, 1) == moment.date()


def test_bounds_in_a_repeated_hour_are_compared_in_real_time() -> None:
    # 02:59:59 CEST comes before 02:00 CET (the second pass): a wall-time comparison
    # refused these bounds as "start_at after end_at".
    start = datetime(2024, 10, 27, 2, 59, 59, tzinfo=BERLIN)
    end = datetime(2024, 10, 27, 2, 0, tzinfo=BERLIN, fold=1)
    assert CronTrigger(minute="*", start_at=start, end_at=end, timezone=BERLIN).end_at == end
    assert IntervalTrigger(seconds=1, start_at=start, end_at=end, timezone=BERLIN).end_at == end
