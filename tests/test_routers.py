"""TaskRouter: tasks declared without a scheduler, scheduled by include_router."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tickwork import AsyncIOScheduler, BackgroundScheduler, FakeClock, TaskRouter
from tickwork.exceptions import (
    ConfigurationError,
    InvalidTaskError,
    InvalidTriggerError,
    RouterError,
    UnknownAliasError,
)
from tickwork.executors import DebugExecutor
from tickwork.triggers import CronTrigger, DateTrigger, IntervalTrigger

T0 = datetime(2026, 5, 4, 8, tzinfo=UTC)  # a Monday


def refresh() -> None:
    """A task function."""


def report() -> None:
    """Another."""


def purge(days: int) -> None:
    """One with an argument."""


async def poll() -> None:
    """A coroutine."""


def scheduler(**options: Any) -> BackgroundScheduler:
    options.setdefault("executors", {"default": DebugExecutor()})
    return BackgroundScheduler(timezone="UTC", clock=FakeClock(T0), **options)


def test_decorators_declare_tasks_that_include_router_schedules() -> None:
    router = TaskRouter()

    @router.interval(minutes=5)
    def every_five() -> None: ...

    @router.cron(hour=0, minute=30, max_instances=2)
    async def nightly() -> None: ...

    router.add_task(purge, "interval", hours=1, args=(7,), id="purge-week")
    router.add_task(report, CronTrigger(day_of_week="mon", hour=9), coalesce=False)
    assert every_five.__name__ == "every_five"  # the decorators return the function

    sched = scheduler()
    tasks = sched.include_router(router)
    assert [t.id for t in tasks] == [
        f"{__name__}:test_decorators_declare_tasks_that_include_router_schedules.<locals>.every_five",
        f"{__name__}:test_decorators_declare_tasks_that_include_router_schedules.<locals>.nightly",
        "purge-week",
        f"{__name__}:report",
    ]
    five, night, purge_task, report_task = tasks
    assert isinstance(five.trigger, IntervalTrigger)
    assert five.trigger.interval == timedelta(minutes=5)
    # hour=0 is a value: midnight, not every hour
    assert sched.preview_task_runs(night.id, 2) == [
        datetime(2026, 5, 5, 0, 30, tzinfo=UTC),
        datetime(2026, 5, 6, 0, 30, tzinfo=UTC),
    ]
    assert night.max_instances == 2
    assert purge_task.args == (7,)
    assert report_task.coalesce is False
    assert sched.preview_task_runs(report_task.id, 1) == [datetime(2026, 5, 4, 9, tzinfo=UTC)]
    assert len(sched.get_tasks()) == 4


def test_a_task_without_a_trigger_runs_once_now() -> None:
    router = TaskRouter()
    router.add_task(refresh)
    sched = scheduler()
    (task,) = sched.include_router(router)
    assert isinstance(task.trigger, DateTrigger)


def test_the_scheduler_zone_is_given_to_alias_triggers_at_inclusion() -> None:
    router = TaskRouter()
    router.add_task(report, "cron", hour=9)
    sched = BackgroundScheduler(timezone="Europe/Berlin", clock=FakeClock(T0))
    (task,) = sched.include_router(router)
    # 09:00 Berlin (07:00 UTC) has passed today (T0 is 10:00 in Berlin): tomorrow
    assert sched.preview_task_runs(task.id, 1) == [datetime(2026, 5, 5, 7, tzinfo=UTC)]


def test_nested_routers_merge_defaults_nearest_first() -> None:
    outer = TaskRouter("outer", max_instances=5, coalesce=False)
    inner = TaskRouter("inner", max_instances=3)
    inner.add_task(report, "interval", seconds=10)
    inner.add_task(refresh, "interval", seconds=10, max_instances=1)
    outer.add_task(poll, "interval", seconds=10)
    outer.include_router(inner)
    sched = scheduler()
    tasks = {t.id.rsplit(":", 1)[1]: t for t in sched.include_router(outer)}
    assert (tasks["poll"].max_instances, tasks["poll"].coalesce) == (5, False)
    assert (tasks["report"].max_instances, tasks["report"].coalesce) == (3, False)
    assert tasks["refresh"].max_instances == 1


def test_one_router_in_two_schedulers_each_gets_its_own_anchor() -> None:
    router = TaskRouter()
    router.add_task(refresh, IntervalTrigger(seconds=10, jitter=1))  # anchors on first use
    first, second = scheduler(), scheduler()
    (one,) = first.include_router(router)
    (two,) = second.include_router(router)
    assert one.trigger is not two.trigger
    shared = TaskRouter()
    shared.add_task(report, IntervalTrigger(seconds=10))
    assert first.include_router(shared)[0].trigger is second.include_router(shared)[0].trigger


async def test_include_router_async_on_a_running_scheduler() -> None:
    router = TaskRouter()
    router.add_task(poll, "interval", seconds=1)
    sched = AsyncIOScheduler(timezone="UTC", clock=FakeClock(T0))
    async with sched:
        (task,) = await sched.include_router_async(router)
        assert task.next_run_time == T0 + timedelta(seconds=1)
        assert await sched.get_task_async(task.id) is not None


# -- mistakes ------------------------------------------------------------------------------------


def test_a_router_included_twice_in_one_scheduler_is_refused_by_name() -> None:
    router = TaskRouter("billing")
    router.add_task(report, "interval", seconds=10)
    sched = scheduler()
    sched.include_router(router)
    with pytest.raises(RouterError, match="router 'billing' is already included in this scheduler"):
        sched.include_router(router)
    assert len(sched.get_tasks()) == 1


def test_a_child_router_included_directly_and_through_its_parent_is_refused() -> None:
    parent, child = TaskRouter("parent"), TaskRouter("child")
    parent.include_router(child)
    sched = scheduler()
    sched.include_router(child)  # alone: with its own defaults only
    with pytest.raises(RouterError, match="router 'child' is already included in this scheduler"):
        sched.include_router(parent)  # it would add the child's tasks twice
    other = scheduler()
    other.include_router(parent)
    with pytest.raises(RouterError, match="'parent' is already included"):
        other.include_router(parent)


def test_nesting_mistakes_are_refused() -> None:
    a, b, c = TaskRouter("a"), TaskRouter("b"), TaskRouter("c")
    with pytest.raises(RouterError, match="'a' cannot include itself"):
        a.include_router(a)
    a.include_router(b)
    b.include_router(c)
    with pytest.raises(RouterError, match="'a' cannot include itself"):
        c.include_router(a)
    with pytest.raises(RouterError, match="'c' is already included in router 'b'"):
        a.include_router(c)
    with pytest.raises(RouterError, match="takes a TaskRouter, got 'c'"):
        a.include_router("c")  # type: ignore[arg-type]
    with pytest.raises(RouterError, match="takes a TaskRouter"):
        scheduler().include_router(object())  # type: ignore[arg-type]


def test_two_tasks_with_one_id_are_refused() -> None:
    router = TaskRouter("jobs")
    router.add_task(report, "interval", seconds=1)
    with pytest.raises(RouterError, match=f"'jobs' already has a task with id '{__name__}:report'"):
        router.add_task(report, "interval", seconds=2)
    other = TaskRouter("more")
    other.add_task(refresh, "interval", seconds=1, id=f"{__name__}:report")
    router.include_router(other)
    sched = scheduler()
    with pytest.raises(RouterError, match="routers 'jobs' and 'more' both declare"):
        sched.include_router(router)
    assert sched.get_tasks() == []


def test_declaring_on_an_included_router_is_refused() -> None:
    parent, child = TaskRouter("parent"), TaskRouter("child")
    parent.include_router(child)
    sched = scheduler()
    sched.include_router(parent)
    with pytest.raises(RouterError, match="cannot declare a task on router 'parent'"):
        parent.add_task(report)
    with pytest.raises(RouterError, match="on router 'child': a scheduler has already"):
        child.add_task(report)
    with pytest.raises(RouterError, match="cannot include a router in router 'child'"):
        child.include_router(TaskRouter("late"))


def test_declaration_mistakes_fail_where_they_are_written() -> None:
    router = TaskRouter("r")
    with pytest.raises(InvalidTriggerError, match="did you mean 'seconds'"):
        router.interval(secnds=5)
    with pytest.raises(InvalidTriggerError, match="mistrigger_grace_time"):
        router.add_task(refresh, "cron", hour=3, misfire_grace=30)
    with pytest.raises(InvalidTaskError, match="max_instances"):
        router.interval(seconds=5, max_instances=0)(refresh)
    with pytest.raises(InvalidTaskError):
        router.add_task(purge, "interval", seconds=5)  # purge needs its argument
    with pytest.raises(UnknownAliasError, match="'intervall'"):
        router.add_task(refresh, "intervall", seconds=5)
    with pytest.raises(ConfigurationError, match="go with a trigger alias"):
        router.add_task(refresh, IntervalTrigger(seconds=5), minutes=1)
    assert repr(router) == "TaskRouter('r', 0 tasks)"


def test_router_defaults_must_be_task_options() -> None:
    with pytest.raises(ConfigurationError, match=r"'max_instance' \(did you mean 'max_instances'"):
        TaskRouter(max_instance=2)
    with pytest.raises(ConfigurationError, match="does not take 'id'"):
        TaskRouter(id="x")


def test_a_function_without_a_stable_name_needs_an_id() -> None:
    class Callable_:
        def __call__(self) -> None: ...

    router = TaskRouter()
    with pytest.raises(RouterError, match="give the task an id="):
        router.add_task(Callable_(), "interval", seconds=1)
    router.add_task(Callable_(), "interval", seconds=1, id="callable")


def test_the_default_name_is_the_declaring_module() -> None:
    assert TaskRouter().name == __name__


def test_a_router_needs_no_scheduler_and_no_loop() -> None:
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    router = TaskRouter()
    router.add_task(poll, "interval", seconds=1)
    assert repr(router) == f"TaskRouter({__name__!r}, 1 tasks)"


def test_run_policy_options_are_router_options() -> None:
    router = TaskRouter(retries=2, retry_delay=5)
    router.interval(seconds=5, timeout=3, retry_on=ConnectionError)(_policy_job)
    (task,) = BackgroundScheduler().include_router(router)
    assert (task.retries, task.retry_delay, task.timeout) == (2, 5.0, 3.0)
    assert task.retry_on == (ConnectionError,)


def _policy_job() -> None:
    """A module-level function for the run-policy router test."""
