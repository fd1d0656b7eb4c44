"""Behaviour every scheduler kind shares (run against each by the ``harness`` fixture)."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from scheduler_helpers import Harness, wait_until

from tickwork.clock import FakeClock
from tickwork.events import (
    SCHEDULER_SHUTDOWN,
    SCHEDULER_STARTED,
    TASK_ADDED,
    TASK_ERROR,
    TASK_EXECUTED,
    TASK_MAX_INSTANCES,
    TASK_MISSED,
    TASK_MODIFIED,
    TASK_REMOVED,
    TASK_SUBMITTED,
)
from tickwork.exceptions import (
    ConflictIdError,
    MaxInstancesReachedError,
    SchedulerAlreadyRunningError,
    SchedulerNotRunningError,
    TaskLookupError,
)
from tickwork.executors import DebugExecutor
from tickwork.tasks import Task
from tickwork.triggers import IntervalTrigger

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Counter:
    """A thread-safe call counter usable as a sync task."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> None:
        with self._lock:
            self.calls.append(args)

    @property
    def count(self) -> int:
        return len(self.calls)


def fake_scheduler(harness: Harness, clock: FakeClock, **options: Any) -> Any:
    """A scheduler on a fake clock whose runs happen inline (deterministic)."""
    return harness.make(clock=clock, executors={"default": DebugExecutor()}, **options)


# -- running tasks -------------------------------------------------------------------------


async def test_interval_task_runs_repeatedly(harness: Harness) -> None:
    counter = Counter()
    scheduler = await harness.started()
    scheduler.add_task(counter, "interval", seconds=0.05)
    await wait_until(lambda: counter.count >= 4)
    await harness.shutdown(scheduler)
    assert harness.codes(SCHEDULER_STARTED)
    assert harness.codes(SCHEDULER_SHUTDOWN)


async def test_coroutine_task_runs(harness: Harness) -> None:
    done: list[int] = []

    async def job(value: int) -> int:
        await asyncio.sleep(0)
        done.append(value)
        return value * 2

    scheduler = await harness.started()
    scheduler.add_task(job, args=[21])
    await wait_until(lambda: bool(harness.codes(TASK_EXECUTED)))
    assert done == [21]
    assert harness.codes(TASK_EXECUTED)[0].return_value == 42


async def test_task_added_before_start_runs_after_start(harness: Harness) -> None:
    counter = Counter()
    scheduler = harness.make()
    task = scheduler.add_task(counter, "interval", seconds=0.05, id="early")
    assert task.next_run_time is UNSET_OR_NONE(task)
    assert [t.id for t in scheduler.get_tasks()] == ["early"]
    await harness.start(scheduler)
    await wait_until(lambda: counter.count >= 2)


def UNSET_OR_NONE(task: Task) -> Any:
    """A pending task has no next run time yet (the trigger is asked at start)."""
    from tickwork.tasks import UNSET

    return UNSET if task.next_run_time is UNSET else None


async def test_decorator_form(harness: Harness) -> None:
    counter = Counter()
    scheduler = await harness.started()

    @scheduler.add_task(trigger="interval", seconds=0.05, id="decorated")
    def job() -> None:
        counter()

    assert callable(job)
    await wait_until(lambda: counter.count >= 2)
    assert scheduler.get_task("decorated") is not None


async def test_textual_reference(harness: Harness) -> None:
    scheduler = await harness.started()
    task = scheduler.add_task("operator:add", args=[2, 3])
    assert task.fn_ref == "operator:add"
    await wait_until(lambda: bool(harness.codes(TASK_EXECUTED)))
    assert harness.codes(TASK_EXECUTED)[0].return_value == 5


async def test_prepared_task_object(harness: Harness) -> None:
    counter = Counter()
    scheduler = await harness.started()
    task = Task(counter, IntervalTrigger(seconds=0.05), id="prepared", args=["x"])
    scheduler.add_task(task)
    await wait_until(lambda: counter.count >= 2)
    assert counter.calls[0] == ("x",)


async def test_task_built_with_scheduler_is_scheduled(harness: Harness) -> None:
    counter = Counter()
    scheduler = await harness.started()
    Task(counter, trigger="interval", seconds=0.05, id="direct", scheduler=scheduler)
    await wait_until(lambda: counter.count >= 1)


async def test_task_defaults_fill_unset_fields(harness: Harness) -> None:
    scheduler = await harness.started(
        task_defaults={"coalesce": False, "max_instances": 3, "mistrigger_grace_time": None}
    )
    task = scheduler.add_task(Counter(), "interval", seconds=10)
    assert (task.coalesce, task.max_instances, task.mistrigger_grace_time) == (False, 3, None)
    own = scheduler.add_task(Counter(), "interval", seconds=10, max_instances=2)
    assert own.max_instances == 2


async def test_date_task_runs_once_and_is_removed(harness: Harness) -> None:
    counter = Counter()
    scheduler = await harness.started()
    scheduler.add_task(
        counter, "date", run_at=datetime.now(UTC) + timedelta(seconds=0.05), id="once"
    )
    await wait_until(lambda: counter.count == 1 and scheduler.get_task("once") is None)
    await asyncio.sleep(0.1)
    assert counter.count == 1
    assert [e.task_id for e in harness.codes(TASK_REMOVED)] == ["once"]


async def test_wakes_up_for_an_earlier_task(harness: Harness) -> None:
    """A task added while the scheduler sleeps towards a later one runs on time."""
    counter = Counter()
    scheduler = await harness.started()
    scheduler.add_task(Counter(), "interval", hours=1)
    await asyncio.sleep(0.05)  # the driver is now asleep with a one-hour deadline
    started = time.monotonic()
    scheduler.add_task(counter, "date", run_at=datetime.now(UTC) + timedelta(seconds=0.05))
    await wait_until(lambda: counter.count == 1, timeout=2)
    assert time.monotonic() - started < 1.0


async def test_exception_in_task_is_reported_and_scheduler_goes_on(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    counter = Counter()

    def boom() -> None:
        raise RuntimeError("task failed on purpose")

    scheduler = await harness.started()
    scheduler.add_task(boom, "interval", seconds=0.05, id="boom")
    scheduler.add_task(counter, "interval", seconds=0.05)
    await wait_until(lambda: len(harness.codes(TASK_ERROR)) >= 2 and counter.count >= 2)
    error = harness.codes(TASK_ERROR)[0]
    assert isinstance(error.exception, RuntimeError)
    assert "task failed on purpose" in (error.traceback or "")
    assert "task failed on purpose" in caplog.text
    assert scheduler.running


async def test_sync_task_under_asyncio_executor_does_not_block_loop(harness: Harness) -> None:
    if harness.kind not in ("asyncio", "native"):
        pytest.skip("only the schedulers on the test's own loop can show this")
    release = threading.Event()
    scheduler = await harness.started()
    scheduler.add_task(release.wait, args=[2.0])
    ticks = 0
    for _ in range(10):  # the loop keeps turning while the sync task blocks a thread
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks == 10
    release.set()
    await wait_until(lambda: bool(harness.codes(TASK_EXECUTED)))


# -- run rules: max_instances, coalesce, mistrigger_grace_time (time is faked) ----------------


async def test_max_instances_skips_extra_runs(harness: Harness) -> None:
    release = threading.Event()
    started: list[int] = []

    def slow() -> None:
        started.append(1)
        release.wait(5)

    scheduler = await harness.started(executors={"default": {"type": "threadpool"}})
    scheduler.add_task(slow, "interval", seconds=0.03, max_instances=1, mistrigger_grace_time=None)
    await wait_until(lambda: len(harness.codes(TASK_MAX_INSTANCES)) >= 2)
    assert len(started) == 1
    event = harness.codes(TASK_MAX_INSTANCES)[0]
    assert event.scheduled_run_times
    release.set()


async def test_run_task_respects_max_instances(harness: Harness) -> None:
    release = threading.Event()
    scheduler = await harness.started(executors={"default": {"type": "threadpool"}})
    scheduler.add_task(release.wait, "interval", hours=1, args=[5], id="slow")
    scheduler.run_task("slow")
    with pytest.raises(MaxInstancesReachedError, match="slow"):
        scheduler.run_task("slow")
    release.set()
    await wait_until(lambda: bool(harness.codes(TASK_EXECUTED)))


async def test_coalesce_folds_overdue_runs(harness: Harness) -> None:
    clock = FakeClock(T0)
    counter = Counter()
    scheduler = fake_scheduler(harness, clock)
    await harness.start(scheduler)
    scheduler.add_task(
        counter, "interval", seconds=10, coalesce=True, mistrigger_grace_time=None, id="c"
    )
    clock.advance(seconds=55)  # runs due at +10 ... +50: five of them
    await wait_until(lambda: counter.count >= 1)
    await asyncio.sleep(0.05)
    assert counter.count == 1
    assert scheduler.get_task("c").next_run_time == T0 + timedelta(seconds=60)  # type: ignore[union-attr]


async def test_without_coalesce_every_overdue_run_happens(harness: Harness) -> None:
    clock = FakeClock(T0)
    scheduler = fake_scheduler(harness, clock)
    await harness.start(scheduler)
    scheduler.add_task(
        Counter(), "interval", seconds=10, coalesce=False, mistrigger_grace_time=None, id="n"
    )
    clock.advance(seconds=55)
    await wait_until(lambda: len(harness.codes(TASK_EXECUTED)) == 5)
    runs = [e.scheduled_run_time for e in harness.codes(TASK_EXECUTED)]
    assert runs == [T0 + timedelta(seconds=s) for s in (10, 20, 30, 40, 50)]


async def test_runs_later_than_the_grace_time_are_missed(harness: Harness) -> None:
    clock = FakeClock(T0)
    counter = Counter()
    scheduler = fake_scheduler(harness, clock)
    await harness.start(scheduler)
    scheduler.add_task(
        counter, "interval", seconds=10, coalesce=False, mistrigger_grace_time=12, id="g"
    )
    clock.advance(seconds=35)  # due +10 (25 s late), +20 (15 s late), +30 (5 s late)
    await wait_until(lambda: counter.count == 1)
    missed = [e.scheduled_run_time for e in harness.codes(TASK_MISSED)]
    assert missed == [T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)]
    assert [e.scheduled_run_time for e in harness.codes(TASK_EXECUTED)] == [
        T0 + timedelta(seconds=30)
    ]


async def test_grace_none_always_runs(harness: Harness) -> None:
    clock = FakeClock(T0)
    counter = Counter()
    scheduler = fake_scheduler(harness, clock)
    await harness.start(scheduler)
    scheduler.add_task(
        counter, "date", run_at=T0 + timedelta(seconds=1), mistrigger_grace_time=None
    )
    clock.advance(timedelta(days=3))
    await wait_until(lambda: counter.count == 1)
    assert not harness.codes(TASK_MISSED)


async def test_first_fire_time_equal_to_now_is_due(harness: Harness) -> None:
    clock = FakeClock(T0)
    counter = Counter()
    scheduler = fake_scheduler(harness, clock)
    await harness.start(scheduler)
    scheduler.add_task(counter, "date", run_at=T0)
    await wait_until(lambda: counter.count == 1)


# -- managing tasks ----------------------------------------------------------------------------


async def test_duplicate_id_raises_unless_replacing(harness: Harness) -> None:
    scheduler = harness.make()
    scheduler.add_task(Counter(), "interval", seconds=10, id="dup")
    with pytest.raises(ConflictIdError, match="'dup'"):
        scheduler.add_task(Counter(), "interval", seconds=10, id="dup")
    await harness.start(scheduler)
    with pytest.raises(ConflictIdError, match="'dup'"):
        scheduler.add_task(Counter(), "interval", seconds=10, id="dup")
    replacement = scheduler.add_task(
        Counter(), "interval", seconds=99, id="dup", replace_existing=True
    )
    stored = scheduler.get_task("dup")
    assert stored is not None
    assert stored.trigger == replacement.trigger
    assert len(scheduler.get_tasks()) == 1


async def test_update_reschedule_pause_resume_delete(harness: Harness) -> None:
    clock = FakeClock(T0)
    scheduler = fake_scheduler(harness, clock)
    await harness.start(scheduler)
    task = scheduler.add_task(Counter(), "interval", seconds=10, id="t", name="before")
    assert task.next_run_time == T0 + timedelta(seconds=10)

    task.update(name="after", max_instances=4)
    stored = scheduler.get_task("t")
    assert stored is not None
    assert (stored.name, stored.max_instances) == ("after", 4)
    assert harness.codes(TASK_MODIFIED)

    scheduler.reschedule_task("t", trigger="interval", minutes=5)
    assert scheduler.get_task("t").next_run_time == T0 + timedelta(minutes=5)  # type: ignore[union-attr]

    task.pause()
    assert scheduler.get_task("t").next_run_time is None  # type: ignore[union-attr]
    clock.advance(timedelta(hours=1))
    await asyncio.sleep(0.05)
    assert not harness.codes(TASK_EXECUTED)

    task.resume()
    resumed = scheduler.get_task("t")
    assert resumed is not None
    # an interval without start_at counts from the resumption
    assert resumed.next_run_time == clock.now() + timedelta(minutes=5)

    task.delete()
    assert scheduler.get_task("t") is None
    with pytest.raises(TaskLookupError, match="'t'"):
        scheduler.delete_task("t")
    with pytest.raises(TaskLookupError):
        scheduler.pause_task("t")
    with pytest.raises(TaskLookupError):
        scheduler.update_task("t", name="x")


async def test_tasks_added_with_the_same_trigger_keywords_share_one_trigger(
    harness: Harness,
) -> None:
    clock = FakeClock(T0)
    scheduler = fake_scheduler(harness, clock)
    await harness.start(scheduler)
    first = scheduler.add_task(Counter(), "interval", seconds=30, id="a")
    clock.advance(timedelta(seconds=7))
    second = scheduler.add_task(Counter(), "interval", seconds=30, id="b")
    other = scheduler.add_task(Counter(), "interval", seconds=31, id="c")

    def next_run(task_id: str) -> datetime | None:
        task = scheduler.get_task(task_id)
        return None if task is None else task.next_run_time

    assert first.trigger is second.trigger is not other.trigger
    # one trigger, two grids: each task's own run times carry it
    assert first.next_run_time == T0 + timedelta(seconds=30)
    assert second.next_run_time == T0 + timedelta(seconds=37)
    clock.advance(timedelta(seconds=30))
    await wait_until(lambda: next_run("b") == T0 + timedelta(seconds=67))
    assert next_run("a") == T0 + timedelta(seconds=60)
    assert scheduler.get_task("a").trigger is scheduler.get_task("b").trigger  # type: ignore[union-attr]


async def test_resume_of_a_finished_trigger_deletes_the_task(harness: Harness) -> None:
    clock = FakeClock(T0)
    scheduler = fake_scheduler(harness, clock)
    await harness.start(scheduler)
    scheduler.add_task(
        Counter(), "interval", minutes=1, end_at=T0 + timedelta(minutes=5), id="ending"
    )
    scheduler.pause_task("ending")
    clock.advance(timedelta(hours=1))
    assert scheduler.resume_task("ending") is None
    assert scheduler.get_task("ending") is None
    assert [e.task_id for e in harness.codes(TASK_REMOVED)] == ["ending"]


async def test_tasks_listed_by_next_run_time_paused_last(harness: Harness) -> None:
    clock = FakeClock(T0)
    scheduler = fake_scheduler(harness, clock)
    await harness.start(scheduler)
    scheduler.add_task(Counter(), "interval", seconds=30, id="late")
    scheduler.add_task(Counter(), "interval", seconds=10, id="early")
    scheduler.add_task(Counter(), "interval", seconds=20, id="paused").pause()
    assert [t.id for t in scheduler.get_tasks()] == ["early", "late", "paused"]


async def test_run_task_runs_now_without_changing_schedule(harness: Harness) -> None:
    clock = FakeClock(T0)
    counter = Counter()
    scheduler = fake_scheduler(harness, clock)
    await harness.start(scheduler)
    scheduler.add_task(counter, "interval", hours=1, id="r")
    scheduler.run_task("r")
    await wait_until(lambda: counter.count == 1)
    assert scheduler.get_task("r").next_run_time == T0 + timedelta(hours=1)  # type: ignore[union-attr]


async def test_remove_all_tasks(harness: Harness) -> None:
    scheduler = harness.make()
    scheduler.add_task(Counter(), "interval", seconds=10)
    await harness.start(scheduler)
    scheduler.add_task(Counter(), "interval", seconds=10)
    scheduler.remove_all_tasks()
    assert scheduler.get_tasks() == []


async def test_events_for_task_lifecycle(harness: Harness) -> None:
    scheduler = await harness.started()
    scheduler.add_task(Counter(), id="e")
    await wait_until(lambda: bool(harness.codes(TASK_EXECUTED)))
    assert [e.task_id for e in harness.codes(TASK_ADDED)] == ["e"]
    assert [e.task_id for e in harness.codes(TASK_SUBMITTED)] == ["e"]
    executed = harness.codes(TASK_EXECUTED)[0]
    assert executed.task_id == "e"
    assert executed.scheduled_run_time.tzinfo is not None


async def test_listener_mask_and_removal(harness: Harness) -> None:
    seen: list[int] = []
    scheduler = harness.make()

    def listener(event: Any) -> None:
        seen.append(event.code)

    scheduler.add_listener(listener, TASK_ADDED)
    scheduler.add_task(Counter(), "interval", seconds=10)
    await harness.start(scheduler)
    assert seen == [TASK_ADDED]
    scheduler.remove_listener(listener)
    scheduler.add_task(Counter(), "interval", seconds=10)
    assert seen == [TASK_ADDED]


async def test_failing_listener_does_not_break_scheduling(harness: Harness) -> None:
    counter = Counter()
    scheduler = harness.make()

    def bad_listener(event: Any) -> None:
        raise ValueError("listener bug")

    scheduler.add_listener(bad_listener)
    await harness.start(scheduler)
    scheduler.add_task(counter)
    await wait_until(lambda: counter.count == 1)


# -- lifecycle ---------------------------------------------------------------------------------


async def test_start_twice_and_shutdown_twice_raise(harness: Harness) -> None:
    scheduler = await harness.started()
    with pytest.raises(SchedulerAlreadyRunningError):
        await harness.start(scheduler)
    await harness.shutdown(scheduler)
    with pytest.raises(SchedulerNotRunningError):
        await harness.shutdown(scheduler)


async def test_memory_store_keeps_tasks_across_restart(harness: Harness) -> None:
    """Stopping the scheduler must not wipe its memory store (asyncz does)."""
    counter = Counter()
    scheduler = await harness.started()
    scheduler.add_task(counter, "interval", seconds=0.05, id="kept")
    await harness.shutdown(scheduler)
    assert [t.id for t in scheduler.get_tasks()] == ["kept"]
    await harness.start(scheduler)
    before = counter.count
    await wait_until(lambda: counter.count >= before + 2)


async def test_shutdown_waits_for_running_coroutines_instead_of_cancelling(
    harness: Harness,
) -> None:
    finished: list[str] = []
    started = threading.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append("done")

    scheduler = await harness.started()
    scheduler.add_task(slow)
    await wait_until(started.is_set)
    await harness.shutdown(scheduler, wait=True)
    assert finished == ["done"]
    assert not scheduler.running
    assert not harness.codes(TASK_ERROR)


async def test_shutdown_trigger_runs_once_during_shutdown(harness: Harness) -> None:
    order: list[str] = []
    scheduler = await harness.started()

    async def async_cleanup() -> None:
        order.append("async cleanup")

    scheduler.add_task(lambda: order.append("cleanup"), "shutdown")
    scheduler.add_task(async_cleanup, "shutdown")
    await asyncio.sleep(0.05)
    assert order == []
    await harness.shutdown(scheduler)
    assert sorted(order) == ["async cleanup", "cleanup"]


async def test_paused_scheduler_runs_nothing_until_resumed(harness: Harness) -> None:
    counter = Counter()
    scheduler = harness.make()
    scheduler.add_task(counter, "interval", seconds=0.02, mistrigger_grace_time=None)
    await harness.start(scheduler, paused=True)
    await asyncio.sleep(0.1)
    assert counter.count == 0
    scheduler.resume()
    await wait_until(lambda: counter.count >= 1)
    scheduler.pause()
    paused_at = counter.count
    await asyncio.sleep(0.1)
    assert counter.count <= paused_at + 1  # at most a run already handed over


async def test_inspection(harness: Harness) -> None:
    clock = FakeClock(T0)
    scheduler = fake_scheduler(harness, clock)
    await harness.start(scheduler)
    scheduler.add_task(Counter(), "interval", minutes=1, id="i")
    assert scheduler.preview_task_runs("i", 3) == [T0 + timedelta(minutes=m) for m in (1, 2, 3)]
    info = scheduler.get_task_info("i")
    assert info["paused"] is False
    assert info["next_run_time"] == T0 + timedelta(minutes=1)
    assert [i["id"] for i in scheduler.get_task_infos()] == ["i"]
    assert scheduler.get_scheduler_info()["state"] == "running"
