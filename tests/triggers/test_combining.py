"""AndTrigger and OrTrigger: agreement, earliest-of, nesting, termination, state."""

from __future__ import annotations

import pickle
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tickwork.exceptions import InvalidTriggerError
from tickwork.triggers import (
    AndTrigger,
    BaseTrigger,
    CronTrigger,
    DateTrigger,
    IntervalTrigger,
    OrTrigger,
    create_trigger,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday
NEW_YORK = ZoneInfo("America/New_York")


def fire_times(trigger: BaseTrigger, count: int, now: datetime = T0) -> list[datetime]:
    times: list[datetime] = []
    previous = None
    while len(times) < count:
        previous = trigger.get_next_trigger_time(UTC, previous, now)
        if previous is None:
            break
        assert not times or previous.astimezone(UTC) > times[-1].astimezone(UTC)
        times.append(previous)
    return times


def at(day: int, hour: int = 0, minute: int = 0, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# -- AndTrigger ----------------------------------------------------------------------------


def test_and_fires_only_where_every_member_fires() -> None:
    weekdays_9_to_5 = CronTrigger(day_of_week="mon-fri", hour="9-17", minute=0, timezone="UTC")
    every_4_hours = CronTrigger(hour="*/4", minute=0, timezone="UTC")
    trigger = AndTrigger([weekdays_9_to_5, every_4_hours])
    assert fire_times(trigger, 4) == [at(1, 12), at(1, 16), at(2, 12), at(2, 16)]


def test_and_of_two_calendars_finds_friday_the_13th() -> None:
    trigger = AndTrigger(
        [CronTrigger(day=13, timezone="UTC"), CronTrigger(day_of_week="fri", timezone="UTC")]
    )
    assert fire_times(trigger, 2) == [at(13, month=2), at(13, month=3)]


def test_and_with_an_interval_grid() -> None:
    every_90_minutes = IntervalTrigger(minutes=90, start_at=T0)
    on_the_hour = CronTrigger(minute=0, timezone="UTC")
    assert fire_times(AndTrigger([every_90_minutes, on_the_hour]), 3) == [
        at(1, 0),
        at(1, 3),
        at(1, 6),
    ]


def test_members_without_start_at_are_anchored_once_at_the_first_question() -> None:
    # an interval without start_at counts from when it is first asked; asked about many
    # instants by the combination, it must stay on the grid of that first question
    every_70_minutes = IntervalTrigger(minutes=70, timezone=UTC)
    noon = CronTrigger(hour=12, timezone="UTC")
    trigger = OrTrigger([every_70_minutes, noon])
    assert fire_times(trigger, 4) == [at(1, 1, 10), at(1, 2, 20), at(1, 3, 30), at(1, 4, 40)]
    assert every_70_minutes.start_at is None  # the member given was left as it was
    later = fire_times(trigger, 12)
    assert at(1, 12) in later
    assert at(1, 11, 40) in later
    agree = AndTrigger([IntervalTrigger(minutes=30, timezone=UTC), CronTrigger(minute=0)])
    assert fire_times(agree, 2) == [at(1, 1), at(1, 2)]


def test_and_with_a_date_member_fires_once() -> None:
    when = at(5, 12)
    trigger = AndTrigger([DateTrigger(when), CronTrigger(hour="*/6", timezone="UTC")])
    assert fire_times(trigger, 3) == [when]
    missed = AndTrigger([DateTrigger(when), CronTrigger(hour=1, timezone="UTC")])
    assert fire_times(missed, 1) == []


def test_and_that_can_never_agree_gives_up_promptly() -> None:
    hourly_at_17 = IntervalTrigger(hours=1, start_at=T0 + timedelta(minutes=17))
    on_the_hour = CronTrigger(minute=0, timezone="UTC")
    trigger = AndTrigger([hourly_at_17, on_the_hour])
    started = time.perf_counter()
    assert trigger.get_next_trigger_time(UTC, None, T0) is None
    # not a timing assertion: a guard against an unbounded loop (pytest-timeout would hang)
    assert time.perf_counter() - started < 30


def test_and_ends_when_a_member_ends() -> None:
    ending = CronTrigger(minute=0, end_at=at(1, 2), timezone="UTC")
    trigger = AndTrigger([ending, CronTrigger(minute="*/30", timezone="UTC")])
    assert fire_times(trigger, 5) == [at(1, 0), at(1, 1), at(1, 2)]


def test_and_of_members_due_in_the_past_is_due_like_them() -> None:
    past = at(1) - timedelta(days=1)
    trigger = AndTrigger([DateTrigger(past), DateTrigger(past)])
    assert trigger.get_next_trigger_time(UTC, None, T0) == past
    assert trigger.get_next_trigger_time(UTC, past, T0) is None


# -- OrTrigger -----------------------------------------------------------------------------


def test_or_fires_at_the_earliest_member_time_and_once_for_shared_instants() -> None:
    trigger = OrTrigger(
        [CronTrigger(hour="9", timezone="UTC"), CronTrigger(hour="9,12", minute=0, timezone="UTC")]
    )
    assert fire_times(trigger, 4) == [at(1, 9), at(1, 12), at(2, 9), at(2, 12)]


def test_or_keeps_a_date_member_after_another_member_fired() -> None:
    trigger = OrTrigger([CronTrigger(hour=0, timezone="UTC"), DateTrigger(at(2, 15))])
    assert fire_times(trigger, 4) == [at(1), at(2), at(2, 15), at(3)]


def test_or_ends_when_every_member_ends() -> None:
    trigger = OrTrigger([DateTrigger(at(2)), DateTrigger(at(3))])
    assert fire_times(trigger, 5) == [at(2), at(3)]


def test_or_across_a_repeated_hour_compares_in_real_time() -> None:
    # Both members report in New York time; 01:00 EST (fold=1) must come after 01:45 EDT,
    # which a same-zone comparison of wall times would get wrong.
    hourly = CronTrigger(minute=0, timezone=NEW_YORK)
    at_0145 = CronTrigger(hour=1, minute=45, timezone=NEW_YORK)
    start = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    times = fire_times(OrTrigger([hourly, at_0145]), 3, start)
    assert [t.astimezone(UTC).strftime("%H:%M") for t in times] == ["05:45", "06:00", "07:00"]


# -- nesting, construction, state ------------------------------------------------------------


def test_nesting() -> None:
    mornings = OrTrigger(
        [CronTrigger(hour=8, timezone="UTC"), CronTrigger(hour=10, timezone="UTC")]
    )
    weekend_mornings = AndTrigger(
        [mornings, CronTrigger(day_of_week="sat,sun", hour="*", timezone="UTC")]
    )
    assert fire_times(weekend_mornings, 3) == [at(3, 8), at(3, 10), at(4, 8)]


def test_and_with_a_nested_or_holding_a_past_date() -> None:
    past_or_hourly = OrTrigger(
        [DateTrigger(T0 - timedelta(days=3)), CronTrigger(minute=0, timezone="UTC")]
    )
    trigger = AndTrigger([past_or_hourly, CronTrigger(hour="*/2", timezone="UTC")])
    assert fire_times(trigger, 2, T0 + timedelta(minutes=1)) == [at(1, 2), at(1, 4)]


def test_aliases_take_triggers_keyword() -> None:
    members = [CronTrigger(hour=1), IntervalTrigger(hours=2, start_at=T0)]
    assert create_trigger("and", triggers=members) == AndTrigger(members)
    assert create_trigger("or", triggers=members, jitter=3) == OrTrigger(members, jitter=3)


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ([], "[]"),
        ("cron", "'cron'"),
        (None, "None"),
        ([CronTrigger(hour=1), "interval"], "'interval'"),
        (5, "5"),
    ],
)
def test_members_must_be_a_non_empty_list_of_triggers(bad: object, named: str) -> None:
    for cls in (AndTrigger, OrTrigger):
        with pytest.raises(InvalidTriggerError) as caught:
            cls(bad)  # type: ignore[arg-type]
        assert named in str(caught.value)


def test_jitter_only_delays() -> None:
    trigger = OrTrigger([CronTrigger(minute="*", timezone="UTC")], jitter=5)
    fire = trigger.get_next_trigger_time(UTC, None, T0)
    assert fire is not None
    assert T0 <= fire <= T0 + timedelta(seconds=5)
    with pytest.raises(InvalidTriggerError, match="jitter"):
        AndTrigger([CronTrigger()], jitter=-1)


def test_state_nests_the_member_triggers_and_pickles() -> None:
    members: list[BaseTrigger] = [
        CronTrigger(hour=1, timezone="UTC"),
        IntervalTrigger(hours=2, start_at=T0),
    ]
    trigger = AndTrigger([OrTrigger(members), CronTrigger(minute="*/5")], jitter=2)
    state = trigger.__getstate__()
    assert state["version"] == 1
    assert state["jitter"] == timedelta(seconds=2)
    assert isinstance(state["triggers"][0], OrTrigger)
    assert state["triggers"][0].__getstate__()["triggers"] == members
    copy = pickle.loads(pickle.dumps(trigger))
    assert copy == trigger
    assert copy != AndTrigger([OrTrigger(members), CronTrigger(minute="*/5")])
    assert AndTrigger(members) != OrTrigger(members)


def test_a_newer_state_version_is_refused() -> None:
    trigger = OrTrigger.__new__(OrTrigger)
    with pytest.raises(InvalidTriggerError, match="version 2"):
        trigger.__setstate__({"version": 2, "triggers": [], "jitter": None})


def test_repr_shows_the_members() -> None:
    trigger = OrTrigger([CronTrigger(hour=1, timezone="UTC"), DateTrigger(T0)], jitter=1)
    assert repr(trigger) == (
        "OrTrigger([CronTrigger(hour='1', minute='0', second='0', timezone='UTC'), "
        "DateTrigger(run_at=2026-01-01T00:00:00+00:00)], jitter=1.0)"
    )
