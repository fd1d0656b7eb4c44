"""Every run sent is executed once and reported once, and its max_instances slot is always
released: whatever the task raises, when its coroutine is cancelled (even before it
started), when a listener raises, around shutdown. Plus what a coroutine run sees of
asyncio (task factory, contextvars) and that finished runs are not kept alive."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Iterator
from datetime import timedelta
from typing import Any

import executor_jobs as jobs
import pytest
from executor_host import T0, Host, make, task

from tickwork.events import TASK_ERROR
from tickwork.executors import (
    AsyncIOExecutor,
    BaseExecutor,
    ThreadPoolExecutor,
)
from tickwork.tasks import Task


def started(executor: BaseExecutor, host: Host) -> BaseExecutor:
    executor.start(host, "default")  # type: ignore[arg-type]
    return executor


async def until_idle(executor: BaseExecutor, timeout: float = 5) -> None:
    assert await executor.wait_until_idle_async(timeout), "a run slot was never released"


async def until_reported(host: Host, count: int, timeout: float = 5) -> None:
    """Wait for ``count`` events: a run's slot is released just before its events go out."""
    deadline = time.monotonic() + timeout
    while len(host.events) < count:
        assert time.monotonic() < deadline, f"expected {count} events, got {host.events}"
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.01)
    assert len(host.events) == count, "reported more than once"


def raise_system_exit() -> None:
    raise SystemExit(3)


def raise_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


# -- BaseException from a plain function, in a worker thread ---------------------------


@pytest.mark.parametrize("kind", ["asyncio", "threadpool"])
@pytest.mark.parametrize("fn", [raise_system_exit, raise_keyboard_interrupt])
async def test_a_base_exception_in_a_thread_run_is_reported_and_frees_the_slot(
    kind: str, fn: Callable[[], None]
) -> None:
    host = Host(asyncio.get_running_loop())
    executor = started(AsyncIOExecutor() if kind == "asyncio" else ThreadPoolExecutor(1), host)
    executor.send_task(task(fn), [T0, T0])
    await until_idle(executor)
    await until_reported(host, 2)
    assert [e.code for e in host.events] == [TASK_ERROR, TASK_ERROR]
    assert fn.__name__ in (host.events[0].traceback or "")
    executor.send_task(task(jobs.add, 1, 2), [T0])  # the worker survived
    await until_reported(host, 3)
    await executor.shutdown_async()
    assert host.events[-1].return_value == 3


# -- coroutine runs ----------------------------------------------------------------------


@pytest.mark.parametrize("error", [SystemExit, KeyboardInterrupt])
def test_a_base_exception_in_a_coroutine_run_is_reported_and_frees_the_slot(
    error: type[BaseException],
) -> None:
    async def body() -> None:
        raise error

    loop = asyncio.new_event_loop()
    try:
        host = Host(loop)
        executor = started(AsyncIOExecutor(), host)
        executor.send_task(task(body), [T0])
        with pytest.raises(error):  # as for any asyncio task: it stops the loop
            loop.run_forever()
        assert executor.active_instances("t") == 0
        assert [(e.code, type(e.exception)) for e in host.events] == [(TASK_ERROR, error)]
        executor.shutdown(wait=True)
    finally:
        loop.close()


async def test_a_coroutine_run_cancelled_before_it_started_is_reported() -> None:
    host = Host(asyncio.get_running_loop())
    executor = started(AsyncIOExecutor(), host)
    executor.send_task(task(jobs.async_add, 1, 2), [T0])
    assert isinstance(executor, AsyncIOExecutor)
    (run,) = executor._pending.values()
    run.cancel()  # before its first step: none of its code ever runs
    await until_idle(executor)
    (event,) = host.events
    assert event.code == TASK_ERROR
    assert isinstance(event.exception, asyncio.CancelledError)
    await asyncio.wait_for(executor.shutdown_async(wait=True), 5)
    assert executor._pending == {}
    assert executor._unstarted == {}


async def test_every_coroutine_run_cancelled_at_any_point_is_reported_once() -> None:
    host = Host(asyncio.get_running_loop())
    executor = started(AsyncIOExecutor(), host)
    assert isinstance(executor, AsyncIOExecutor)
    for index in range(60):
        executor.send_task(task(jobs.async_sleep_then_return, 0.01, "x", id=f"t{index}"), [T0])
    for step, run in enumerate(list(executor._pending.values())):
        if step % 3 == 0:
            run.cancel()
        if step % 10 == 0:
            await asyncio.sleep(0)  # some get to start first
    await until_idle(executor)
    assert sorted(e.task_id for e in host.events) == sorted(f"t{index}" for index in range(60))
    assert {e.code for e in host.events[:20]} == {TASK_ERROR}
    await asyncio.wait_for(executor.shutdown_async(wait=True), 5)
    assert executor._pending == {}
    assert executor._unstarted == {}


async def test_a_cancelled_run_reports_the_cancel_message() -> None:
    host = Host(asyncio.get_running_loop())
    executor = started(AsyncIOExecutor(), host)
    assert isinstance(executor, AsyncIOExecutor)
    executor.send_task(task(jobs.async_sleep_then_return, 5, "x", id="told"), [T0])
    executor.send_task(task(jobs.async_sleep_then_return, 5, "x", id="silent"), [T0])
    await asyncio.sleep(0.01)  # both started
    told, silent = executor._pending.values()
    told.cancel("the deploy is over")
    silent.cancel()
    await until_reported(host, 2)
    messages = {e.task_id: str(e.exception) for e in host.events}
    assert messages == {"told": "the deploy is over", "silent": "run cancelled"}
    assert all(isinstance(e.exception, asyncio.CancelledError) for e in host.events)


async def test_a_coroutine_sent_from_another_thread_that_cannot_start_is_reported() -> None:
    loop = asyncio.get_running_loop()

    def broken_factory(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> Any:
        raise RuntimeError("factory broken on purpose")

    host = Host(loop)
    executor = started(AsyncIOExecutor(), host)
    loop.set_task_factory(broken_factory)  # type: ignore[arg-type]
    try:
        await asyncio.to_thread(executor.send_task, task(jobs.async_add, 1, 2), [T0])
        await until_idle(executor)
    finally:
        loop.set_task_factory(None)
    (event,) = host.events
    assert event.code == TASK_ERROR
    assert "factory broken on purpose" in str(event.exception)
    await executor.shutdown_async()


async def test_a_custom_task_factory_makes_the_runs_task() -> None:
    loop = asyncio.get_running_loop()
    made: list[asyncio.Task[Any]] = []
    seen: list[asyncio.Task[Any] | None] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> Any:
        made.append(asyncio.Task(coro, loop=loop, name="made-by-factory"))
        return made[-1]

    async def body() -> None:
        seen.append(asyncio.current_task())

    host = Host(loop)
    executor = started(AsyncIOExecutor(), host)
    loop.set_task_factory(factory)  # type: ignore[arg-type]
    try:
        executor.send_task(task(body), [T0])
        await asyncio.to_thread(executor.send_task, task(body, id="u"), [T0])
        await until_idle(executor)
    finally:
        loop.set_task_factory(None)
    await executor.shutdown_async()
    assert len(made) == 2
    assert set(seen) == set(made)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks arrived in 3.12")
@pytest.mark.parametrize("suspends", [False, True])
async def test_an_eager_task_factory_runs_are_finished_once(suspends: bool) -> None:
    loop = asyncio.get_running_loop()

    async def body() -> str:
        if suspends:
            await asyncio.sleep(0.01)
        return "eager"

    host = Host(loop)
    executor = started(AsyncIOExecutor(), host)
    assert isinstance(executor, AsyncIOExecutor)
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
    try:
        for index in range(10):
            executor.send_task(task(body, id=f"t{index}"), [T0])
        await until_idle(executor)
    finally:
        loop.set_task_factory(None)
    await executor.shutdown_async()
    assert len(host.events) == 10
    assert executor._pending == {}
    assert executor._unstarted == {}


VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


async def test_a_coroutine_run_gets_a_copy_of_the_senders_context() -> None:
    seen: list[str] = []

    async def body() -> None:
        seen.append(VAR.get())
        VAR.set("changed by the run")

    host = Host(asyncio.get_running_loop())
    executor = started(AsyncIOExecutor(), host)
    token = VAR.set("from the loop")
    try:
        executor.send_task(task(body), [T0])
        await until_idle(executor)

        def send_from_a_thread() -> None:
            VAR.set("from a thread")
            executor.send_task(task(body), [T0])

        await asyncio.to_thread(contextvars.copy_context().run, send_from_a_thread)
        await until_idle(executor)
        assert VAR.get() == "from the loop"  # the run's change stayed in the run
    finally:
        VAR.reset(token)
    await executor.shutdown_async()
    assert seen == ["from the loop", "from a thread"]


# -- listeners ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["asyncio", "threadpool"])
@pytest.mark.parametrize("fn", [jobs.sleep_then_return, jobs.async_sleep_then_return])
async def test_a_raising_listener_does_not_keep_the_slot(kind: str, fn: Any) -> None:
    host = Host(asyncio.get_running_loop())
    executor = started(AsyncIOExecutor() if kind == "asyncio" else ThreadPoolExecutor(), host)
    host.raise_on_dispatch = True
    executor.send_task(task(fn, 0, "first"), [T0])
    await until_reported(host, 1)
    await until_idle(executor)
    host.raise_on_dispatch = False
    executor.send_task(task(fn, 0, "second"), [T0])  # same task: its slot is free
    await until_reported(host, 2)
    await executor.shutdown_async()
    assert [e.return_value for e in host.events] == ["first", "second"]


# -- shutdown ----------------------------------------------------------------------------

KINDS = ["asyncio", "threadpool", "processpool", "debug"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fn", [jobs.add, jobs.async_add])
async def test_sending_after_shutdown_raises_and_holds_no_slot(kind: str, fn: Any) -> None:
    host = Host(asyncio.get_running_loop())
    executor = started(make(kind), host)
    await executor.shutdown_async(wait=True)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.send_task(task(fn, 1, 2), [T0])
    with pytest.raises(RuntimeError, match="after shutdown"):
        await asyncio.to_thread(executor.send_task, task(fn, 1, 2), [T0])
    assert executor.active_instances("t") == 0
    assert host.events == []
    started(executor, host)  # a restart accepts runs again
    executor.send_task(task(fn, 1, 2), [T0])
    await until_idle(executor)
    await executor.shutdown_async()
    assert [e.return_value for e in host.events] == [3]


@pytest.mark.parametrize("kind", ["asyncio", "threadpool"])
async def test_shutdown_with_wait_runs_the_queued_runs_too(kind: str) -> None:
    host = Host(asyncio.get_running_loop())
    executor = started(AsyncIOExecutor(1) if kind == "asyncio" else ThreadPoolExecutor(1), host)
    for index in range(5):  # one thread: four of them wait in the queue
        executor.send_task(task(jobs.sleep_then_return, 0.05, index, id=f"t{index}"), [T0])
    await executor.shutdown_async(wait=True)
    assert sorted(e.return_value for e in host.events) == [0, 1, 2, 3, 4]


async def test_shutdown_with_wait_waits_for_coroutines_sent_from_other_threads() -> None:
    host = Host(asyncio.get_running_loop())
    executor = started(AsyncIOExecutor(), host)

    def send_many() -> None:
        for index in range(50):
            executor.send_task(
                task(jobs.async_sleep_then_return, 0.02, index, id=f"t{index}"), [T0]
            )

    sender = threading.Thread(target=send_many)
    sender.start()
    sender.join()  # all accepted; their launches wait in the loop's queue
    await executor.shutdown_async(wait=True)
    assert sorted(e.return_value for e in host.events) == list(range(50))


async def test_shutdown_without_wait_returns_at_once_and_runs_still_finish() -> None:
    host = Host(asyncio.get_running_loop())
    executor = started(ThreadPoolExecutor(1), host)
    for index in range(3):
        executor.send_task(task(jobs.sleep_then_return, 0.1, index, id=f"t{index}"), [T0])
    began = time.monotonic()
    await asyncio.to_thread(executor.shutdown, False)
    assert time.monotonic() - began < 0.1
    await until_idle(executor)
    assert sorted(e.return_value for e in host.events) == [0, 1, 2]


def test_shutdown_after_the_loop_closed_still_stops_the_threads() -> None:
    loop = asyncio.new_event_loop()
    host = Host(loop)
    executor = started(AsyncIOExecutor(), host)
    assert isinstance(executor, AsyncIOExecutor)
    executor.send_task(task(jobs.add, 1, 2), [T0])
    assert executor.wait_until_idle(5)
    loop.close()
    executor.shutdown(wait=True)
    assert executor._threads is not None
    assert [thread.is_alive() for thread in executor._threads._threads] == [False]


def test_a_shutdown_waiting_from_another_thread_returns_when_the_loop_stops() -> None:
    # The loop may stop while another thread waits for the runs on it (or even before
    # the waiting coroutine got to start); waiting on regardless blocked forever.
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    loop_thread = threading.Thread(target=lambda: (ready.set(), loop.run_forever()))
    loop_thread.start()
    ready.wait(5)
    host = Host(loop, loop_thread=loop_thread.ident)
    executor = started(AsyncIOExecutor(), host)
    try:
        sent = asyncio.run_coroutine_threadsafe(
            _send_from_loop(executor, task(jobs.async_sleep_then_return, 1.0, "late")), loop
        )
        sent.result(5)
        returned = threading.Event()
        waiter = threading.Thread(
            target=lambda: (executor.shutdown(True), returned.set()), daemon=True
        )
        waiter.start()
        assert not returned.wait(0.2)  # waiting for the run, as it should
        loop.call_soon_threadsafe(loop.stop)
        loop_thread.join(5)
        assert returned.wait(2), "shutdown(wait=True) still waits for a stopped loop"
        waiter.join(5)
        assert executor._threads is not None
        assert not any(thread.is_alive() for thread in executor._threads._threads)
    finally:
        # Let what was left on the loop end, then close it without warnings.
        loop.run_until_complete(asyncio.sleep(1.1))
        loop.close()


async def _send_from_loop(executor: BaseExecutor, run: Task) -> None:
    executor.send_task(run, [T0])


# -- threads, memory ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["asyncio", "threadpool"])
async def test_worker_threads_are_named_after_the_executor(kind: str) -> None:
    names: list[str] = []
    host = Host(asyncio.get_running_loop())
    executor = AsyncIOExecutor() if kind == "asyncio" else ThreadPoolExecutor()
    executor.start(host, "reports")  # type: ignore[arg-type]
    executor.send_task(task(lambda: names.append(threading.current_thread().name)), [T0])
    await until_idle(executor)
    await executor.shutdown_async()
    assert names == ["tickwork-reports_0"]


class Payload:
    """An argument whose lifetime is watched."""


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Only reference counting frees objects: a reference cycle keeps them alive."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def hold(payload: Payload) -> Payload:
    return payload


async def async_hold(payload: Payload) -> Payload:
    await asyncio.sleep(0)
    return payload


@pytest.mark.parametrize("kind", ["asyncio", "threadpool"])
@pytest.mark.parametrize("fn", [hold, async_hold])
@pytest.mark.parametrize("listening", [False, True])
@pytest.mark.usefixtures("no_gc")
async def test_finished_runs_are_not_kept_alive(kind: str, fn: Any, listening: bool) -> None:
    host = Host(asyncio.get_running_loop())
    executor = started(AsyncIOExecutor() if kind == "asyncio" else ThreadPoolExecutor(), host)
    if not listening:
        executor._wants = lambda code: False  # no TASK_EXECUTED event holds the result
    refs = []
    for index in range(500):
        payload = Payload()
        refs.append(weakref.ref(payload))
        executor.send_task(task(fn, payload, id=f"t{index}"), [T0])
        del payload
    await until_idle(executor)
    await executor.shutdown_async()
    if listening:
        assert len(host.events) == 500
        host.events.clear()
    assert [ref for ref in refs if ref() is not None] == []
    if isinstance(executor, AsyncIOExecutor):
        assert executor._pending == {}
        assert executor._unstarted == {}
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_gets_a_working_executor_with_free_slots() -> None:
    # In a subprocess: forking this (multi-threaded) test process is not safe.
    script = textwrap.dedent(
        """
        import os, threading
        from datetime import UTC, datetime
        from tickwork.executors import ThreadPoolExecutor
        from tickwork.tasks import Task
        from tickwork.triggers import DateTrigger

        class Host:
            events = []
            def wants(self, code):
                return True

            def emit(self, event):
                self.events.append(event)

        T0 = datetime(2026, 1, 1, tzinfo=UTC)
        gate = threading.Event()
        executor = ThreadPoolExecutor(1)
        executor.start(Host(), "default")
        executor.send_task(Task(gate.wait, DateTrigger(T0), id="t", max_instances=1), [T0])
        pid = os.fork()
        if pid == 0:
            free = executor.active_instances("t") == 0  # the parent's run isn't here
            ran = threading.Event()
            executor.send_task(Task(ran.set, DateTrigger(T0), id="t", max_instances=1), [T0])
            ok = free and ran.wait(5) and executor.wait_until_idle(5)
            executor.shutdown(wait=True)
            os._exit(0 if ok else 1)
        gate.set()
        _, status = os.waitpid(pid, 0)
        executor.shutdown(wait=True)
        print("child", os.waitstatus_to_exitcode(status), "parent", len(Host.events))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "child 0 parent 1"


# -- the one-run path of AsyncIOExecutor (await_per_run inline) ------------------------


def outcome(event: Any) -> tuple[Any, ...]:
    exc = event.exception
    return (
        event.code,
        event.return_value,
        None if exc is None else (type(exc), str(exc)),
        event.duration is not None,
    )


@pytest.mark.parametrize(
    ("fn", "args"),
    [(jobs.async_add, (1, 2)), (jobs.async_fail, ("broken on purpose",))],
    ids=["returns", "raises"],
)
async def test_one_run_reports_what_a_run_among_several_reports(fn: Any, args: Any) -> None:
    # One run time without a timeout takes a shorter path than several (see
    # AsyncIOExecutor._run_coroutine): the same events.
    host = Host(asyncio.get_running_loop())
    executor = started(AsyncIOExecutor(), host)
    executor.send_task(task(fn, *args, id="one"), [T0])
    executor.send_task(task(fn, *args, id="two"), [T0, T0 + timedelta(seconds=1)])
    await until_reported(host, 3)
    one = [outcome(e) for e in host.events if e.task_id == "one"]
    two = [outcome(e) for e in host.events if e.task_id == "two"]
    assert one == two[:1] == two[1:]
    assert executor.active_instances("one") == executor.active_instances("two") == 0
    await asyncio.wait_for(executor.shutdown_async(wait=True), 5)
