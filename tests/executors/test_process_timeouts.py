"""The process pool stops single runs: a run past its timeout, or cancelled, has its
worker process terminated and replaced; a worker that dies on its own fails only its own
instance. The other workers and their runs are never touched."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import executor_jobs as jobs
import pytest
from executor_host import T0, Host

from tickwork.events import (
    TASK_CANCELLED,
    TASK_ERROR,
    TASK_EXECUTED,
    TASK_TIMEOUT,
)
from tickwork.exceptions import RunCancelledError, RunTimeoutError
from tickwork.executors import ProcessPoolExecutor
from tickwork.tasks import Task
from tickwork.triggers import DateTrigger

T1 = T0 + timedelta(seconds=1)
T2 = T0 + timedelta(seconds=2)

# -- task functions (module level: the workers import them by name) -------------------


def pid() -> int:
    return os.getpid()


def hang() -> None:
    time.sleep(60)


def hang_once(flag: str) -> int:
    """Hang on the first call (it leaves ``flag``), return the pid on the next ones."""
    if not os.path.exists(flag):
        Path(flag).touch()
        time.sleep(60)
    return os.getpid()


def exit_hard(code: int) -> None:
    os._exit(code)


def return_unpicklable() -> Any:
    return lambda: None


def ignore_sigterm_and_hang(directory: str) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    write_pid_and_hang(directory)


# -- helpers ---------------------------------------------------------------------------


def timed(fn: Callable[..., Any], *args: Any, id: str = "t", timeout: float | None = None) -> Task:
    return Task(fn, DateTrigger(T0), args=args, id=id, max_instances=3, timeout=timeout)


@pytest.fixture
async def pool() -> AsyncIterator[tuple[ProcessPoolExecutor, Host]]:
    host = Host(asyncio.get_running_loop())
    executor = ProcessPoolExecutor(max_workers=2)
    executor.start(host, "default")  # type: ignore[arg-type]
    yield executor, host
    executor.cancel_active("test over")
    await executor.shutdown_async(wait=True)


async def events_of(host: Host, task_id: str, count: int, within: float = 10) -> list[Any]:
    """The first ``count`` events of ``task_id``, waited for up to ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        found = [e for e in host.events if e.task_id == task_id]
        if len(found) >= count:
            return found[:count]
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} events of {task_id!r}, got {host.events}")
        await asyncio.sleep(0.005)


def pool_processes() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name.startswith("tickwork-")]


async def no_pool_processes(within: float = 5) -> bool:
    deadline = time.monotonic() + within
    while pool_processes():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def alive(process_id: int) -> bool:
    """Whether the process exists (a zombie, ended but not reaped, counts)."""
    try:
        os.kill(process_id, 0)
    except ProcessLookupError:
        return False
    return True


async def gone(process_id: int, within: float = 3) -> bool:
    deadline = time.monotonic() + within
    while alive(process_id):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


# -- timeouts --------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_hung_run_times_out_its_worker_is_replaced_and_the_other_run_goes_on(
    pool: tuple[ProcessPoolExecutor, Host], tmp_path: Path
) -> None:
    executor, host = pool
    executor.send_task(timed(jobs.sleep_then_return, 1.2, "other", id="other"), [T0])
    began = time.monotonic()
    executor.send_task(timed(write_pid_and_hang, str(tmp_path), id="hung", timeout=0.5), [T0])
    (event,) = await events_of(host, "hung", 1)
    took = time.monotonic() - began
    assert event.code == TASK_TIMEOUT
    assert isinstance(event.exception, RunTimeoutError)
    assert (event.exception.task_id, event.exception.timeout) == ("hung", 0.5)
    assert "went past its timeout of 0.5 s" in (event.traceback or "")
    assert 0.5 <= event.duration < 1.0
    assert took < 1.5, f"reported after {took:.2f} s"
    assert executor.active_instances("hung") == 0  # its max_instances slot is free
    hung_worker = int((tmp_path / "pid").read_text())
    assert await gone(hung_worker)
    # the run in the other worker was not touched
    (other,) = await events_of(host, "other", 1)
    assert (other.code, other.return_value) == (TASK_EXECUTED, "other")
    # a new worker took the hung one's place, and runs work
    executor.send_task(timed(pid, id="after"), [T0])
    (after,) = await events_of(host, "after", 1)
    assert after.code == TASK_EXECUTED
    assert after.return_value != hung_worker
    assert len(pool_processes()) == 2


@pytest.mark.slow
async def test_each_run_time_of_an_instance_has_its_own_timeout(
    pool: tuple[ProcessPoolExecutor, Host], tmp_path: Path
) -> None:
    executor, host = pool
    flag = str(tmp_path / "hung-once")
    executor.send_task(timed(hang_once, flag, id="t", timeout=0.5), [T0, T1, T2])
    events = await events_of(host, "t", 3)
    assert [(e.code, e.scheduled_run_time) for e in events] == [
        (TASK_TIMEOUT, T0),
        (TASK_EXECUTED, T1),
        (TASK_EXECUTED, T2),
    ]
    # the later runs ran on the same (new) worker, within their own limit
    assert events[1].return_value == events[2].return_value
    assert events[1].duration < 0.5


async def test_runs_within_their_timeout_leave_the_worker_alone(
    pool: tuple[ProcessPoolExecutor, Host], caplog: pytest.LogCaptureFixture
) -> None:
    executor, host = pool
    executor.send_task(timed(pid, id="t", timeout=5), [T0, T1, T2])
    events = await events_of(host, "t", 3)
    assert {e.code for e in events} == {TASK_EXECUTED}
    assert len({e.return_value for e in events}) == 1  # one instance, one worker
    assert "terminated worker process" not in caplog.text
    assert all(p.is_alive() for p in pool_processes())


@pytest.mark.slow
async def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace_period(
    pool: tuple[ProcessPoolExecutor, Host], tmp_path: Path
) -> None:
    executor, host = pool
    task = timed(ignore_sigterm_and_hang, str(tmp_path), id="stubborn", timeout=0.3)
    executor.send_task(task, [T0])
    (event,) = await events_of(host, "stubborn", 1)
    assert event.code == TASK_TIMEOUT
    stubborn = int((tmp_path / "pid").read_text())
    await asyncio.sleep(0.5)
    assert alive(stubborn)  # SIGTERM did nothing ...
    assert await gone(stubborn)  # ... SIGKILL did, after the grace period (1 s)
    executor.send_task(timed(jobs.add, 1, 2, id="after"), [T0])
    (after,) = await events_of(host, "after", 1)
    assert after.return_value == 3


# -- cancel ----------------------------------------------------------------------------


async def test_cancel_run_terminates_the_worker_of_a_running_run(
    pool: tuple[ProcessPoolExecutor, Host],
) -> None:
    executor, host = pool
    executor.send_task(timed(jobs.sleep_then_return, 0.8, "other", id="other"), [T0])
    executor.send_task(timed(hang, id="t"), [T0])
    await asyncio.sleep(0.2)
    assert executor.cancel_run("t", T1, "not that one") == 0  # no run of it at T1
    assert executor.cancel_run("t", T0, "no longer wanted") == 1
    (event,) = await events_of(host, "t", 1, within=1)
    assert event.code == TASK_CANCELLED
    assert isinstance(event.exception, RunCancelledError)
    assert str(event.exception) == "no longer wanted"
    assert 0.1 <= event.duration < 1  # (counted from when its worker got it)
    assert executor.active_instances("t") == 0
    assert executor.cancel_run("t", None, "again") == 0  # nothing left to cancel
    (other,) = await events_of(host, "other", 1)
    assert (other.code, other.return_value) == (TASK_EXECUTED, "other")
    executor.send_task(timed(jobs.add, 2, 2, id="after"), [T0])
    (after,) = await events_of(host, "after", 1)
    assert after.return_value == 4


async def test_cancel_run_drops_a_queued_instance_without_touching_the_workers(
    pool: tuple[ProcessPoolExecutor, Host],
) -> None:
    executor, host = pool
    executor.send_task(timed(jobs.sleep_then_return, 0.5, "a", id="a"), [T0])
    executor.send_task(timed(jobs.sleep_then_return, 0.5, "b", id="b"), [T0])
    executor.send_task(timed(jobs.add, 1, 1, id="queued"), [T0, T1])  # no worker free
    assert executor.cancel_run("queued", None, "changed my mind") == 1
    events = await events_of(host, "queued", 2, within=1)
    assert [(e.code, e.scheduled_run_time, e.duration) for e in events] == [
        (TASK_CANCELLED, T0, None),
        (TASK_CANCELLED, T1, None),
    ]
    assert executor.active_instances("queued") == 0
    a, b = await events_of(host, "a", 1), await events_of(host, "b", 1)
    assert (a[0].return_value, b[0].return_value) == ("a", "b")


async def test_cancel_active_terminates_every_busy_worker(
    pool: tuple[ProcessPoolExecutor, Host],
) -> None:
    executor, host = pool
    executor.send_task(timed(hang, id="x"), [T0])
    executor.send_task(timed(hang, id="y"), [T0])
    executor.send_task(timed(hang, id="z"), [T0])  # queued
    await asyncio.sleep(0.1)
    executor.cancel_active("shutdown timed out")
    events = [(await events_of(host, name, 1, within=1))[0] for name in "xyz"]
    assert {e.code for e in events} == {TASK_CANCELLED}
    assert executor.active_task_ids() == []


# -- workers that die on their own -----------------------------------------------------


@pytest.mark.parametrize("fn", [exit_hard, jobs.kill_own_process], ids=["os._exit", "SIGKILL"])
async def test_a_dead_worker_fails_its_own_instance_only(
    pool: tuple[ProcessPoolExecutor, Host], fn: Callable[..., Any]
) -> None:
    executor, host = pool
    executor.send_task(timed(jobs.sleep_then_return, 0.6, "other", id="other"), [T0])
    args = (3,) if fn is exit_hard else ()
    executor.send_task(timed(fn, *args, id="dies"), [T0, T1])
    events = await events_of(host, "dies", 2)
    assert {e.code for e in events} == {TASK_ERROR}
    assert f"(exit code {3 if fn is exit_hard else -9})" in str(events[0].exception)
    (other,) = await events_of(host, "other", 1)
    assert (other.code, other.return_value) == (TASK_EXECUTED, "other")
    executor.send_task(timed(jobs.add, 20, 22, id="after"), [T0])
    (after,) = await events_of(host, "after", 1)
    assert after.return_value == 42


async def test_what_cannot_be_pickled_fails_the_run_not_the_pool(
    pool: tuple[ProcessPoolExecutor, Host],
) -> None:
    executor, host = pool
    executor.send_task(timed(jobs.add, lambda: 1, 2, id="in"), [T0])
    (sent,) = await events_of(host, "in", 1)
    assert sent.code == TASK_ERROR
    executor.send_task(timed(return_unpicklable, id="out"), [T0])
    (back,) = await events_of(host, "out", 1)
    assert back.code == TASK_ERROR
    assert "cannot be sent back from the worker process" in str(back.exception)
    executor.send_task(timed(jobs.add, 1, 2, id="after"), [T0])
    (after,) = await events_of(host, "after", 1)
    assert after.return_value == 3


# -- shutdown --------------------------------------------------------------------------


async def test_shutdown_without_wait_returns_at_once_and_cancel_leaves_no_process() -> None:
    host = Host(asyncio.get_running_loop())
    executor = ProcessPoolExecutor(max_workers=2)
    executor.start(host, "default")  # type: ignore[arg-type]
    executor.send_task(timed(hang, id="hung"), [T0])
    await asyncio.sleep(0.1)
    began = time.monotonic()
    executor.shutdown(wait=False)
    assert time.monotonic() - began < 0.2
    executor.cancel_active("stop it")
    (event,) = await events_of(host, "hung", 1)
    assert event.code == TASK_CANCELLED
    assert await no_pool_processes()


async def test_shutdown_with_wait_after_a_timeout_leaves_no_process() -> None:
    host = Host(asyncio.get_running_loop())
    executor = ProcessPoolExecutor(max_workers=2)
    executor.start(host, "default")  # type: ignore[arg-type]
    executor.send_task(timed(hang, id="hung", timeout=0.3), [T0])
    executor.send_task(timed(jobs.add, 1, 1, id="quick"), [T0])
    await executor.shutdown_async(wait=True)
    codes = sorted(e.code for e in host.events)
    assert codes == sorted([TASK_TIMEOUT, TASK_EXECUTED])
    assert pool_processes() == []


#: The start of the scripts run in a subprocess: a host that prints or collects events.
PREAMBLE = """
import multiprocessing, os, threading, time
from datetime import UTC, datetime
from tickwork.executors import ProcessPoolExecutor
from tickwork.tasks import Task
from tickwork.triggers import DateTrigger
import executor_jobs as jobs

T0 = datetime(2026, 1, 1, tzinfo=UTC)

class Host:
    def __init__(self, verbose=False):
        self.events = []
        self.done = threading.Semaphore(0)
        self.verbose = verbose
    def wants(self, code):
        return True
    def emit(self, event):
        self.events.append(event)
        if self.verbose:
            print("event", event.code, type(event.exception).__name__, flush=True)
        self.done.release()

def once(fn, *args, id="t", **options):
    return Task(fn, DateTrigger(T0), args=args, id=id, max_instances=1, **options)
"""


def run_script(tmp_path: Path, body: str, timeout: float = 30) -> str:
    """Run ``PREAMBLE`` + ``body`` as a script file (spawned workers import the main
    module by its path) in a new interpreter; return its output."""
    directory = Path(__file__).parent
    script = tmp_path / "script.py"
    script.write_text(PREAMBLE + textwrap.dedent(body))
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=directory,
        env={**os.environ, "PYTHONPATH": str(directory)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_a_run_hanging_at_interpreter_exit_is_terminated(tmp_path: Path) -> None:
    # In a subprocess: it must exit (in seconds, not the run's 60), its worker with it.
    began = time.monotonic()
    output = run_script(
        tmp_path,
        f"""
        from test_process_timeouts import write_pid_and_hang

        executor = ProcessPoolExecutor(2)
        executor.start(Host(verbose=True), "default")
        executor.send_task(once(write_pid_and_hang, {str(tmp_path)!r}), [T0])
        time.sleep(0.5)
        began = time.monotonic()
        executor.shutdown(wait=False)
        print("returned in", round(time.monotonic() - began, 1), flush=True)
        """,
    )
    assert time.monotonic() - began < 15
    assert "returned in 0.0" in output
    assert f"event {TASK_ERROR} BrokenProcessPool" in output
    worker = int((tmp_path / "pid").read_text())
    assert not alive(worker)


def write_pid_and_hang(directory: str) -> None:
    (Path(directory) / "pid").write_text(str(os.getpid()))
    time.sleep(60)


# -- start methods ---------------------------------------------------------------------


@pytest.mark.slow
def test_timeouts_work_under_the_spawn_start_method(tmp_path: Path) -> None:
    output = run_script(
        tmp_path,
        """
        if __name__ == "__main__":
            multiprocessing.set_start_method("spawn")
            host = Host()
            executor = ProcessPoolExecutor(1)
            executor.start(host, "default")
            slow = once(jobs.sleep_then_return, 30, "x", timeout=0.5)
            executor.send_task(slow, [T0])
            executor.send_task(once(jobs.add, 1, 2, id="quick"), [T0])
            assert host.done.acquire(timeout=20) and host.done.acquire(timeout=20)
            executor.shutdown(wait=True)
            print([(e.code, e.return_value) for e in host.events])
            print(multiprocessing.active_children())
        """,
        timeout=50,
    )
    assert output.splitlines() == [f"[({TASK_TIMEOUT}, None), ({TASK_EXECUTED}, 3)]", "[]"]


# -- fork ------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_gets_a_process_pool_of_its_own(tmp_path: Path) -> None:
    # In a subprocess: forking this (multi-threaded) test process is not safe.
    output = run_script(
        tmp_path,
        """
        host = Host()
        executor = ProcessPoolExecutor(1)
        executor.start(host, "default")
        executor.send_task(once(jobs.add, 1, 2), [T0])
        assert host.done.acquire(timeout=10)  # (the parent's worker is up)
        pid = os.fork()
        if pid == 0:
            host.events.clear()
            executor.send_task(once(jobs.add, 2, 2), [T0])
            ok = host.done.acquire(timeout=10) and host.events[0].return_value == 4
            executor.shutdown(wait=True)
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        executor.send_task(once(jobs.add, 3, 3), [T0])
        assert host.done.acquire(timeout=10)
        executor.shutdown(wait=True)
        print("child", os.waitstatus_to_exitcode(status), "parent", host.events[-1].return_value)
        """,
    )
    assert output.strip() == "child 0 parent 6"
