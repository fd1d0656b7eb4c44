"""ArqExecutor against a real Redis and a real ``arq`` worker subprocess."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from arq_support import arq_url, arq_worker, clean, module_worker_queue, new_queue
from enqueue_support import Outcomes, running_run, running_scheduler, slot, started, wait_for
from executor_host import task

from tickwork.events import TASK_CANCELLED, TASK_ERROR, TASK_EXECUTED, TASK_TIMEOUT
from tickwork.exceptions import (
    ArqRunLostError,
    ConfigurationError,
    InvalidTaskError,
    RunCancelledError,
)
from tickwork.executors.arq import ArqExecutor, run_key
from tickwork.schedulers.background import BackgroundScheduler

pytestmark = [pytest.mark.external_service("redis")]


worker_queue = module_worker_queue()


@pytest.fixture
def scheduler(worker_queue: str) -> Iterator[tuple[BackgroundScheduler, Outcomes]]:
    config = {"type": "arq", "redis": arq_url(), "queue_name": worker_queue, "poll_interval": 0.1}
    with running_scheduler(config, TASK_EXECUTED | TASK_ERROR | TASK_TIMEOUT) as started_:
        yield started_


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
    codes = TASK_EXECUTED | TASK_ERROR
    with running_scheduler(executor, codes, wait=False) as (sched, outcomes):
        sched.add_task("arq_jobs:add", "date", args=[1, 2], id="waiting")
        wait_for(lambda: "cannot reach Redis at 127.0.0.1:1/6 (queue 'nowhere')" in caplog.text)
        assert "cannot reach Redis at 127.0.0.1:1/6 (queue 'nowhere')" in caplog.text
        assert "kept and enqueued when it answers" in caplog.text
        assert executor.active_instances("waiting") == 1
        assert outcomes.events.empty()


def test_a_run_taken_over_is_refused_by_arq_and_followed_under_its_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two executors (two schedulers) hand over the same slot, as a scheduler does when it
    takes over a dead one's run: arq holds one job, and both see its outcome."""
    caplog.set_level(logging.INFO, logger="tickwork.executors.ArqExecutor")
    name = new_queue()
    executors = [ArqExecutor(arq_url(), queue_name=name, poll_interval=0.1) for _ in range(2)]
    at = slot(name)
    client = redis.Redis.from_url(arq_url())
    try:
        with started(list(executors), "arq") as hosts:
            executors[0].send_task(task("arq_jobs:add", 4, 5, id="taken"), [at])
            wait_for(lambda: executors[0]._followed)
            executors[1].send_task(task("arq_jobs:add", 4, 5, id="taken"), [at])
            wait_for(lambda: "is already in arq" in caplog.text)
            assert f"run {run_key('taken', at)} is already in arq" in caplog.text
            assert client.zcard(name) == 1
            with arq_worker(name):
                wait_for(lambda: all(host.events for host in hosts))
            assert [h.events[0].return_value for h in hosts] == [9, 9]
            # After the run, its kept result still refuses the slot (a late take-over).
            executors[1].send_task(task("arq_jobs:add", 4, 5, id="taken"), [at])
            wait_for(lambda: caplog.text.count("is already in arq") == 2)
            assert caplog.text.count("is already in arq") == 2
            assert client.zcard(name) == 0
            wait_for(lambda: len(hosts[1].events) == 2)
            assert hosts[1].events[1].return_value == 9
    finally:
        client.delete(f"arq:result:{run_key('taken', at)}")
        client.close()
        clean(name)


def test_a_job_gone_from_redis_is_reported_lost() -> None:
    """A job removed from Redis (what a Redis restart does to a non-persistent server)
    ends its run TASK_ERROR with ArqRunLostError instead of holding it forever."""
    name = new_queue()
    executor = ArqExecutor(arq_url(), queue_name=name, poll_interval=0.1)
    at = slot(name)
    client = redis.Redis.from_url(arq_url())
    try:
        with started([executor], "arq") as [host]:
            executor.send_task(task("arq_jobs:add", 1, 1, id="lost"), [at])
            wait_for(lambda: client.zcard(name) == 1)
            assert client.zcard(name) == 1
            client.delete(name, f"arq:job:{run_key('lost', at)}")  # no worker ever ran it
            wait_for(lambda: host.events)
            [event] = host.events
            assert event.code == TASK_ERROR
            assert isinstance(event.exception, ArqRunLostError)
            assert run_key("lost", at) in str(event.exception)
            assert executor.active_instances("lost") == 0
    finally:
        client.close()
        clean(name)


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
    executor = ArqExecutor(arq_url(), queue_name=name, poll_interval=0.1)
    key = run_key("rerun", slot(name))
    client = redis.Redis.from_url(arq_url())
    log = tmp_path / "second.log"
    try:
        with started([executor], "arq") as [host]:
            with arq_worker(name, job_timeout=3.0) as first:
                executor.send_task(task("arq_jobs:sleep", 2.0, id="rerun"), [slot(name)])
                wait_for(lambda: client.exists(f"arq:in-progress:{key}"))
                assert client.exists(f"arq:in-progress:{key}")
                first.send_signal(signal.SIGKILL)
                first.wait()
            with arq_worker(name, log, job_timeout=3.0):
                wait_for(lambda: host.events, timeout=40.0)
            [event] = host.events
            assert event.code == TASK_EXECUTED
            assert f"run {key} started again (try 2)" in log.read_text()
    finally:
        client.delete(f"arq:result:{key}")
        client.close()
        clean(name)


def test_cancelling_a_running_job_aborts_it_and_ends_the_run_cancelled(
    scheduler: tuple[BackgroundScheduler, Outcomes],
) -> None:
    """An async def function running at a worker (allow_abort_jobs) is cancelled at its
    await; the run ends TASK_CANCELLED and its record says so."""
    sched, outcomes = scheduler
    sched.add_listener(outcomes, TASK_CANCELLED)
    sched.add_task("arq_jobs:async_sleep", "date", args=[30.0], id="aborted")
    running, key = running_run(sched, "aborted")
    client = redis.Redis.from_url(arq_url())
    try:
        wait_for(lambda: client.exists(f"arq:in-progress:{key}"))
        assert client.exists(f"arq:in-progress:{key}")
        assert sched.cancel_run(running.run_id) is True
        event = outcomes.next(10.0)
        assert event.code == TASK_CANCELLED
        assert isinstance(event.exception, RunCancelledError)
        assert running.run_id in str(event.exception)
        wait_for(lambda: sched.get_runs("aborted", outcome="cancelled"))
        assert len(sched.get_runs("aborted", outcome="cancelled")) == 1
    finally:
        client.delete(f"arq:result:{key}")
        client.close()


def test_cancelling_a_queued_job_drops_it_before_any_worker_runs_it() -> None:
    """No worker reads the queue when the run is cancelled: arq's abort mark makes the
    worker that comes later drop the job unrun."""
    name = new_queue()
    executor = ArqExecutor(arq_url(), queue_name=name, poll_interval=0.1)
    at = slot(name)
    key = run_key("dropped", at)
    client = redis.Redis.from_url(arq_url())
    try:
        with started([executor], "arq") as [host]:
            executor.send_task(
                task("arq_jobs:record", arq_url(), f"{name}:runs", id="dropped"), [at]
            )
            wait_for(lambda: client.zcard(name) == 1)
            assert executor.cancel_run("dropped", at, "no longer wanted") == 1
            assert executor.cancel_run("dropped", at, "asked twice") == 0
            wait_for(lambda: client.zscore("arq:abort", key) is not None)
            with arq_worker(name):
                wait_for(lambda: host.events)
            [event] = host.events
            assert event.code == TASK_CANCELLED
            assert str(event.exception) == "no longer wanted"
            assert not client.exists(f"{name}:runs")  # the function never ran
            assert executor.active_instances("dropped") == 0
    finally:
        client.delete(f"arq:result:{key}")
        client.close()
        clean(name)
