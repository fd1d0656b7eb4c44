"""JSONSerializer: every supported value comes back with its exact type and value."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from tickwork.exceptions import SerializationError
from tickwork.serializers import JSONSerializer
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


def job(*args: Any, **kwargs: Any) -> None:
    """The function of the test tasks (module level, so it has a reference)."""


def task_with(trigger: BaseTrigger | None = None, **fields: Any) -> Task:
    values: dict[str, Any] = {
        "coalesce": False,
        "max_instances": 3,
        "mistrigger_grace_time": None,
        "next_run_time": START,
    }
    values.update(fields)
    return Task(job, trigger or DateTrigger(START), id="t1", **values)


def round_trip(task: Task) -> Task:
    serializer = JSONSerializer()
    return serializer.deserialize(serializer.serialize(task))


def assert_same(left: Any, right: Any) -> None:
    """Equal values of identical types, all the way down (NaN equals NaN)."""
    assert type(left) is type(right), (left, right)
    if isinstance(left, float) and math.isnan(left):
        assert math.isnan(right)
    elif isinstance(left, dict):
        assert list(left) == list(right)
        for key in left:
            assert_same(left[key], right[key])
    elif isinstance(left, list | tuple):
        assert len(left) == len(right)
        for a, b in zip(left, right, strict=True):
            assert_same(a, b)
    else:
        assert left == right
        if isinstance(left, datetime | time):
            assert (left.tzinfo, left.fold) == (right.tzinfo, right.fold)


VALUES = {
    "str": 'héllo \u2603 \x00 "quoted"',
    "int": -(2**100),
    "float": 0.1,
    "negative zero": -0.0,
    "nan": float("nan"),
    "inf": float("inf"),
    "-inf": float("-inf"),
    "bool and none": [True, False, None],
    "naive datetime": datetime(2026, 3, 29, 2, 30, 15, 123456),
    "utc datetime": datetime(2026, 1, 1, tzinfo=UTC),
    "zoneinfo datetime": datetime(2026, 7, 1, 9, 30, tzinfo=PARIS),
    "ambiguous fold=1": datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=PARIS),
    "fixed offset": datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    "named offset": datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2), "EET-ish")),
    "date": date(1999, 12, 31),
    "naive time": time(23, 59, 59, 999999),
    "aware time": time(8, 0, tzinfo=timezone(timedelta(hours=5, minutes=45))),
    "timedelta": timedelta(days=-1, seconds=5, microseconds=7),
    "uuid": UUID("12345678-1234-5678-1234-567812345678"),
    "decimal keeps its exponent": Decimal("1.10"),
    "bytes": bytes(range(256)),
    "bytearray": bytearray(b"\xff\x00"),
    "tuple vs list": ((1, [2, (3,)]), [(), []]),
    "set": {1, "a", (2, 3)},
    "frozenset": frozenset({1.5, None}),
    "int keys": {1: "a", 2: "b"},
    "tuple keys": {(1, 2): "pair", None: "none"},
    "a dict that looks like a tag": {"__tw__": "datetime", "v": "not really"},
    "zones": [PARIS, UTC, timezone(timedelta(hours=1))],
    "nested trigger": [IntervalTrigger(seconds=5, start_at=START)],
}


@pytest.mark.parametrize("value", VALUES.values(), ids=VALUES.keys())
def test_values_round_trip_exactly(value: Any) -> None:
    task = task_with(args=(value,), kwargs={"value": value})
    back = round_trip(task)
    assert_same(back.args, (value,))
    assert_same(back.kwargs, {"value": value})


def test_every_task_field_round_trips() -> None:
    task = task_with(
        name="named",
        executor="threads",
        coalesce=True,
        max_instances=2,
        mistrigger_grace_time=2.5,
        next_run_time=datetime(2026, 5, 1, 8, tzinfo=PARIS),
    )
    back = round_trip(task)
    for field in ("id", "name", "fn", "executor", "coalesce", "max_instances"):
        assert getattr(back, field) == getattr(task, field), field
    assert back.mistrigger_grace_time == 2.5
    assert back.next_run_time == task.next_run_time
    assert back.next_run_time is not None
    assert back.next_run_time.tzinfo == PARIS
    assert back.store_alias is None


def test_a_paused_task_round_trips() -> None:
    assert round_trip(task_with(next_run_time=None)).next_run_time is None


TRIGGERS = {
    "date": DateTrigger(datetime(2026, 2, 3, 4, 5, tzinfo=PARIS)),
    "interval": IntervalTrigger(
        hours=1, start_at=START, end_at=START + timedelta(days=2), jitter=3
    ),
    "cron": CronTrigger(day_of_week="mon-fri", hour="9-17", minute="*/15", timezone=PARIS),
    "crontab": CronTrigger.from_crontab("0 3 1 * *", timezone="America/New_York"),
    "shutdown": ShutdownTrigger(),
    "and/or": OrTrigger(
        [
            AndTrigger([CronTrigger(hour=3), IntervalTrigger(hours=2, start_at=START)]),
            DateTrigger(START),
        ]
    ),
}


@pytest.mark.parametrize("trigger", TRIGGERS.values(), ids=TRIGGERS.keys())
def test_triggers_round_trip_and_keep_working(trigger: BaseTrigger) -> None:
    back = round_trip(task_with(trigger)).trigger
    assert type(back) is type(trigger)
    assert back == trigger
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert back.get_next_trigger_time(UTC, None, now) == trigger.get_next_trigger_time(
        UTC, None, now
    )


def test_the_output_is_readable_json() -> None:
    document = json.loads(JSONSerializer().serialize(task_with(args=("x",))))
    assert document["format"] == 1
    assert document["task"]["fn"] == "test_json_serializer:job"
    assert document["task"]["trigger"]["type"] == "tickwork.triggers.date:DateTrigger"


def tampered(**changes: Any) -> bytes:
    document = json.loads(JSONSerializer().serialize(task_with()))
    for path, value in changes.items():
        target = document["task"]
        *parents, last = path.split("__")
        for part in parents:
            target = target[part]
        target[last] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize("ref", ["subprocess:Popen", "os:system", "collections:OrderedDict"])
def test_only_trigger_classes_are_ever_instantiated(ref: str) -> None:
    with pytest.raises(SerializationError, match=rf"task 't1'.*{ref}.*not a trigger class"):
        JSONSerializer().deserialize(tampered(trigger__type=ref))


def test_a_removed_function_names_the_task_and_the_reference() -> None:
    with pytest.raises(
        SerializationError, match=r"task 't1' cannot be loaded.*test_json_serializer:gone"
    ):
        JSONSerializer().deserialize(tampered(fn="test_json_serializer:gone"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "no 'task' object"),
        (b'{"format": 2, "task": {"id": "t9"}}', r"task 't9'.*format 2.*upgrade tickwork"),
        (b'{"format": 1, "task": {"id": "t8", "args": {"__tw__": "martian"}}}', "unknown type tag"),
        (b'{"format": 1, "task": {"id": "t7"}}', r"task 't7'.*(malformed|version)"),
    ],
)
def test_unreadable_data_raises_serialization_error(data: bytes, message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        JSONSerializer().deserialize(data)
