"""Shared dependencies for tasks: ``resources`` and :class:`tickwork.TaskContext`, on the
asyncio, thread-pool and debug executors; refused on a process pool; bad input
(tickwork/context.py)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from tickwork import AsyncIOScheduler, BackgroundScheduler, TaskContext
from tickwork.context import context_parameter
from tickwork.exceptions import ConfigurationError, InvalidTaskError
from tickwork.executors import DebugExecutor, ProcessPoolExecutor, ThreadPoolExecutor

seen: list[tuple[Any, ...]] = []
done = threading.Event()


def plain(x: int) -> None:
    seen.append(("plain", x))


def first(ctx: TaskContext, x: int, y: int = 0) -> None:
    seen.append((ctx.resources.db, ctx.task_id, ctx.attempt, x, y))
    done.set()


def middle(x: int, ctx: TaskContext, *, y: int = 0) -> None:
    seen.append((ctx.resources.db, ctx.task_id, x, y))
    done.set()


def keyword_only(x: int, *, context: TaskContext) -> None:
    seen.append((context.resources.db, x, context.scheduled_run_time))
    done.set()


async def coroutine(ctx: TaskContext, x: int) -> None:
    await asyncio.sleep(0)
    seen.append((ctx.resources.db, ctx.resources.http, ctx.task_id, x))
    done.set()


def test_the_context_parameter_is_read_from_the_signature() -> None:
    assert context_parameter(plain) is None
    assert context_parameter(first) == ("ctx", 0)
    assert context_parameter(middle) == ("ctx", 1)
    assert context_parameter(keyword_only) == ("context", -1)


@pytest.mark.parametrize(
    "executor",
    [DebugExecutor, ThreadPoolExecutor],
    ids=["debug", "threadpool"],
)
@pytest.mark.parametrize(
    ("fn", "args", "kwargs", "expected"),
    [
        (first, [1], {"y": 2}, ("pool", "t", 1, 1, 2)),
        (middle, [1], {"y": 2}, ("pool", "t", 1, 2)),
    ],
)
def test_sync_tasks_get_their_context_on_the_debug_and_thread_executors(
    executor: type, fn: Any, args: list[int], kwargs: dict[str, int], expected: tuple[Any, ...]
) -> None:
    seen.clear()
    done.clear()
    scheduler = BackgroundScheduler(
        executors={"default": executor()}, resources={"db": "pool"}, timezone="UTC"
    )
    scheduler.add_task(fn, args=args, kwargs=kwargs, id="t")
    with scheduler:
        assert done.wait(10)
    assert seen == [expected]


def test_a_keyword_only_context_and_the_run_time() -> None:
    seen.clear()
    done.clear()
    when = datetime(2026, 1, 1, tzinfo=UTC)
    scheduler = BackgroundScheduler(resources=SimpleNamespace(db="pool"), timezone="UTC")
    scheduler.add_task(
        keyword_only, "date", run_at=when, args=[3], mistrigger_grace_time=None, id="k"
    )
    with scheduler:
        assert done.wait(10)
    assert seen == [("pool", 3, when)]


async def test_a_coroutine_gets_resources_set_at_run_time_on_the_asyncio_executor() -> None:
    seen.clear()
    done.clear()
    scheduler = AsyncIOScheduler(resources={"db": "pool"}, timezone="UTC")
    scheduler.resources.http = "client"  # set after construction: the same object is passed
    scheduler.add_task(coroutine, args=[7], id="c")
    scheduler.start()
    try:
        await asyncio.wait_for(asyncio.to_thread(done.wait, 10), 15)
    finally:
        await scheduler.shutdown_async()
    assert seen == [("pool", "client", "c", 7)]


def test_a_task_with_a_context_is_refused_on_a_process_pool_by_name() -> None:
    scheduler = BackgroundScheduler(executors={"procs": ProcessPoolExecutor(1)})
    with pytest.raises(InvalidTaskError, match=r"TaskContext \(parameter \('ctx', 0\)\).*'procs'"):
        scheduler.add_task(first, args=[1], executor="procs")
    scheduler.add_task(plain, args=[1], executor="procs")  # no context: fine


def test_arguments_that_do_not_fit_the_other_parameters_are_refused() -> None:
    scheduler = BackgroundScheduler()
    with pytest.raises(InvalidTaskError, match="cannot be called"):
        scheduler.add_task(first)  # x is missing (the context is not an argument)
    with pytest.raises(InvalidTaskError, match="cannot be called"):
        scheduler.add_task(first, args=[1, 2, 3])


@pytest.mark.parametrize("value", [[("db", 1)], "db", {1: "x"}])
def test_resources_that_are_not_names_are_refused(value: object) -> None:
    with pytest.raises(ConfigurationError, match="resources must be a dict of names"):
        BackgroundScheduler(resources=value)  # type: ignore[arg-type]
    scheduler = BackgroundScheduler()
    with pytest.raises(ConfigurationError, match="resources must be"):
        scheduler.resources = value  # type: ignore[assignment]
