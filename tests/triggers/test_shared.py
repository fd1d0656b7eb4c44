"""create_trigger hands out one instance per alias and keywords for triggers that never
change, and a new one whenever sharing could be told apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tickwork.exceptions import InvalidTriggerError
from tickwork.triggers import (
    BaseTrigger,
    IntervalTrigger,
    create_trigger,
    shared_triggers,
    trigger_registry,
)
from tickwork.triggers._shared import SharedTriggers

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    shared_triggers.clear()


@pytest.mark.parametrize(
    ("alias", "options"),
    [
        ("interval", {"minutes": 5}),
        ("interval", {"seconds": 10, "start_at": T0}),
        ("interval", {"seconds": 10, "start_at": T0, "jitter": 2}),
        ("cron", {"minute": "*/5"}),
        ("date", {"run_at": T0}),
        ("shutdown", {}),
    ],
)
def test_triggers_that_never_change_are_shared(alias: str, options: dict[str, Any]) -> None:
    first = create_trigger(alias, **options)
    assert first.shareable
    assert create_trigger(alias, **options) is first


@pytest.mark.parametrize(
    ("alias", "options"),
    [
        ("interval", {"seconds": 10, "jitter": 2}),  # anchors itself on first use
        ("date", {}),  # "now" on first use
    ],
)
def test_triggers_that_anchor_themselves_are_not_shared(
    alias: str, options: dict[str, Any]
) -> None:
    first = create_trigger(alias, **options)
    assert not first.shareable
    assert create_trigger(alias, **options) is not first


def test_values_that_are_equal_but_not_the_same_get_their_own_trigger() -> None:
    # equal instants in two zones: each trigger keeps the zone it was given
    berlin_noon = T0.astimezone(timezone(timedelta(hours=1)))
    in_utc = create_trigger("interval", seconds=10, start_at=T0)
    in_plus_one = create_trigger("interval", seconds=10, start_at=berlin_noon)
    assert in_utc is not in_plus_one
    assert isinstance(in_plus_one, IntervalTrigger)
    assert in_plus_one.start_at is not None
    assert in_plus_one.start_at.utcoffset() == timedelta(hours=1)
    # 1 and 1.0 are the same interval, but not the same keyword value
    assert create_trigger("interval", seconds=1) is not create_trigger("interval", seconds=1.0)


def test_equal_datetimes_in_the_same_zone_share_a_trigger() -> None:
    # a new datetime object per call, as add_task(..., start_at=datetime(...)) makes
    first = create_trigger("interval", seconds=10, start_at=datetime(2026, 3, 1, tzinfo=UTC))
    again = create_trigger("interval", seconds=10, start_at=datetime(2026, 3, 1, tzinfo=UTC))
    assert again is first
    late = create_trigger("cron", minute=5, end_at=datetime(2027, 1, 1, tzinfo=UTC))
    assert create_trigger("cron", minute=5, end_at=datetime(2027, 1, 1, tzinfo=UTC)) is late


def test_the_two_sides_of_a_repeated_hour_are_not_the_same_start() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    before = datetime(2026, 10, 25, 2, 30, tzinfo=berlin)  # CEST
    after = before.replace(fold=1)  # CET, an hour later
    assert before == after  # same wall time, same zone: Python calls them equal
    first = create_trigger("interval", hours=1, start_at=before)
    second = create_trigger("interval", hours=1, start_at=after)
    assert first is not second
    assert isinstance(second, IntervalTrigger)
    assert second.start_at is not None
    assert second.start_at.fold == 1


def test_a_bad_value_is_refused_even_after_an_equal_good_one() -> None:
    create_trigger("interval", seconds=1)
    with pytest.raises(InvalidTriggerError, match="True"):
        create_trigger("interval", seconds=True)  # True == 1, but no interval


class EveryTwoSeconds(IntervalTrigger):
    """A subclass to register under the "interval" alias for a moment."""

    __slots__ = ()


def test_an_alias_registered_again_builds_from_the_new_class() -> None:
    old = create_trigger("interval", seconds=2)
    try:
        trigger_registry.register("interval", EveryTwoSeconds)
        new = create_trigger("interval", seconds=2)
        assert type(new) is EveryTwoSeconds
    finally:
        trigger_registry.register("interval", IntervalTrigger)
    assert type(create_trigger("interval", seconds=2)) is IntervalTrigger
    assert create_trigger("interval", seconds=2) is not old  # forgotten at registration


def test_the_cache_is_bounded_and_drops_the_oldest_first() -> None:
    cache = SharedTriggers(max_entries=3)
    triggers: list[BaseTrigger] = []
    for seconds in range(1, 6):
        options = {"seconds": seconds}
        trigger = IntervalTrigger(**options)
        cache.put("interval", options, None, trigger)
        triggers.append(trigger)
    assert len(cache) == 3
    assert cache.get("interval", {"seconds": 1}, None) is None
    assert cache.get("interval", {"seconds": 5}, None) is triggers[-1]


def test_identity_keys_keep_their_objects_alive() -> None:
    # a key holds id(value): the entry must keep the value, so the id is not reused
    start = datetime(2026, 5, 1, tzinfo=UTC)
    create_trigger("interval", seconds=3, start_at=start)
    key = SharedTriggers.key("interval", {"seconds": 3, "start_at": start})
    del start
    entry = shared_triggers._entries.get(key)
    assert entry is not None
    trigger = entry[0]
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.start_at == datetime(2026, 5, 1, tzinfo=UTC)


def test_tasks_due_together_share_the_answer_and_its_datetime() -> None:
    trigger = create_trigger("interval", seconds=10, start_at=T0)
    due = T0 + timedelta(seconds=10)
    first = trigger.get_next_trigger_time(UTC, due, due)
    again = trigger.get_next_trigger_time(UTC, due, due)
    assert first == T0 + timedelta(seconds=20)
    assert again is first  # one datetime for every task asking about this instant
    assert trigger.get_next_trigger_time(UTC, first, first) is trigger.get_next_trigger_time(
        UTC, first, first
    )
    cron = create_trigger("cron", minute="*/5")
    asked = datetime(2026, 3, 1, 12, 5, tzinfo=UTC)
    answer = cron.get_next_trigger_time(UTC, asked, asked)
    assert answer == datetime(2026, 3, 1, 12, 10, tzinfo=UTC)
    assert cron.get_next_trigger_time(UTC, asked, asked) is answer
    # the scheduler's zone is part of the question for a cron trigger without its own
    berlin = ZoneInfo("Europe/Berlin")
    in_berlin = cron.get_next_trigger_time(berlin, asked, asked)
    assert in_berlin is not answer
    assert in_berlin is not None
    assert in_berlin.tzinfo is berlin


def test_jittered_answers_are_never_shared() -> None:
    trigger = create_trigger("interval", seconds=10, start_at=T0, jitter=5)
    due = T0 + timedelta(seconds=10)
    answers = {trigger.get_next_trigger_time(UTC, due, due) for _ in range(20)}
    assert len(answers) > 1  # each task gets a delay of its own


def test_equal_previous_times_share_the_answer_but_not_across_a_repeated_hour() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    trigger = create_trigger("interval", minutes=30, timezone=berlin)
    asked = datetime(2026, 10, 25, 2, 15, tzinfo=berlin)  # CEST, the first 02:15
    first = trigger.get_next_trigger_time(berlin, asked, asked)
    equal = trigger.get_next_trigger_time(berlin, asked.replace(), asked)  # a copy
    assert equal is first
    second_pass = trigger.get_next_trigger_time(berlin, asked.replace(fold=1), asked)
    assert second_pass is not first  # the second 02:15 (CET) is an hour later
    assert first is not None
    assert second_pass is not None
    assert second_pass.timestamp() - first.timestamp() == 3600
