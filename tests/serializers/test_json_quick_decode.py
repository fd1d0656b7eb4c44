"""The JSON serializer's quick decoder gives exactly what the careful one gives.

``deserialize`` first tries a quick decoder (the C parser calls a hook per JSON object);
whenever it raises, for anything, the careful decoder (``json.loads`` and a walk over the
result) starts over, returns the task or words the error. So the quick decoder may give
up as often as it likes, but where it succeeds its task must be identical to the careful
one's, field by field and type by type. These tests check that on many varied tasks, on
randomly damaged documents, and on hand-made corner cases.
"""

from __future__ import annotations

import importlib
import json
import math
import random
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from test_json_fast_path import EXTRA_VALUES
from test_json_serializer import TRIGGERS, VALUES, job

from tickwork.exceptions import SerializationError
from tickwork.serializers import JSONSerializer
from tickwork.serializers import json as json_module
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
from tickwork.utils import ref_to_obj

ZONES: list[tzinfo] = [
    UTC,
    ZoneInfo("UTC"),
    ZoneInfo("Europe/Paris"),
    ZoneInfo("America/New_York"),
    ZoneInfo("Australia/Lord_Howe"),  # a 30-minute DST shift
    timezone(timedelta(hours=5, minutes=45)),
    timezone(timedelta(hours=-3, minutes=-30), "NST-ish"),
    timezone(timedelta(0), "Z"),
]
ALL_VALUES = {**VALUES, **EXTRA_VALUES}


def other_job(*args: Any, **kwargs: Any) -> None:
    """A second storable function."""


class Holder:
    @staticmethod
    def run(*args: Any, **kwargs: Any) -> None:
        """A function reached through a class: 'module:Holder.run'."""


# -- comparing -----------------------------------------------------------------------------


def assert_identical(left: Any, right: Any, where: str = "value") -> None:
    """Equal values of identical types all the way down, stricter than ``==``: zones are
    the same object (ZoneInfo) or have the same offset *and name* (timezone, whose ``==``
    ignores names), datetimes have the same fold, floats the same sign and NaN-ness,
    Decimals the same exponent, triggers the same class and state."""
    assert type(left) is type(right), (where, left, right)
    if isinstance(left, BaseTrigger):
        assert_identical(left.__getstate__(), right.__getstate__(), f"{where}.state")
    elif isinstance(left, float):
        if math.isnan(left):
            assert math.isnan(right), where
        else:
            assert left == right, where
            assert math.copysign(1, left) == math.copysign(1, right), where
    elif isinstance(left, Decimal):
        assert str(left) == str(right), where
    elif isinstance(left, dict):
        assert list(left) == list(right), where
        for key in left:
            assert_identical(left[key], right[key], f"{where}[{key!r}]")
    elif isinstance(left, list | tuple):
        assert len(left) == len(right), where
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_identical(a, b, f"{where}[{index}]")
    elif isinstance(left, set | frozenset):
        assert left == right, where
        for item in left:  # equal members of identical types
            (match,) = [other for other in right if other == item]
            assert_identical(item, match, f"{where} member")
    elif isinstance(left, tzinfo):
        assert_same_zone(left, right, where)
    elif isinstance(left, datetime | time):
        assert left.replace(tzinfo=None) == right.replace(tzinfo=None), where
        assert left.fold == right.fold, where
        assert_same_zone(left.tzinfo, right.tzinfo, f"{where}.tzinfo")
    else:
        assert left == right, (where, left, right)


def assert_same_zone(left: tzinfo | None, right: tzinfo | None, where: str) -> None:
    assert type(left) is type(right), where
    if isinstance(left, timezone):
        assert left.utcoffset(None) == right.utcoffset(None), where  # type: ignore[union-attr]
        assert left.tzname(None) == right.tzname(None), where  # type: ignore[union-attr]
    else:
        assert left is right, where


#: Every attribute a task has (Task has __slots__).
TASK_ATTRIBUTES = [name for name in Task.__slots__ if name != "__weakref__"]


def assert_same_task(left: Task, right: Task) -> None:
    """Every attribute of the two tasks, the function by identity."""
    assert type(left) is Task
    assert type(right) is Task
    for name in TASK_ATTRIBUTES:
        if name == "fn":
            assert left.fn is right.fn
        else:
            assert_identical(getattr(left, name), getattr(right, name), name)


def quick(data: bytes) -> Task:
    """The quick decoder alone (raises where it gives up)."""
    return json_module._quick_load(data)


def careful(data: bytes) -> Task:
    """The careful decoder alone."""
    return json_module._careful_load(data)


def outcome(decode: Callable[[bytes], Task], data: bytes) -> tuple[str, Any]:
    """("task", task) or ("error", (exception type, message))."""
    try:
        return "task", decode(data)
    except Exception as exc:
        return "error", (type(exc), str(exc))


# -- varied tasks --------------------------------------------------------------------------


def random_datetime(rng: random.Random, aware: bool = True) -> datetime:
    moment = datetime(2020, 1, 1) + timedelta(seconds=rng.randrange(10 * 365 * 86400))
    if rng.random() < 0.3:
        moment = moment.replace(microsecond=rng.randrange(1_000_000))
    if rng.random() < 0.1:  # around a DST change, both folds
        moment = datetime(2026, 10, 25, 2, rng.randrange(60), fold=rng.randrange(2))
    if not aware:
        return moment
    return moment.replace(tzinfo=rng.choice(ZONES))


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(14 if depth < 3 else 9)
    if kind == 0:
        return rng.choice(list(ALL_VALUES.values()))
    if kind == 1:
        return rng.randrange(-(10**12), 10**12)
    if kind == 2:
        return rng.choice(["", "text", "ünïcödé \u2603", 'q"uote\\', "__tw__"])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e300, float("inf"), float("nan")])
    if kind == 4:
        return random_datetime(rng, aware=rng.random() < 0.8)
    if kind == 5:
        return timedelta(seconds=rng.randrange(-(10**6), 10**6), microseconds=rng.randrange(9))
    if kind == 6:
        return rng.choice([True, False, None])
    if kind == 7:
        return rng.choice([b"", bytes(range(rng.randrange(40))), bytearray(b"\x00\xff")])
    if kind == 8:
        return rng.choice([date(2026, 2, 28), time(1, 2, 3, tzinfo=rng.choice(ZONES)), *ZONES])
    size = rng.randrange(4)
    items = [random_value(rng, depth + 1) for _ in range(size)]
    if kind == 9:
        return items
    if kind == 10:
        return tuple(items)
    if kind == 11:
        return {f"k{index}": item for index, item in enumerate(items)}
    if kind == 12:  # keys JSON cannot write as object keys, or the tag key itself
        keys = [rng.choice([1, (1, "a"), None, "__tw__", "fn", 2.5]) for _ in items]
        return dict(zip(keys, items, strict=False))
    return rng.choice([set, frozenset])(
        rng.choice([1, "a", (2, 3), None, 4.5]) for _ in range(size)
    )


def random_trigger(rng: random.Random, depth: int = 0) -> BaseTrigger:
    zone = rng.choice(ZONES)
    start = random_datetime(rng) if rng.random() < 0.7 else None
    end = start + timedelta(days=rng.randrange(1, 90)) if start and rng.random() < 0.3 else None
    jitter = rng.choice([None, 0, 2.5, 30])
    kind = rng.randrange(7 if depth == 0 else 5)
    if kind == 0:
        return DateTrigger(random_datetime(rng), timezone=zone)
    if kind == 1:
        return IntervalTrigger(
            seconds=rng.randrange(1, 100_000),
            start_at=start,
            end_at=end,
            timezone=zone,
            jitter=jitter,
        )
    if kind == 2:
        return CronTrigger(
            minute=rng.choice(["*/15", "0", "5,35"]),
            hour=rng.choice(["*", "9-17", "3"]),
            day_of_week=rng.choice(["*", "mon-fri"]),
            start_at=start,
            end_at=end,
            timezone=zone,
            jitter=jitter,
        )
    if kind == 3:
        return CronTrigger.from_crontab(
            rng.choice(["0 3 * * *", "*/5 * * * mon", "0 0 1 1 *"]), timezone=zone
        )
    if kind == 4:
        return ShutdownTrigger()
    members = [random_trigger(rng, depth + 1) for _ in range(rng.randrange(1, 3))]
    combined = AndTrigger if kind == 5 else OrTrigger
    return combined(members, jitter=rng.choice([None, 1.5]))


def random_task(rng: random.Random, index: int) -> Task:
    fn: Any = rng.choice([job, other_job, Holder.run, "test_json_serializer:job"])
    task = Task(
        fn,
        random_trigger(rng),
        args=[*rng.choice([[], [index]]), *(random_value(rng) for _ in range(rng.randrange(4)))],
        kwargs={f"k{n}": random_value(rng) for n in range(rng.randrange(4))},
        id=rng.choice([f"task-{index}", f"ünï-{index}", f'"{index}"']),
        name=rng.choice([None, "named", "ü\u2603"]),
        executor=rng.choice(["default", "threads"]),
        coalesce=rng.random() < 0.5,
        max_instances=rng.randrange(1, 5),
        mistrigger_grace_time=rng.choice([None, 0.25, 1.5, 30, timedelta(minutes=2)]),
        next_run_time=None if rng.random() < 0.15 else random_datetime(rng),  # None: paused
    )
    return task


def documents(count: int, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    serializer = JSONSerializer()
    for index in range(count):
        yield serializer.serialize(random_task(rng, index))


# -- the two decoders agree ----------------------------------------------------------------


def test_varied_tasks_decode_identically_on_both_paths() -> None:
    serializer = JSONSerializer()
    quick_ones = 0
    for data in documents(400, seed=1):
        expected = careful(data)
        assert_same_task(serializer.deserialize(data), expected)
        if b'["fn",' in data:
            continue  # a tagged dict with an "fn" key: the quick decoder may give up
        assert_same_task(quick(data), expected)  # anything else takes the quick path
        quick_ones += 1
    assert quick_ones > 300


@pytest.mark.parametrize("value", ALL_VALUES.values(), ids=ALL_VALUES.keys())
def test_every_supported_value_decodes_identically(value: Any) -> None:
    task = Task(
        job,
        DateTrigger(datetime(2026, 1, 1, tzinfo=UTC)),
        args=(value, [value]),
        kwargs={"value": value, "in a tuple": (value,)},
        id="t1",
        coalesce=False,
        max_instances=1,
        mistrigger_grace_time=None,
        next_run_time=None,
    )
    data = JSONSerializer().serialize(task)
    assert_same_task(quick(data), careful(data))


@pytest.mark.parametrize("trigger", TRIGGERS.values(), ids=TRIGGERS.keys())
def test_every_trigger_kind_decodes_identically(trigger: BaseTrigger) -> None:
    task = Task(
        job,
        trigger,
        id="t1",
        coalesce=True,
        max_instances=1,
        mistrigger_grace_time=None,
        next_run_time=datetime(2026, 3, 29, 1, 59, tzinfo=ZoneInfo("Europe/Paris")),
    )
    data = JSONSerializer().serialize(task)
    fast = quick(data)
    assert_same_task(fast, careful(data))
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert fast.trigger.get_next_trigger_time(UTC, None, now) == trigger.get_next_trigger_time(
        UTC, None, now
    )


def test_decoded_timedeltas_are_shared_but_equal() -> None:
    # The quick path reuses timedelta objects (immutable); the values are the careful ones.
    data = next(documents(1, seed=2))
    for _ in range(2):
        assert_same_task(quick(data), careful(data))
    assert all(type(delta) is timedelta for delta in json_module._DELTAS.values())
    assert len(json_module._DELTAS) <= json_module._DELTAS_MAX


# -- damaged and hand-made documents -------------------------------------------------------

#: Replacement values for the damage test: wrong types, stray tags, tags with bad members.
DAMAGE: list[Any] = [
    None,
    0,
    True,
    1.5,
    "",
    "x",
    "2026-01-01T00:00:00",
    [],
    [0, 0],
    [0, 300, 0],
    [True, 0, 0],
    [0.5, 0, 0],
    {},
    {"__tw__": None, "a": 1},
    {"__tw__": "martian"},
    {"__tw__": ["list"]},
    {"__tw__": "float", "v": "nan"},
    {"__tw__": "float", "v": 2},
    {"__tw__": "tuple", "items": [1, {"__tw__": "float", "v": "1"}]},
    {"__tw__": "tuple", "items": {"a": 1}},
    {"__tw__": "tuple", "items": "ab"},
    {"__tw__": "set", "items": [[1]]},
    {"__tw__": "dict", "items": [["a", 1], [2, "b"]]},
    {"__tw__": "dict", "items": [["a", 1, 2]]},
    {"__tw__": "dict", "items": ["ab"]},
    {"__tw__": "dict", "items": [{"__tw__": "tuple", "items": ["k", "v"]}]},
    {"__tw__": "dict", "items": {"ab": 1}},
    {"__tw__": "datetime", "v": "2026-01-01T00:00:00", "fold": 0, "tz": None},
    {"__tw__": "datetime", "v": "2026-01-01T00:00:00+05:00", "fold": 0, "tz": None},
    {"__tw__": "datetime", "v": "2026-10-25T02:30:00", "fold": 1, "tz": None},
    {"__tw__": "datetime", "v": "2026-01-01T00:00:00", "fold": 2, "tz": None},
    {"__tw__": "datetime", "v": "2026-01-01T00:00:00", "fold": True, "tz": None},
    {"__tw__": "datetime", "v": "2026-01-01T00:00:00", "fold": 0, "tz": "UTC"},
    {
        "__tw__": "datetime",
        "v": "2026-01-01T00:00:00",
        "fold": 0,
        "tz": {"__tw__": "float", "v": "1"},
    },
    {"__tw__": "datetime", "v": {"__tw__": "date", "v": "2026-01-01"}, "fold": 0, "tz": None},
    {"__tw__": "datetime", "v": "not a date", "fold": 0, "tz": None},
    {"__tw__": "time", "v": "01:02:03", "fold": 0, "tz": {"__tw__": "zoneinfo", "key": "UTC"}},
    {"__tw__": "date", "v": 20260101},
    {"__tw__": "timedelta", "v": [0, {"__tw__": "float", "v": "1.5"}, 0]},
    {"__tw__": "timedelta", "v": [1, 2]},
    {"__tw__": "timedelta", "v": [10**10, 0, 0]},
    {"__tw__": "zoneinfo", "key": "Europe/Paris"},
    {"__tw__": "zoneinfo", "key": "Not/AZone"},
    {"__tw__": "zoneinfo", "key": 5},
    {"__tw__": "timezone", "offset": [0, 3600, 0], "name": None},
    {"__tw__": "timezone", "offset": [0, 3600, 0], "name": 7},
    {"__tw__": "timezone", "offset": [0, 3600, 0]},
    {"__tw__": "timezone", "offset": [1, 0, 0], "name": None},
    {"__tw__": "uuid", "v": "12345678-1234-5678-1234-567812345678"},
    {"__tw__": "uuid", "v": "nope"},
    {"__tw__": "decimal", "v": "1.10"},
    {"__tw__": "decimal", "v": [0, [1], 0]},
    {"__tw__": "decimal", "v": {"__tw__": "float", "v": "1.5"}},
    {"__tw__": "bytes", "v": "AAE="},
    {"__tw__": "bytes", "v": "!!"},
    {"__tw__": "bytearray", "v": "AAE="},
    {
        "__tw__": "trigger",
        "type": "tickwork.triggers.shutdown:ShutdownTrigger",
        "state": {"version": 1},
    },
    {
        "__tw__": "trigger",
        "type": "tickwork.triggers.shutdown:ShutdownTrigger",
        "state": {"version": 9},
    },
    {"__tw__": "trigger", "type": "collections:OrderedDict", "state": {}},
    {"__tw__": "trigger", "type": "no_such_module_xyz:Trigger", "state": {"version": 1}},
    {"__tw__": "trigger", "type": ["x"], "state": {}},
    {"__tw__": "trigger", "type": {"__tw__": "float", "v": "1"}, "state": {}},
]


def nodes(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value inside a parsed JSON document."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from nodes(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from nodes(item, (*path, index))


def damaged(document: Any, rng: random.Random) -> bytes:
    """The document with one value replaced, one member removed, or one member added."""
    paths = [path for path in nodes(document["task"]) if path]
    path = rng.choice(paths)
    parent = document["task"]
    for step in path[:-1]:
        parent = parent[step]
    action = rng.randrange(4)
    if action == 0 and isinstance(parent, dict):
        del parent[path[-1]]
    elif action == 1 and isinstance(parent, dict):
        parent[rng.choice(["__tw__", "extra", "fn", "items", "v"])] = rng.choice(DAMAGE)
    else:
        parent[path[-1]] = json.loads(json.dumps(rng.choice(DAMAGE)))
    # Written compactly, like the encoder: the damaged document still takes the quick path.
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def assert_same_outcome(data: bytes) -> None:
    """The quick decoder either gives up or gives the careful decoder's task; and
    ``deserialize`` returns the careful task or raises the careful error."""
    expected_kind, expected = outcome(careful, data)
    quick_kind, quick_value = outcome(quick, data)
    if quick_kind == "task":
        assert expected_kind == "task", (data, expected)
        assert_same_task(quick_value, expected)
    kind, value = outcome(JSONSerializer().deserialize, data)
    assert kind == expected_kind, (data, value, expected)
    if kind == "task":
        assert_same_task(value, expected)
    else:
        assert value == expected


def test_damaged_documents_decode_or_fail_as_the_careful_decoder_says() -> None:
    rng = random.Random(3)
    for data in documents(150, seed=4):
        for _ in range(12):
            document = json.loads(data)
            for _ in range(rng.randrange(1, 3)):
                damaged_data = damaged(document, rng)
                document = json.loads(damaged_data)
            assert_same_outcome(damaged_data)


#: The document the corner cases start from.
BASE = JSONSerializer().serialize(
    Task(
        job,
        IntervalTrigger(minutes=5, start_at=datetime(2026, 1, 1, tzinfo=ZoneInfo("Europe/Paris"))),
        args=[1, (2, "three")],
        kwargs={"when": datetime(2026, 1, 1, tzinfo=UTC)},
        id="task-0",
        coalesce=True,
        max_instances=1,
        mistrigger_grace_time=None,
        next_run_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
)


def replace_task(**members: Any) -> bytes:
    document = json.loads(BASE)
    document["task"].update(members)
    return json.dumps(document, separators=(",", ":")).encode()


def as_pairs(state: dict[str, Any]) -> list[list[Any]]:
    return [[key, value] for key, value in state.items()]


TASK_STATE = json.loads(BASE)["task"]

CORNER_CASES: dict[str, bytes] = {
    "task written as a tagged dict": json.dumps(
        {"format": 1, "task": {"__tw__": "dict", "items": as_pairs(TASK_STATE)}},
        separators=(",", ":"),
    ).encode(),
    "tagged dict that covers the task members": json.dumps(
        {"format": 1, "task": {**TASK_STATE, "__tw__": "dict", "items": as_pairs(TASK_STATE)}},
        separators=(",", ":"),
    ).encode(),
    "task with a null tag": replace_task(__tw__=None),
    "task with a tuple tag": replace_task(__tw__="tuple", items=[1]),
    "extra task members": replace_task(extra={"__tw__": "martian"}),
    "trigger that is not a trigger class": replace_task(
        trigger={"__tw__": "trigger", "type": "subprocess:Popen", "state": {}}
    ),
    "function that does not import": replace_task(fn="no_such_module_xyz:job"),
    "function of the wrong form": replace_task(fn="no colon"),
    "function reference not a string": replace_task(fn=["x"]),
    "args as a string": replace_task(args="abc"),
    "kwargs as a list": replace_task(kwargs=[1]),
    "no version": replace_task(version=None),
    "trailing member after the task": BASE[:-1] + b',"task":{}}',
    "trailing data": BASE + b"x",
    "trailing whitespace": BASE + b" \n",
    "truncated": BASE[:-2],
    "task not an object": b'{"format":1,"task":[1]}',
    "empty task": b'{"format":1,"task":{}}',
    "task is a number then more": b'{"format":1,"task":1}',
    "NaN literal": replace_task(args={"__tw__": "tuple", "items": [float("nan")]}),
    "encoded lone surrogate": BASE.replace(b'"task-0"', b'"\xed\xa0\x80"'),
    "escaped lone surrogate": BASE.replace(b'"task-0"', b'"\\ud800"'),
    "invalid UTF-8": BASE.replace(b'"task-0"', b'"\xff"'),
    "control character in a string": BASE.replace(b"task-0", b"a\x01b"),
    "format 2": BASE.replace(b'"format":1', b'"format":2'),
    "utf-8 BOM": b"\xef\xbb\xbf" + BASE,
    "utf-16": BASE.decode().encode("utf-16"),
    "deeply nested": b'{"format":1,"task":{"args":' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
}


@pytest.mark.parametrize("data", CORNER_CASES.values(), ids=CORNER_CASES.keys())
def test_corner_cases_decode_or_fail_as_the_careful_decoder_says(data: bytes) -> None:
    assert_same_outcome(data)


def test_errors_still_name_the_bad_value() -> None:
    serializer = JSONSerializer()
    with pytest.raises(SerializationError, match=r"task 'task-0'.*no_such_module_xyz:job"):
        serializer.deserialize(CORNER_CASES["function that does not import"])
    with pytest.raises(SerializationError, match=r"'subprocess:Popen' is not a trigger class"):
        serializer.deserialize(CORNER_CASES["trigger that is not a trigger class"])
    with pytest.raises(SerializationError, match=r"unknown type tag 'martian'"):
        serializer.deserialize(CORNER_CASES["extra task members"])
    with pytest.raises(SerializationError, match=r"format 2.*upgrade tickwork"):
        serializer.deserialize(CORNER_CASES["format 2"])


def test_other_input_types_are_left_to_the_careful_decoder() -> None:
    data = next(documents(1, seed=6))
    for other in (bytearray(data), data.decode()):
        assert_same_task(JSONSerializer().deserialize(other), careful(data))  # type: ignore[arg-type]


# -- references: cached successes only ------------------------------------------------------


@pytest.fixture
def module_dir(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("tw_quick_later", "tw_quick_reloaded"):
            sys.modules.pop(name, None)
        ref_to_obj.cache_clear()


def document_naming(fn_ref: str, trigger_ref: str) -> bytes:
    return replace_task(
        fn=fn_ref,
        trigger={"__tw__": "trigger", "type": trigger_ref, "state": {"version": 1}},
    )


def test_a_reference_that_fails_is_not_remembered(module_dir: Path) -> None:
    serializer = JSONSerializer()
    data = document_naming("tw_quick_later:job", "tickwork.triggers.shutdown:ShutdownTrigger")
    for _ in range(2):  # the second failure is not served from a cache either
        with pytest.raises(SerializationError, match=r"tw_quick_later:job.*cannot be imported"):
            serializer.deserialize(data)
    trigger_data = document_naming("test_json_serializer:job", "tw_quick_later:Later")
    for _ in range(2):
        with pytest.raises(SerializationError, match=r"tw_quick_later:Later"):
            serializer.deserialize(trigger_data)
    importlib.invalidate_caches()
    (module_dir / "tw_quick_later.py").write_text(
        "from tickwork.triggers import ShutdownTrigger\n\n"
        "def job(*args, **kwargs):\n    pass\n\n"
        "class Later(ShutdownTrigger):\n    __slots__ = ()\n"
    )
    importlib.invalidate_caches()
    task = serializer.deserialize(data)  # now it imports
    assert task.fn is sys.modules["tw_quick_later"].job
    assert type(serializer.deserialize(trigger_data).trigger).__name__ == "Later"


def test_a_reloaded_module_gives_what_the_careful_decoder_gives(module_dir: Path) -> None:
    (module_dir / "tw_quick_reloaded.py").write_text(
        "from tickwork.triggers import ShutdownTrigger\n\n"
        "def job(*args, **kwargs):\n    pass\n\n"
        "class Again(ShutdownTrigger):\n    __slots__ = ()\n"
    )
    importlib.invalidate_caches()
    data = document_naming("tw_quick_reloaded:job", "tw_quick_reloaded:Again")
    first = quick(data)
    module = importlib.reload(sys.modules["tw_quick_reloaded"])
    ref_to_obj.cache_clear()  # what a program that reloads does to see the new objects
    second = quick(data)
    assert_same_task(second, careful(data))
    assert second.fn is module.job
    assert second.fn is not first.fn
    assert type(second.trigger) is module.Again
    assert type(first.trigger) is not module.Again


def test_threads_decoding_at_once_get_their_own_tasks() -> None:
    # One C scanner serves every call; its only state is a cache of key strings that
    # each call clears at its end, possibly while another thread is inside the hook.
    blobs = list(documents(60, seed=7))
    expected = [careful(data) for data in blobs]
    serializer = JSONSerializer()
    failures: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for round_ in range(5):
                for index in range(len(blobs)):
                    at = (index + offset + round_) % len(blobs)
                    assert_same_task(serializer.deserialize(blobs[at]), expected[at])
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    assert not failures, failures[0]
