"""Tasks that cannot be stored: the error names the task, the value, where, and the way out."""

from __future__ import annotations

import enum
import functools
import io
import threading
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tickwork.exceptions import SerializationError
from tickwork.serializers import BaseSerializer, JSONSerializer, PickleSerializer
from tickwork.tasks import Task
from tickwork.triggers import DateTrigger

START = datetime(2026, 1, 1, tzinfo=UTC)
SERIALIZERS = [
    pytest.param(JSONSerializer(), id="json"),
    pytest.param(PickleSerializer(), id="pickle"),
]


def job(*args: Any, **kwargs: Any) -> None:
    """A storable function."""


class Worker:
    def run(self, *args: Any) -> None:
        """A bound method: no reference leads back to this instance."""


class Level(enum.IntEnum):
    HIGH = 1


def make(fn: Any = job, **fields: Any) -> Task:
    values: dict[str, Any] = {
        "coalesce": True,
        "max_instances": 1,
        "mistrigger_grace_time": None,
        "next_run_time": START,
    }
    values.update(fields)
    return Task(fn, DateTrigger(START), id="the-task", **values)


def closure() -> Any:
    secret = 42

    def inner() -> int:
        return secret

    return inner


@pytest.fixture
def open_file() -> Iterator[io.BufferedReader]:
    with open(__file__, "rb") as stream:
        yield stream


@pytest.mark.parametrize("serializer", SERIALIZERS)
@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda: 1, id="lambda"),
        pytest.param(closure(), id="closure"),
        pytest.param(Worker().run, id="bound-method"),
        pytest.param(functools.partial(job, 1), id="partial"),
    ],
)
def test_functions_without_a_reference_are_refused(serializer: BaseSerializer, fn: Any) -> None:
    with pytest.raises(SerializationError) as info:
        serializer.serialize(make(fn))
    message = str(info.value)
    assert "task 'the-task' cannot be stored" in message
    assert "use a module-level function" in message
    assert "use the memory store" in message


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_an_open_file_in_kwargs_is_refused_with_its_place(
    serializer: BaseSerializer, open_file: io.BufferedReader
) -> None:
    with pytest.raises(SerializationError) as info:
        serializer.serialize(make(kwargs={"x": open_file}))
    message = str(info.value)
    assert "task 'the-task'" in message
    assert "kwargs['x'] = <_io.BufferedReader" in message
    assert "pass plain data" in message
    assert "use the memory store" in message


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_a_lock_deep_in_args_is_located(serializer: BaseSerializer) -> None:
    with pytest.raises(
        SerializationError, match=r"args\[1\]\['inner'\]\[0\] = <unlocked _thread\.lock"
    ):
        serializer.serialize(make(args=(1, {"inner": [threading.Lock()]})))


def test_json_suggests_the_pickle_serializer() -> None:
    with pytest.raises(
        SerializationError, match=r"kwargs\['level'\] = <Level.HIGH: 1>.*serializer='pickle'"
    ):
        JSONSerializer().serialize(make(kwargs={"level": Level.HIGH}))


def test_json_refuses_cycles() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SerializationError, match=r"args\[0\]\[0\].*contains itself"):
        JSONSerializer().serialize(make(args=(loop,)))


class HomeMadeZone(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=1)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "HOME"


def test_json_refuses_zones_it_cannot_name() -> None:
    when = datetime(2026, 1, 1, tzinfo=HomeMadeZone())
    with pytest.raises(SerializationError, match=r"kwargs\['when'\].*only ZoneInfo zones"):
        JSONSerializer().serialize(make(kwargs={"when": when}))
    paths = [Path(root, "Europe", "Paris") for root in zoneinfo.TZPATH]
    system_file = next((path for path in paths if path.is_file()), None)
    if system_file is not None:  # a ZoneInfo read from a file has no key to store
        with system_file.open("rb") as stream:
            keyless = ZoneInfo.from_file(stream)
        with pytest.raises(SerializationError, match=r"kwargs\['zone'\].*has no key"):
            JSONSerializer().serialize(make(kwargs={"zone": keyless}))


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_unfilled_defaults_are_explained(serializer: BaseSerializer) -> None:
    task = Task(job, DateTrigger(START), id="bare")
    with pytest.raises(SerializationError, match=r"task 'bare'.*UNSET.*task_defaults"):
        serializer.serialize(task)


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_check_accepts_a_next_run_time_not_computed_yet(serializer: BaseSerializer) -> None:
    pending = Task(
        job,
        DateTrigger(START),
        id="pending",
        coalesce=True,
        max_instances=1,
        mistrigger_grace_time=None,
    )
    serializer.check(pending)  # the scheduler computes next_run_time when it starts
    assert str(pending.next_run_time) == "UNSET"  # and the task itself is left alone
    lam = Task(
        lambda: 1,
        DateTrigger(START),
        id="lam",
        coalesce=True,
        max_instances=1,
        mistrigger_grace_time=None,
    )
    with pytest.raises(SerializationError, match="task 'lam'"):
        serializer.check(lam)


# -- damaged data: always a SerializationError (a store then skips that one task) ------------


def _damaged_json() -> dict[str, Any]:
    blob = JSONSerializer().serialize(make(args=[Decimal("1.5"), timedelta(days=1)]))
    assert b'"v":"1.5"' in blob
    assert b"[1,0,0]" in blob
    return {
        "a decimal that does not parse": blob.replace(b'"v":"1.5"', b'"v":"abc"'),
        "a timedelta out of range": blob.replace(b"[1,0,0]", b"[1000000000000,0,0]"),
        "nesting deeper than the interpreter's stack": (
            b'{"format":1,"task":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        ),
        "not bytes": memoryview(blob),
    }


@pytest.mark.parametrize("what", list(_damaged_json()))
def test_damaged_json_raises_a_serialization_error(what: str) -> None:
    data = _damaged_json()[what]
    expected = {
        "a decimal that does not parse": "malformed value",
        "a timedelta out of range": "malformed value",
        "nesting deeper than the interpreter's stack": "nested too deeply",
        "not bytes": "expected bytes, got memoryview",
    }[what]
    with pytest.raises(SerializationError, match=expected):
        JSONSerializer().deserialize(data)  # type: ignore[arg-type]
