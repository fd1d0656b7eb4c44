"""Task: validation, state for serializers, due run times."""

from __future__ import annotations

import functools
import math
import pickle
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tickwork.exceptions import InvalidTaskError
from tickwork.tasks import UNSET, Task
from tickwork.triggers import IntervalTrigger

UTC = UTC
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def greet(name: str, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


def test_fields_and_defaults() -> None:
    task = Task(greet, IntervalTrigger(seconds=5, start_at=T0), args=["ada"], id="g")
    assert (task.id, task.name, task.args, task.kwargs, task.executor) == (
        "g",
        "greet",
        ("ada",),
        {},
        "default",
    )
    assert task.coalesce is UNSET  # filled from the scheduler's task_defaults when added
    assert task.next_run_time is UNSET
    assert len(Task(greet, args=["x"]).id) == 32


def test_trigger_alias_with_keywords() -> None:
    task = Task(greet, "interval", args=["x"], minutes=2)
    assert isinstance(task.trigger, IntervalTrigger)
    assert task.trigger.interval == timedelta(minutes=2)


def test_update_without_scheduler_validates_everything_or_nothing() -> None:
    task = Task(greet, args=["x"], name="before")
    with pytest.raises(InvalidTaskError):
        task.update(name="after", args=[1, 2, 3])
    assert (task.name, task.args) == ("before", ("x",))
    task.update(name="after", kwargs={"punctuation": "?"})
    assert task.fn(*task.args, **task.kwargs) == "hello x?"
    with pytest.raises(InvalidTaskError, match="unknown task field"):
        task.update(colour="red")


def test_methods_needing_a_scheduler_say_so() -> None:
    task = Task(greet, args=["x"], id="lonely")
    with pytest.raises(InvalidTaskError, match="'lonely' is not attached"):
        task.pause()


def test_state_round_trip() -> None:
    task = Task(
        greet,
        IntervalTrigger(seconds=5, start_at=T0),
        args=["ada"],
        kwargs={"punctuation": "?"},
        id="g",
        coalesce=False,
        max_instances=2,
        mistrigger_grace_time=timedelta(seconds=30),
        next_run_time=T0,
    )
    state = task.__getstate__()
    assert state["fn"] == f"{__name__}:greet"
    assert state["version"] == 1
    copy = Task.from_state(state)
    assert copy.__getstate__() == state
    assert pickle.loads(pickle.dumps(task)).__getstate__() == state
    assert copy.mistrigger_grace_time == 30.0


def test_due_run_times_are_bounded_and_return_the_next_time() -> None:
    task = Task(greet, IntervalTrigger(seconds=1, start_at=T0), args=["x"], next_run_time=T0)
    due, following = task.due_run_times(UTC, T0 + timedelta(seconds=9.5))
    assert due == [T0 + timedelta(seconds=s) for s in range(10)]
    assert following == T0 + timedelta(seconds=10)
    due, following = task.due_run_times(UTC, T0 + timedelta(days=1), limit=3)
    assert len(due) == 3
    assert following == T0 + timedelta(seconds=3)


def test_equality_is_by_id() -> None:
    assert Task(greet, args=["a"], id="same") == Task(greet, args=["b"], id="same")
    assert "same" in repr(Task(greet, args=["a"], id="same"))


def test_tasks_without_kwargs_share_one_read_only_mapping() -> None:
    first, second = Task(greet, args=["a"]), Task(greet, args=["b"], kwargs={})
    assert first.kwargs is second.kwargs
    assert first.kwargs == {}
    with pytest.raises(TypeError, match=r"task\.update"):
        first.kwargs["punctuation"] = "?"
    assert second.kwargs == {}
    # Pickled (process pools, the pickle serializer) it comes back as the shared one.
    assert pickle.loads(pickle.dumps(first.kwargs)) is first.kwargs
    given = {"punctuation": "?"}
    task = Task(greet, args=["a"], kwargs=given)
    given["punctuation"] = "."
    assert task.kwargs == {"punctuation": "?"}  # a copy, not the caller's dict


def test_task_executor_must_be_an_alias_string() -> None:
    with pytest.raises(InvalidTaskError, match="executor must be an alias string, got 5"):
        Task(greet, args=["a"], executor=5)  # type: ignore[arg-type]


def test_task_trigger_alias_without_keywords() -> None:
    task = Task(greet, "date", args=["a"], next_run_time=T0)
    assert type(task.trigger).__name__ == "DateTrigger"


def test_ids_differ_in_a_forked_child() -> None:
    import os

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its first id and leave at once
        os.write(write, Task(greet, args=["x"]).id.encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child_id) == 32
    assert child_id != Task(greet, args=["x"]).id


def test_coalesce_is_a_bool_when_built_and_when_updated() -> None:
    with pytest.raises(InvalidTaskError, match="coalesce must be True or False, got 'no'"):
        Task(greet, args=["a"], coalesce="no")  # type: ignore[arg-type]
    task = Task(greet, args=["a"], coalesce=False, name="before")
    with pytest.raises(InvalidTaskError, match="coalesce must be True or False, got 1"):
        task.update(coalesce=1, name="after")
    assert (task.coalesce, task.name) == (False, "before")  # nothing changed
    task.update(coalesce=True)
    assert task.coalesce is True


def test_grace_time_is_checked_when_built_and_when_updated() -> None:
    with pytest.raises(InvalidTaskError, match=r"got nan"):
        Task(greet, args=["a"], mistrigger_grace_time=math.nan)
    task = Task(greet, args=["a"], mistrigger_grace_time=5)
    with pytest.raises(InvalidTaskError, match=r"got 0.*None for no limit"):
        task.update(mistrigger_grace_time=0)
    assert task.mistrigger_grace_time == 5.0


def test_args_none_is_no_arguments_and_other_non_lists_are_refused() -> None:
    def nothing() -> None: ...

    assert Task(nothing, args=None).args == ()
    assert Task(nothing, args=[]).args == ()
    with pytest.raises(InvalidTaskError, match=r"args.*got 0"):
        Task(nothing, args=0)  # type: ignore[arg-type]
    task = Task(greet, args=["a"])
    with pytest.raises(InvalidTaskError, match=r"args.*got 1.*args=\[1\]"):
        task.update(args=1)
    with pytest.raises(InvalidTaskError, match=r"args.*'bob'.*args=\['bob'\]"):
        task.update(args="bob")
    assert task.args == ("a",)


def test_a_next_run_time_localized_by_pytz_is_kept_as_its_instant() -> None:
    pytz = pytest.importorskip("pytz")
    berlin = pytz.timezone("Europe/Berlin")
    localized = berlin.localize(datetime(2026, 7, 1, 9))
    task = Task(greet, args=["a"], next_run_time=localized)
    assert task.next_run_time == localized
    assert task.next_run_time is not None
    assert task.next_run_time.tzinfo == ZoneInfo("Europe/Berlin")
    task.update(next_run_time=datetime(2026, 7, 2, 9, tzinfo=berlin))  # not localized
    assert task.next_run_time is not None
    assert task.next_run_time.isoformat() == "2026-07-02T09:00:00+02:00"


def test_a_decorated_function_is_checked_against_the_signature_it_is_called_with() -> None:
    def adds_a_parameter(fn: Callable[..., str]) -> Callable[..., str]:
        @functools.wraps(fn)
        def wrapper(times: int, *args: Any, **kwargs: Any) -> str:
            return fn(*args, **kwargs) * times

        return wrapper

    shout = adds_a_parameter(greet)
    task = Task(shout, args=[2, "ada"])
    assert task.fn(*task.args) == "hello ada!hello ada!"
    with pytest.raises(InvalidTaskError, match="times"):
        Task(shout)
