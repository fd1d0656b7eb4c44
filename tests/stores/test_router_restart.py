"""Routers on persistent stores: a program that includes its routers at every start finds
its tasks again (same ids, schedule going on), never twice, never a ConflictIdError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import storetest_router
from storetest_support import StoreMaker

from tickwork.clock import FakeClock
from tickwork.executors import DebugExecutor
from tickwork.schedulers import BackgroundScheduler
from tickwork.tasks import Task

T0 = datetime(2027, 1, 31, 8, tzinfo=UTC)
IDS = {
    "storetest_router:refresh_cache",
    "storetest_router:purge_sessions",
    "storetest_router:send_invoices",
}


def start(make_store: StoreMaker, clock: FakeClock) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        stores={"default": make_store(start=False)},
        executors={"default": DebugExecutor()},
        timezone="UTC",
        clock=clock,
    )
    scheduler.include_router(storetest_router.router)
    scheduler.start(paused=True)
    return scheduler


def by_id(tasks: list[Task]) -> dict[str, Task]:
    return {task.id: task for task in tasks}


def test_a_restart_finds_the_same_tasks_with_their_schedules(
    make_persistent_store: StoreMaker,
) -> None:
    clock = FakeClock(T0)
    first = start(make_persistent_store, clock)
    before = by_id(first.get_tasks())
    assert set(before) == IDS
    assert before["storetest_router:send_invoices"].max_instances == 2  # the router default
    first.shutdown()

    clock.set(T0 + timedelta(days=10))  # restarted ten days later
    second = start(make_persistent_store, clock)
    after = by_id(second.get_tasks())
    assert set(after) == IDS  # replaced, not duplicated
    for task_id, task in after.items():
        # The same schedule goes on: the stored next run time stays (its due runs then
        # follow the grace and coalesce rules), the trigger is the one stored.
        assert task.next_run_time == before[task_id].next_run_time, task_id
        assert task.trigger == before[task_id].trigger, task_id
    invoices = "storetest_router:send_invoices"
    assert [t.date() for t in second.preview_task_runs(invoices, 3)] == [
        datetime(2027, 1, 31).date(),
        datetime(2027, 2, 28).date(),
        datetime(2027, 3, 28).date(),
    ]
    second.shutdown()


def test_the_router_of_an_older_release_is_replaced_by_the_new_one(
    make_persistent_store: StoreMaker,
) -> None:
    """A task whose declaration changed (another trigger) is replaced by the new one."""
    clock = FakeClock(T0)
    first = BackgroundScheduler(
        stores={"default": make_persistent_store(start=False)},
        executors={"default": DebugExecutor()},
        timezone="UTC",
        clock=clock,
    )
    first.add_task(
        storetest_router.refresh_cache, "interval", hours=1, id="storetest_router:refresh_cache"
    )
    first.start(paused=True)
    first.shutdown()
    second = start(make_persistent_store, clock)
    tasks = by_id(second.get_tasks())
    assert set(tasks) == IDS
    assert tasks["storetest_router:refresh_cache"].next_run_time == T0 + timedelta(minutes=5)
    second.shutdown()


def test_ids_are_module_and_qualname() -> None:
    scheduler = BackgroundScheduler(timezone="UTC", clock=FakeClock(T0))
    assert {t.id for t in scheduler.include_router(storetest_router.router)} == IDS
