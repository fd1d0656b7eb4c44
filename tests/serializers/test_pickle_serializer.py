"""PickleSerializer: objects JSON cannot express, still with the function by reference."""

from __future__ import annotations

import enum
import pickle
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from tickwork.exceptions import SerializationError
from tickwork.serializers import PickleSerializer, resolve_serializer
from tickwork.tasks import Task
from tickwork.triggers import CronTrigger

START = datetime(2026, 1, 1, tzinfo=UTC)


def job(*args: Any, **kwargs: Any) -> None:
    """The function of the test tasks."""


class Colour(enum.Enum):
    RED = 1


@dataclass
class Point:
    x: int
    y: int


def task_with(**fields: Any) -> Task:
    values: dict[str, Any] = {
        "coalesce": True,
        "max_instances": 1,
        "mistrigger_grace_time": None,
        "next_run_time": START,
    }
    values.update(fields)
    return Task(job, CronTrigger(hour=3, timezone="Europe/Paris"), id="p1", **values)


def test_user_objects_round_trip() -> None:
    serializer = PickleSerializer()
    task = task_with(args=(Point(1, 2),), kwargs={"colour": Colour.RED})
    back = serializer.deserialize(serializer.serialize(task))
    assert back.args == (Point(1, 2),)
    assert back.kwargs == {"colour": Colour.RED}
    assert back.trigger == task.trigger
    assert (back.fn, back.next_run_time, back.store_alias) == (job, START, None)


def test_the_function_is_stored_by_reference_only() -> None:
    state = pickle.loads(PickleSerializer().serialize(task_with()))
    assert state["fn"] == "test_pickle_serializer:job"


def test_the_protocol_can_be_chosen() -> None:
    data = PickleSerializer(protocol=2).serialize(task_with())
    assert data[:2] == b"\x80\x02"
    assert resolve_serializer("pickle").name == "pickle"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a pickle", r"cannot be unpickled"),
        (pickle.dumps([1, 2]), r"expected a task state mapping"),
    ],
)
def test_unreadable_data_raises_serialization_error(data: bytes, message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        PickleSerializer().deserialize(data)


def test_a_removed_function_names_the_task() -> None:
    state = pickle.loads(PickleSerializer().serialize(task_with()))
    state["fn"] = "test_pickle_serializer:gone"
    with pytest.raises(SerializationError, match=r"task 'p1' cannot be loaded.*gone"):
        PickleSerializer().deserialize(pickle.dumps(state))
