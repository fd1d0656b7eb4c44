"""The JSON serializer's fast encoder writes exactly what the careful one writes.

Every task is first written by a fast encoder (JSON text built directly); anything it does
not handle goes to the careful encoder (tagged structure + ``json.dumps``), which also
words the errors. Stored data must not depend on which one wrote it, so these tests
compare the two on every supported value and check the hand-overs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from test_json_serializer import TRIGGERS, VALUES, assert_same, task_with

from tickwork.exceptions import SerializationError
from tickwork.serializers import JSONSerializer
from tickwork.serializers import json as json_module
from tickwork.triggers import BaseTrigger, IntervalTrigger

PARIS = ZoneInfo("Europe/Paris")
EXTRA_VALUES: dict[str, Any] = {
    "empty containers": [(), [], {}, set(), frozenset()],
    "empty-string key": {"": 1, "a\u2603\n": [None]},
    "nested tags": {"__tw__": {"__tw__": 1}, "k": ({"__tw__": ()},)},
    "mixed keys": {"a": 1, 2: "b"},
    "keys after a str key": {"first": 1, (1, 2): 2},
    "big int": 10**200,
    "bool is not int": [True, 1, False, 0],
    "floats": [1e300, -1e-300, 5e-324, 0.0, 2.5],
    "times": [time(0), time(0, 0, 0, 1), time(12, tzinfo=UTC), time(1, 2, 3, 4, tzinfo=PARIS)],
    "datetimes with microseconds": [
        datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=-23, minutes=-59))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=PARIS),
        datetime(2026, 3, 29, 2, 30, fold=1),
    ],
    "sub-minute offset": datetime(
        2026, 1, 1, tzinfo=timezone(timedelta(seconds=3725, microseconds=7))
    ),
    "same offset, other names": [
        timezone(timedelta(hours=1), "A"),
        timezone(timedelta(hours=1), "B"),
        timezone(timedelta(hours=1)),
    ],
    "utc spellings": [UTC, timezone(timedelta(0)), timezone(timedelta(0), "Z"), ZoneInfo("UTC")],
    "a trigger in a dict": {"t": IntervalTrigger(seconds=1, timezone=PARIS)},
}
ALL_VALUES = {**VALUES, **EXTRA_VALUES}


def careful_text(value: Any) -> str:
    """What the careful encoder writes for ``value``."""
    return json_module._DUMPS(json_module._Encoder().encode(value))


@pytest.mark.parametrize("value", ALL_VALUES.values(), ids=ALL_VALUES.keys())
def test_both_encoders_write_the_same_text(value: Any) -> None:
    for _ in range(2):  # the second time from the caches (zones, trigger classes)
        assert json_module._text(value) == careful_text(value)


@pytest.mark.parametrize("trigger", TRIGGERS.values(), ids=TRIGGERS.keys())
def test_both_encoders_write_the_same_triggers(trigger: BaseTrigger) -> None:
    assert json_module._text(trigger) == careful_text(trigger)


@pytest.mark.parametrize("value", EXTRA_VALUES.values(), ids=EXTRA_VALUES.keys())
def test_extra_values_round_trip_exactly(value: Any) -> None:
    serializer = JSONSerializer()
    back = serializer.deserialize(serializer.serialize(task_with(args=(value,))))
    if isinstance(value, dict) and "t" in value:
        assert back.args[0] == value  # triggers compare by state
    else:
        assert_same(back.args, (value,))


def test_a_whole_task_is_the_same_on_both_paths() -> None:
    task = task_with(
        IntervalTrigger(hours=1, start_at=datetime(2026, 1, 1, tzinfo=PARIS), jitter=2.5),
        args=(1, "two", [3.0]),
        kwargs={"when": datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=PARIS)},
        mistrigger_grace_time=1.5,
    )
    state = task.__getstate__()
    assert JSONSerializer().serialize(task) == json_module._careful(task.id, state)
    document = json.loads(JSONSerializer().serialize(task))
    assert list(document) == ["format", "task"]
    assert list(document["task"]) == list(state)


class Local(dict):  # type: ignore[type-arg]
    """A dict subclass: the fast encoder leaves it to the careful one, which refuses it."""


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Local(a=1), r"args\[0\]\[1\] = \{'a': 1\}.*test_json_fast_path\.Local"),
        ({"ok": [1, {2: Local()}]}, r"args\[0\]\[1\]\['ok'\]\[1\]\[2\]"),
    ],
)
def test_the_careful_encoder_takes_over_with_its_message(value: Any, message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        JSONSerializer().serialize(task_with(args=([0, value],)))


def test_a_cycle_in_a_dict_is_reported_not_overflowed() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = [loop]
    with pytest.raises(SerializationError, match=r"kwargs\['x'\]\['self'\]\[0\].*contains itself"):
        JSONSerializer().serialize(task_with(kwargs={"x": loop}))


def test_a_trigger_class_without_a_reference_is_refused() -> None:
    class Hidden(IntervalTrigger):
        __slots__ = ()

    with pytest.raises(SerializationError, match=r"trigger = .*no importable name"):
        JSONSerializer().serialize(task_with(Hidden(seconds=1)))


@pytest.fixture
def few_int_digits() -> Iterator[None]:
    previous = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(previous)


@pytest.mark.usefixtures("few_int_digits")
def test_an_int_too_long_for_text_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError, match=r"task 't1' cannot be stored.*JSON"):
        JSONSerializer().serialize(task_with(args=(10**700,)))


def test_zones_made_on_the_fly_are_not_all_kept() -> None:
    for minutes in range(json_module._ZONES_MAX + 50):
        zone = timezone(timedelta(minutes=minutes - 700))
        value = datetime(2026, 1, 1, tzinfo=zone)
        assert json_module._text(value) == careful_text(value)
    assert len(json_module._ZONES) <= json_module._ZONES_MAX


def test_a_lone_surrogate_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError, match=r"task 't1' cannot be stored.*UTF-8"):
        JSONSerializer().serialize(task_with(kwargs={"text": "half \ud800 a pair"}))
