"""ArqExecutor against a real Redis and a real ``arq`` worker subprocess."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from arq_support import arq_url, arq_worker, clean, new_queue
from executor_host import T0, Host, task

from tickwork.events import TASK_ERROR, TASK_EXECUTED, TASK_TIMEOUT, TaskExecutionEvent
from tickwork.exceptions import ArqRunLostError, ConfigurationError, InvalidTaskError
from tickwork.executors.arq import ArqExecutor, run_key
from tickwork.schedulers.background import BackgroundScheduler

pytestmark = [pytest.mark.external_service("redis")]


@pytest.fixture(scope="module")
def worker_queue() -> Iterator[str]:
    """A queue of this module's own with one real worker consuming it."""
    name = new_queue()
    with arq_worker(name):
        yield name
    clean(name)


class Outcomes:
    """The run events of a scheduler, waited for one by one."""

    def __init__(self) -> None:
        self.events: queue.SimpleQueue[TaskExecutionEvent] = queue.SimpleQueue()

    def __call__(self, event: Any) -> None:
        self.events.put(event)

    def next(self, timeout: float = 20.0) -> TaskExecutionEvent:
        return self.events.get(timeout=timeout)


@pytest.fixture
def scheduler(worker_queue: str) -> Iterator[tuple[BackgroundScheduler, Outcomes]]:
    outcomes = Outcomes()
    sched = BackgroundScheduler(
        executors={
            "default": {
                "type": "arq",
                "redis": arq_url(),
                "queue_name": worker_queue,
                "poll_interval": 0.1,
            }
        }
    )
    sched.add_listener(outcomes, TASK_EXECUTED | TASK_ERROR | TASK_TIMEOUT)
    sched.start()
    try:
        yield sched, outcomes
    finally:
        sched.shutdown()


def test_a_run_is_executed_by_a_worker_and_its_result_comes_back(
    scheduler: tuple[BackgroundScheduler, Outcomes],
) -> None:
    sched, outcomes = scheduler
    task_ = sched.add_task("arq_jobs:add", "date", args=[2, 3], id="add")
    event = outcomes.next()
    assert (event.code, event.task_id, event.return_value) == (TASK_EXECUTED, task_.id, 5)


def test_the_worker_sees_the_runs_key_as_its_arq_job_id(
    scheduler: tuple[BackgroundScheduler, Outcomes],
) -> None:
    sched, outcomes = scheduler
    sched.add_task("arq_jobs:key", "date", id="keyed")
    event = outcomes.next()
    assert event.code == TASK_EXECUTED
    assert event.return_value == run_key("keyed", event.scheduled_run_time)
    assert event.return_value.endswith("+00:00")


def test_a_coroutine_function_runs_in_the_worker(
    scheduler: tuple[BackgroundScheduler, Outcomes],
) -> None:
    sched, outcomes = scheduler
    sched.add_task("arq_jobs:async_add", "date", args=[20, 22], id="async")
    assert outcomes.next().return_value == 42


def test_a_failing_run_is_a_task_error_with_the_workers_exception(
    scheduler: tuple[BackgroundScheduler, Outcomes],
) -> None:
    sched, outcomes = scheduler
    sched.add_task("arq_jobs:boom", "date", args=["no luck"], id="boom")
    event = outcomes.next()
    assert event.code == TASK_ERROR
    assert isinstance(event.exception, ValueError)
    assert "no luck" in str(event.exception)
    assert event.traceback is not None
    assert "ValueError" in event.traceback


def test_a_run_past_its_timeout_is_a_task_timeout(
    scheduler: tuple[BackgroundScheduler, Outcomes],
) -> None:
    sched, outcomes = scheduler
    sched.add_task("arq_jobs:sleep", "date", args=[3.0], id="slow", timeout=0.3)
    event = outcomes.next()
    assert event.code == TASK_TIMEOUT
    assert isinstance(event.exception, TimeoutError)


def test_arguments_pickle_cannot_encode_are_refused_at_add_task(
    scheduler: tuple[BackgroundScheduler, Outcomes],
) -> None:
    sched, _ = scheduler
    with pytest.raises(InvalidTaskError, match=r"'unsendable'.*pickle"):
        sched.add_task("arq_jobs:add", "date", args=[threading.Lock(), 1], id="unsendable")
    assert sched.get_task("unsendable") is None


def test_tickwork_retries_are_refused(scheduler: tuple[BackgroundScheduler, Outcomes]) -> None:
    sched, _ = scheduler
    with pytest.raises(InvalidTaskError, match=r"retries=2 .*ArqExecutor"):
        sched.add_task("arq_jobs:add", "date", args=[1, 1], id="retried", retries=2)


def test_a_bad_redis_url_is_refused_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="'nowhere'"):
        ArqExecutor("nowhere")


def test_a_redis_that_does_not_answer_keeps_the_run_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing listens on port 1: every enqueue fails, is logged with the address, and the
    run stays (no outcome, its instance held) while the executor retries."""
    executor = ArqExecutor("redis://127.0.0.1:1/6", queue_name="nowhere")
    outcomes = Outcomes()
    sched = BackgroundScheduler(executors={"default": executor})
    sched.add_listener(outcomes, TASK_EXECUTED | TASK_ERROR)
    sched.start()
    try:
        sched.add_task("arq_jobs:add", "date", args=[1, 2], id="waiting")
        for _ in range(100):
            if "cannot reach Redis at 127.0.0.1:1/6 (queue 'nowhere')" in caplog.text:
                break
            threading.Event().wait(0.1)
        assert "cannot reach Redis at 127.0.0.1:1/6 (queue 'nowhere')" in caplog.text
        assert "kept and enqueued when it answers" in caplog.text
        assert executor.active_instances("waiting") == 1
        assert outcomes.events.empty()
    finally:
        sched.shutdown(wait=False)


def _slot(name: str) -> datetime:
    """A slot of this test's own (the queue name's random part as seconds)."""
    return T0 + timedelta(seconds=int(name[-6:], 16))


def _wait(condition: Any, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        threading.Event().wait(0.05)


def test_a_run_taken_over_is_refused_by_arq_and_followed_under_its_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two executors (two schedulers) hand over the same slot, as a scheduler does when it
    takes over a dead one's run: arq holds one job, and both see its outcome."""
    caplog.set_level(logging.INFO, logger="tickwork.executors.ArqExecutor")
    name = new_queue()
    hosts = [Host(asyncio.new_event_loop()) for _ in range(2)]
    executors = [ArqExecutor(arq_url(), queue_name=name, poll_interval=0.1) for _ in hosts]
    for index, (executor, host) in enumerate(zip(executors, hosts, strict=True)):
        executor.start(host, f"arq{index}")
    slot = _slot(name)
    client = redis.Redis.from_url(arq_url())
    try:
        executors[0].send_task(task("arq_jobs:add", 4, 5, id="taken"), [slot])
        _wait(lambda: executors[0]._followed)
        executors[1].send_task(task("arq_jobs:add", 4, 5, id="taken"), [slot])
        _wait(lambda: "is already in arq" in caplog.text)
        assert f"run {run_key('taken', slot)} is already in arq" in caplog.text
        assert client.zcard(name) == 1
        with arq_worker(name):
            _wait(lambda: all(host.events for host in hosts))
        assert [h.events[0].return_value for h in hosts] == [9, 9]
        # After the run, its kept result still refuses the slot (a late take-over).
        executors[1].send_task(task("arq_jobs:add", 4, 5, id="taken"), [slot])
        _wait(lambda: caplog.text.count("is already in arq") == 2)
        assert caplog.text.count("is already in arq") == 2
        assert client.zcard(name) == 0
        _wait(lambda: len(hosts[1].events) == 2)
        assert hosts[1].events[1].return_value == 9
    finally:
        for executor, host in zip(executors, hosts, strict=True):
            executor.shutdown(wait=False)
            host.event_loop.close()
        client.delete(f"arq:result:{run_key('taken', slot)}")
        client.close()
        clean(name)


def test_a_job_gone_from_redis_is_reported_lost() -> None:
    """A job removed from Redis (what a Redis restart does to a non-persistent server)
    ends its run TASK_ERROR with ArqRunLostError instead of holding it forever."""
    name = new_queue()
    host = Host(asyncio.new_event_loop())
    executor = ArqExecutor(arq_url(), queue_name=name, poll_interval=0.1)
    executor.start(host, "arq")
    slot = _slot(name)
    client = redis.Redis.from_url(arq_url())
    try:
        executor.send_task(task("arq_jobs:add", 1, 1, id="lost"), [slot])
        _wait(lambda: client.zcard(name) == 1)
        assert client.zcard(name) == 1
        client.delete(name, f"arq:job:{run_key('lost', slot)}")  # no worker ever ran it
        _wait(lambda: host.events)
        [event] = host.events
        assert event.code == TASK_ERROR
        assert isinstance(event.exception, ArqRunLostError)
        assert run_key("lost", slot) in str(event.exception)
        assert executor.active_instances("lost") == 0
    finally:
        executor.shutdown(wait=False)
        host.event_loop.close()
        client.close()
        clean(name)


def test_importing_the_executor_without_arq_names_the_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['arq'] = None\n"
        "try:\n"
        "    import tickwork.executors.arq\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("MissingDependencyError")
    assert "pip install 'tickwork[arq]'" in out.stdout


def test_the_run_key_is_the_scheduled_time_in_utc() -> None:
    when = datetime(2026, 3, 29, 3, 30, tzinfo=UTC)
    assert run_key("t", when) == "t@2026-03-29T03:30:00+00:00"


@pytest.mark.slow
def test_a_job_whose_worker_died_is_run_again_by_another_and_said(tmp_path: Any) -> None:
    """arq is at-least-once on the worker side: a worker SIGKILLed mid-run leaves its job,
    which another worker runs again (try 2) once the dead one's claim expires
    (job_timeout + 10 s); tickwork.run says so, and the run's one outcome comes back."""
    import signal

    name = new_queue()
    host = Host(asyncio.new_event_loop())
    executor = ArqExecutor(arq_url(), queue_name=name, poll_interval=0.1)
    executor.start(host, "arq")
    slot = _slot(name)
    key = run_key("rerun", slot)
    client = redis.Redis.from_url(arq_url())
    log = tmp_path / "second.log"
    try:
        with arq_worker(name, job_timeout=3.0) as first:
            executor.send_task(task("arq_jobs:sleep", 2.0, id="rerun"), [slot])
            _wait(lambda: client.exists(f"arq:in-progress:{key}"))
            assert client.exists(f"arq:in-progress:{key}")
            first.send_signal(signal.SIGKILL)
            first.wait()
        with arq_worker(name, log, job_timeout=3.0):
            _wait(lambda: host.events, timeout=40.0)
        [event] = host.events
        assert event.code == TASK_EXECUTED
        assert f"run {key} started again (try 2)" in log.read_text()
    finally:
        executor.shutdown(wait=False)
        host.event_loop.close()
        client.delete(f"arq:result:{key}")
        client.close()
        clean(name)
