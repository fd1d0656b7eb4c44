"""Tasks of one kind share one profile (callable, name, executor, run rules, scheduler),
and no task ever sees another's change through it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from tickwork import _task_profile
from tickwork.clock import FakeClock
from tickwork.executors import DebugExecutor
from tickwork.schedulers import BackgroundScheduler
from tickwork.tasks import Task
from tickwork.triggers import IntervalTrigger

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def job(value: int = 0) -> int:
    return value


@pytest.fixture
def scheduler() -> Iterator[BackgroundScheduler]:
    scheduler = BackgroundScheduler(
        clock=FakeClock(T0), timezone=UTC, executors={"default": DebugExecutor()}
    )
    scheduler.start(paused=True)
    yield scheduler
    scheduler.shutdown(wait=False)


def test_tasks_of_one_kind_share_a_profile(scheduler: BackgroundScheduler) -> None:
    tasks = [scheduler.add_task(job, "interval", seconds=5, args=[i]) for i in range(100)]
    assert len({id(task._profile) for task in tasks}) == 1
    assert [task.args for task in tasks[:2]] == [(0,), (1,)]  # per-task fields stay apart
    other = scheduler.add_task(job, "interval", seconds=5, max_instances=3)
    assert other._profile is not tasks[0]._profile
    # a task is 10 slots: the fields that differ from task to task (tags is one: a task's
    # groups are often its own, a user's; untagged tasks all hold one empty frozenset)
    assert sys.getsizeof(tasks[0]) <= sys.getsizeof(object()) + 10 * 8 + 16
    assert len({id(task.tags) for task in tasks}) == 1


def test_a_change_to_one_task_leaves_the_others_alone(scheduler: BackgroundScheduler) -> None:
    first = scheduler.add_task(job, "interval", seconds=5, id="first")
    second = scheduler.add_task(job, "interval", seconds=5, id="second")
    first.update(name="renamed", max_instances=2, coalesce=False, mistrigger_grace_time=None)
    stored = scheduler.get_task("first")
    assert stored is not None
    assert (stored.name, stored.max_instances, stored.coalesce) == ("renamed", 2, False)
    assert stored.mistrigger_grace_time is None
    untouched = scheduler.get_task("second")
    assert untouched is second
    assert (second.name, second.max_instances, second.coalesce) == ("job", 1, True)
    assert second.mistrigger_grace_time == 1.0


def test_fields_are_changed_with_update_not_by_assignment() -> None:
    task = Task(job, IntervalTrigger(seconds=5))
    with pytest.raises(AttributeError):
        task.executor = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        task.max_instances = 3  # type: ignore[misc]
    task.update(executor="other", max_instances=3)
    assert (task.executor, task.max_instances) == ("other", 3)


def test_names_made_per_task_share_the_profile(scheduler: BackgroundScheduler) -> None:
    tasks = [scheduler.add_task(job, "interval", seconds=5, name=f"n{i}") for i in range(50)]
    assert len({id(task._profile) for task in tasks}) == 1
    assert [task.name for task in tasks[:2]] == ["n0", "n1"]


@dataclass(frozen=True)
class Greeter:
    """A callable object equal to every other Greeter with the same greeting."""

    greeting: str

    def __call__(self) -> str:
        return self.greeting


def test_equal_callable_objects_each_keep_their_own(scheduler: BackgroundScheduler) -> None:
    one, two = Greeter("hi"), Greeter("hi")
    assert one == two
    assert one is not two
    first = scheduler.add_task(one, "interval", seconds=5)
    second = scheduler.add_task(two, "interval", seconds=5)
    assert first.fn is one
    assert second.fn is two


class Unhashable:
    """A callable that cannot be a dict key."""

    __hash__ = None  # type: ignore[assignment]

    def __call__(self) -> None:
        pass


def test_an_unhashable_callable_gets_a_profile_of_its_own(scheduler: BackgroundScheduler) -> None:
    fn = Unhashable()
    task = scheduler.add_task(fn, "interval", seconds=5, id="u")
    assert task.fn is fn
    assert task.coalesce is True  # the defaults were filled in all the same
    task.update(name="still works")
    assert scheduler.get_task("u").name == "still works"  # type: ignore[union-attr]


def test_the_profile_table_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_task_profile, "_MAX_PROFILES", 8)
    monkeypatch.setattr(_task_profile, "_PROFILES", {})
    tasks = [Task(job, IntervalTrigger(seconds=5), executor=f"e{i}") for i in range(50)]
    assert len(_task_profile._PROFILES) <= 8
    assert [task.executor for task in tasks] == [f"e{i}" for i in range(50)]  # none lost


def test_a_loaded_task_shares_the_profile_of_its_kind() -> None:
    state = Task(job, IntervalTrigger(seconds=5), coalesce=True, max_instances=1)
    state._set_shared(mistrigger_grace_time=1.0)
    state._set_shared(fn_ref=f"{__name__}:job")
    loaded = [Task.from_state(state.__getstate__()) for _ in range(3)]
    assert len({id(task._profile) for task in loaded}) == 1
    assert loaded[0].fn is job
    assert loaded[0].trigger.get_next_trigger_time(UTC, T0, T0) == T0 + timedelta(seconds=5)
