"""Stored records that parse but hold wrong types or out-of-range values are refused at load.

Such a record (``"trigger": 5``, ``max_instances: "x"``, an interval whose next fire time
overflows...) used to load unchecked and fail later, inside a scheduler's processing
pass, stopping every other task of its store. Now loading raises ``SerializationError``
naming the task, the field and the value, from both serializers and from both JSON
decoders, so a store counts the record as broken, logs it once and skips it.

The bad records are made at the Python level (a task state with one value changed, or a
trigger with one attribute changed) and written with each serializer's own encoder, so
they are exactly what a store would hold after a bad write or a hand edit.
"""

from __future__ import annotations

import math
import pickle
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tickwork.exceptions import SerializationError
from tickwork.serializers import BaseSerializer, JSONSerializer, PickleSerializer
from tickwork.serializers import json as json_module
from tickwork.serializers.base import short_repr
from tickwork.tasks import Task
from tickwork.triggers import (
    AndTrigger,
    BaseTrigger,
    CronTrigger,
    DateTrigger,
    IntervalTrigger,
    OrTrigger,
    ShutdownTrigger,
)

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2026, 1, 1, tzinfo=UTC)
NAIVE = datetime(2026, 1, 1)
NAN = float("nan")
SERIALIZERS = ["json", "pickle"]


def job(*args: Any, **kwargs: Any) -> None:
    """The function of the test tasks (module level, so it has a reference)."""


def good_task(trigger: BaseTrigger | None = None, **fields: Any) -> Task:
    values: dict[str, Any] = {
        "args": (1, "two"),
        "kwargs": {"when": START},
        "coalesce": True,
        "max_instances": 2,
        "mistrigger_grace_time": 30.0,
        "next_run_time": START,
    }
    values.update(fields)
    trigger = trigger or IntervalTrigger(minutes=5, timezone=PARIS)
    return Task(job, trigger, id="the-task", **values)


def encode(state: dict[str, Any], kind: str) -> bytes:
    """The bytes a store would hold for ``state``, written by serializer ``kind``."""
    if kind == "pickle":
        return pickle.dumps(state, protocol=pickle.DEFAULT_PROTOCOL)
    # The careful encoder takes any state (it checks nothing about the task); its output
    # is what the fast one writes, so decoding takes the quick path first.
    return json_module._careful(str(state.get("id")), state)


def serializer_for(kind: str) -> BaseSerializer:
    return JSONSerializer() if kind == "json" else PickleSerializer()


def with_attributes(trigger: BaseTrigger, **attributes: Any) -> BaseTrigger:
    """A copy of ``trigger`` with some attributes replaced as they are, unchecked: what
    ``__getstate__`` then writes is the damaged state."""
    copy = type(trigger).__new__(type(trigger))
    copy.__setstate__(trigger.__getstate__())
    for name, value in attributes.items():
        setattr(copy, name, value)
    return copy


def assert_refused(data: bytes, kind: str, *fragments: str) -> str:
    """``data`` fails to load with a ``SerializationError`` whose message holds every
    fragment; for JSON, both decoders agree. Returns the message."""
    with pytest.raises(SerializationError) as info:
        serializer_for(kind).deserialize(data)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    if kind == "json":
        with pytest.raises(Exception):  # noqa: B017 - it gives up on anything
            json_module._quick_load(data)
        with pytest.raises(SerializationError) as careful:
            json_module._careful_load(data)
        assert str(careful.value) == message
    return message


# -- task fields --------------------------------------------------------------------------

#: field -> values that field must never hold in a stored record.
BAD_FIELDS: dict[str, list[Any]] = {
    "trigger": [5, "interval", None, {"minutes": 5}],
    "next_run_time": ["2026-01-01T00:00:00", 5, 1767225600.0, NAIVE],
    "max_instances": ["x", 0, -1, True, 2.0, None],
    "args": [5, "abc", {"a": 1}, None],
    "kwargs": [[1], "x", 5, {1: "one"}],
    "coalesce": ["yes", 1, None, "false"],
    "mistrigger_grace_time": [-3, -0.5, NAN, "30", True, timedelta(seconds=30)],
    "name": [5, None],
    "fn": [5, ["x"], "os:sep"],
    "executor": [5, None, ["default"]],
}
FIELD_CASES = [
    pytest.param(field, value, id=f"{field}={short_repr(value, 30)}")
    for field, values in BAD_FIELDS.items()
    for value in values
]


@pytest.mark.parametrize("kind", SERIALIZERS)
@pytest.mark.parametrize(("field", "value"), FIELD_CASES)
def test_a_field_of_the_wrong_type_or_range_is_refused(kind: str, field: str, value: Any) -> None:
    state = good_task().__getstate__()
    state[field] = value
    assert_refused(encode(state, kind), kind, "task 'the-task'", repr(field), short_repr(value))


@pytest.mark.parametrize("kind", SERIALIZERS)
@pytest.mark.parametrize("value", [5, None, "", ["the-task"]], ids=repr)
def test_an_id_that_is_not_a_non_empty_string_is_refused(kind: str, value: Any) -> None:
    state = good_task().__getstate__()
    state["id"] = value
    assert_refused(encode(state, kind), kind, "'id'", short_repr(value))


@pytest.mark.parametrize("kind", SERIALIZERS)
def test_a_missing_field_is_named(kind: str) -> None:
    state = good_task().__getstate__()
    del state["coalesce"]
    message = assert_refused(encode(state, kind), kind, "task 'the-task'", "'coalesce'")
    assert "missing" in message


@pytest.mark.parametrize("kind", SERIALIZERS)
def test_a_function_that_is_not_callable_is_named(kind: str) -> None:
    state = good_task().__getstate__()
    state["fn"] = "os:sep"
    assert_refused(encode(state, kind), kind, "task 'the-task'", "'os:sep'", "not callable")


# -- trigger state --------------------------------------------------------------------------

INTERVAL = IntervalTrigger(minutes=5, start_at=START, timezone=PARIS)
CRON = CronTrigger(hour="9-17", minute="*/15", timezone=PARIS)
DATE = DateTrigger(START)


def and_of(*members: BaseTrigger) -> AndTrigger:
    return AndTrigger(list(members))


#: id -> (the damaged trigger, what the message names: the attribute path and value).
BAD_TRIGGERS: dict[str, tuple[Callable[[], BaseTrigger], tuple[str, ...]]] = {
    "interval=5": (lambda: with_attributes(INTERVAL, interval=5), ("trigger.interval", "5")),
    "interval='PT5M'": (
        lambda: with_attributes(INTERVAL, interval="PT5M"),
        ("trigger.interval", "'PT5M'"),
    ),
    "interval=0": (
        lambda: with_attributes(INTERVAL, interval=timedelta(0)),
        ("trigger.interval", "timedelta(0)"),
    ),
    "interval<0": (
        lambda: with_attributes(INTERVAL, interval=timedelta(seconds=-1)),
        ("trigger.interval", "timedelta(days=-1"),
    ),
    "interval of 3,000,000 days": (
        lambda: with_attributes(INTERVAL, interval=timedelta(days=3_000_000)),
        ("trigger.interval", "3000000"),
    ),
    "interval start_at=str": (
        lambda: with_attributes(INTERVAL, start_at="2026-01-01"),
        ("trigger.start_at", "'2026-01-01'"),
    ),
    "interval start_at naive": (
        lambda: with_attributes(INTERVAL, start_at=NAIVE),
        ("trigger.start_at", "datetime.datetime(2026, 1, 1, 0, 0)"),
    ),
    "interval end_at=5": (lambda: with_attributes(INTERVAL, end_at=5), ("trigger.end_at", "5")),
    "interval end_at before start_at": (
        lambda: with_attributes(INTERVAL, end_at=START - timedelta(days=1)),
        ("trigger.end_at", "start_at"),
    ),
    "interval timezone='UTC'": (
        lambda: with_attributes(INTERVAL, timezone="UTC"),
        ("trigger.timezone", "'UTC'"),
    ),
    "interval timezone=None": (
        lambda: with_attributes(INTERVAL, timezone=None),
        ("trigger.timezone", "None"),
    ),
    "interval jitter=5": (lambda: with_attributes(INTERVAL, jitter=5), ("trigger.jitter", "5")),
    "interval jitter<0": (
        lambda: with_attributes(INTERVAL, jitter=timedelta(seconds=-1)),
        ("trigger.jitter", "timedelta(days=-1"),
    ),
    "cron start_at=5": (lambda: with_attributes(CRON, start_at=5), ("trigger.start_at", "5")),
    "cron timezone='Europe/Paris'": (
        lambda: with_attributes(CRON, timezone="Europe/Paris"),
        ("trigger.timezone", "'Europe/Paris'"),
    ),
    "cron jitter='x'": (lambda: with_attributes(CRON, jitter="x"), ("trigger.jitter", "'x'")),
    "cron naive start_at in a zone": (
        lambda: with_attributes(CRON, start_at=NAIVE),
        ("trigger.start_at", "datetime.datetime(2026, 1, 1, 0, 0)"),
    ),
    "cron end_at before start_at": (
        lambda: with_attributes(CRON, start_at=START, end_at=START - timedelta(days=1)),
        ("trigger.end_at", "start_at"),
    ),
    "date run_at=str": (
        lambda: with_attributes(DATE, run_at="2026-01-01T00:00:00"),
        ("trigger.run_at", "'2026-01-01T00:00:00'"),
    ),
    "date run_at naive": (
        lambda: with_attributes(DATE, run_at=NAIVE),
        ("trigger.run_at", "datetime.datetime(2026, 1, 1, 0, 0)"),
    ),
    "date timezone=5": (lambda: with_attributes(DATE, timezone=5), ("trigger.timezone", "5")),
    "and without members": (
        lambda: with_attributes(and_of(DATE), triggers=[]),
        ("trigger.triggers", "[]"),
    ),
    "and with a member that is not a trigger": (
        lambda: with_attributes(and_of(DATE), triggers=[DATE, 5]),
        ("trigger.triggers[1]", "5"),
    ),
    "or with a damaged member": (
        lambda: OrTrigger([DATE, and_of(with_attributes(INTERVAL, interval=5))]),
        ("trigger.triggers[1].triggers[0].interval", "5"),
    ),
    "or jitter<0": (
        lambda: with_attributes(OrTrigger([DATE]), jitter=timedelta(seconds=-1)),
        ("trigger.jitter", "timedelta(days=-1"),
    ),
}


@pytest.mark.parametrize("kind", SERIALIZERS)
@pytest.mark.parametrize("case", BAD_TRIGGERS.values(), ids=BAD_TRIGGERS.keys())
def test_trigger_state_of_the_wrong_type_or_range_is_refused(
    kind: str, case: tuple[Callable[[], BaseTrigger], tuple[str, ...]]
) -> None:
    make, fragments = case
    state = good_task().__getstate__()
    state["trigger"] = make()
    assert_refused(encode(state, kind), kind, "task 'the-task'", *fragments)


@pytest.mark.parametrize("kind", SERIALIZERS)
def test_an_interval_that_cannot_advance_from_the_next_run_time_is_refused(kind: str) -> None:
    # 1000 years is a fine interval in 2026, not from a next run time in year 9500: the
    # next fire time would lie past the year 9999.
    state = good_task(IntervalTrigger(days=365_250, timezone=UTC)).__getstate__()
    assert serializer_for(kind).deserialize(encode(state, kind)).trigger is not None
    state["next_run_time"] = datetime(9500, 1, 1, tzinfo=UTC)
    assert_refused(encode(state, kind), kind, "task 'the-task'", "trigger.interval", "9500")


def test_a_combination_that_contains_itself_is_refused() -> None:
    # Only pickle can write a cycle; checking it (or running it) would recurse forever.
    trigger = and_of(DATE)
    trigger.triggers.append(trigger)
    state = good_task().__getstate__()
    state["trigger"] = trigger
    assert_refused(encode(state, "pickle"), "pickle", "task 'the-task'", "contains itself")


# -- what must still load ----------------------------------------------------------------


def state_with(trigger: BaseTrigger | None = None, **fields: Any) -> dict[str, Any]:
    """A good task's state with fields replaced as they are (an earlier tickwork may
    have written values today's constructor refuses)."""
    state = good_task(trigger).__getstate__()
    state.update(fields)
    return state


GOOD_STATES: dict[str, Callable[[], dict[str, Any]]] = {
    "paused": lambda: state_with(next_run_time=None),
    "no limits": lambda: state_with(mistrigger_grace_time=None, args=(), kwargs={}),
    "zero grace, as written before 0 was refused": lambda: state_with(mistrigger_grace_time=0.0),
    "infinite grace": lambda: state_with(mistrigger_grace_time=math.inf),
    "many instances": lambda: state_with(max_instances=10**6),
    "interval with everything": lambda: state_with(
        IntervalTrigger(
            seconds=0.5,
            start_at=START,
            end_at=START + timedelta(days=9),
            timezone=PARIS,
            jitter=0.25,
        )
    ),
    "jitter as long as the interval, as written before that was refused": lambda: state_with(
        with_attributes(INTERVAL, jitter=INTERVAL.interval)
    ),
    "cron floating": lambda: state_with(CronTrigger(hour=3, start_at=NAIVE)),
    "crontab": lambda: state_with(CronTrigger.from_crontab("*/5 * * * *", timezone="UTC")),
    "date now": lambda: state_with(DateTrigger()),
    "shutdown": lambda: state_with(ShutdownTrigger()),
    "nested": lambda: state_with(
        OrTrigger([and_of(CRON, INTERVAL), DATE, IntervalTrigger(hours=1)], jitter=1)
    ),
    "far next run time": lambda: state_with(next_run_time=datetime(9000, 1, 1, tzinfo=PARIS)),
}


@pytest.mark.parametrize("kind", SERIALIZERS)
@pytest.mark.parametrize("make", GOOD_STATES.values(), ids=GOOD_STATES.keys())
def test_valid_records_still_load(kind: str, make: Callable[[], dict[str, Any]]) -> None:
    state = make()
    data = encode(state, kind)
    back = serializer_for(kind).deserialize(data)
    assert back.__getstate__() == state
    if kind == "json":  # and the quick path takes them
        json_module._quick_load(data)


def test_a_record_written_by_hand_with_a_plain_list_of_args_loads() -> None:
    data = JSONSerializer().serialize(good_task())
    hand_made = re.sub(rb'"args":\{[^}]*\}', b'"args":[1,"two"]', data, count=1)
    assert hand_made != data
    assert JSONSerializer().deserialize(hand_made).args == (1, "two")


class Weekly(IntervalTrigger):
    """A user's trigger: an interval subclass with a state of its own."""

    __slots__ = ("label",)

    def __init__(self) -> None:
        super().__init__(weeks=1, timezone=UTC)
        self.label = "weekly"

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "label": self.label}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.label = state["label"]


def test_a_trigger_class_of_the_user_is_left_to_its_own_checks() -> None:
    # Only tickwork's own classes are checked, by exact class: a subclass may keep its
    # attributes differently.
    task = good_task(with_attributes(Weekly(), jitter="anything"))
    serializer = JSONSerializer()
    back = serializer.deserialize(serializer.serialize(task))
    assert type(back.trigger) is Weekly
