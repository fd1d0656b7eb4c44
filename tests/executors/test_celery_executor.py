"""CeleryExecutor against a real RabbitMQ broker, a real Redis result backend and a real
``celery worker`` subprocess."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import celery
import pytest
from celery_support import backend_url, celery_worker, delete_queue, new_queue
from servers import rabbitmq_url

from tickwork.events import TASK_ERROR, TASK_EXECUTED, TaskExecutionEvent
from tickwork.exceptions import CeleryTaskNotRegisteredError, InvalidTaskError
from tickwork.executors.celery import CeleryExecutor, run_key
from tickwork.schedulers.background import BackgroundScheduler

pytestmark = [pytest.mark.external_service("rabbitmq"), pytest.mark.external_service("redis")]


@pytest.fixture(scope="module")
def worker_queue() -> Iterator[str]:
    """A queue of this module's own with one real worker consuming it."""
    name = new_queue()
    with celery_worker(name):
        yield name


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
                "type": "celery",
                "app": rabbitmq_url(),
                "backend": backend_url(),
                "queue": worker_queue,
                "poll_interval": 0.1,
            }
        }
    )
    sched.add_listener(outcomes, TASK_EXECUTED | TASK_ERROR)
    sched.start()
    try:
        yield sched, outcomes
    finally:
        sched.shutdown()


def test_a_run_is_executed_by_a_worker_and_its_result_comes_back(
    scheduler: tuple[BackgroundScheduler, Outcomes],
) -> None:
    sched, outcomes = scheduler
    task = sched.add_task("celery_jobs:add", "date", args=[2, 3], id="add")
    event = outcomes.next()
    assert (event.code, event.task_id, event.return_value) == (TASK_EXECUTED, task.id, 5)


def test_the_worker_sees_the_runs_key_as_its_celery_task_id(
    scheduler: tuple[BackgroundScheduler, Outcomes],
) -> None:
    sched, outcomes = scheduler
    sched.add_task("celery_jobs:key", "date", id="keyed")
    event = outcomes.next()
    assert event.code == TASK_EXECUTED
    assert event.return_value == run_key("keyed", event.scheduled_run_time)
    assert "@" in event.return_value
    assert event.return_value.endswith("+00:00")


def test_a_coroutine_function_runs_in_the_worker(
    scheduler: tuple[BackgroundScheduler, Outcomes],
) -> None:
    sched, outcomes = scheduler
    sched.add_task("celery_jobs:async_add", "date", args=[20, 22], id="async")
    assert outcomes.next().return_value == 42


def test_a_failing_run_is_a_task_error_with_the_workers_exception(
    scheduler: tuple[BackgroundScheduler, Outcomes],
) -> None:
    sched, outcomes = scheduler
    sched.add_task("celery_jobs:boom", "date", args=["no luck"], id="boom")
    event = outcomes.next()
    assert event.code == TASK_ERROR
    assert "no luck" in str(event.exception)
    assert event.traceback is not None
    assert "ValueError" in event.traceback


def test_arguments_the_serializer_cannot_encode_are_refused_at_add_task(
    scheduler: tuple[BackgroundScheduler, Outcomes],
) -> None:
    sched, _ = scheduler
    with pytest.raises(InvalidTaskError, match=r"'unsendable'.*'json' serializer"):
        sched.add_task("celery_jobs:add", "date", args=[object(), 1], id="unsendable")
    assert sched.get_task("unsendable") is None


def test_tickwork_retries_are_refused_with_the_celery_way_named(
    scheduler: tuple[BackgroundScheduler, Outcomes],
) -> None:
    sched, _ = scheduler
    with pytest.raises(InvalidTaskError, match="autoretry_for"):
        sched.add_task("celery_jobs:add", "date", args=[1, 1], id="retried", retries=2)


def test_an_unknown_celery_task_name_is_an_error_event_and_the_task_is_kept(
    worker_queue: str,
) -> None:
    app = celery.Celery("tickwork_test_sched", broker=rabbitmq_url(), backend=backend_url())

    @app.task(name="tickwork_test.known")  # type: ignore[untyped-decorator]
    def known() -> None: ...

    other = celery.Celery("tickwork_test_other", broker=rabbitmq_url(), backend=backend_url())
    orphan = other.task(name="tickwork_test.orphan", shared=False)(_orphan)
    globals()["orphan_task"] = orphan  # importable by reference: tickwork stores the ref
    outcomes = Outcomes()
    sched = BackgroundScheduler(
        executors={"default": CeleryExecutor(app, queue=worker_queue, poll_interval=0.1)}
    )
    sched.add_listener(outcomes, TASK_ERROR)
    sched.start()
    try:
        sched.add_task(orphan, "interval", hours=1, id="orphan", next_run_time=_now())
        event = outcomes.next()
        assert isinstance(event.exception, CeleryTaskNotRegisteredError)
        assert "'tickwork_test.orphan'" in str(event.exception)
        assert sched.get_task("orphan") is not None
    finally:
        sched.shutdown()


def test_a_broker_that_does_not_answer_keeps_the_run_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing listens on port 1: every send fails, is logged with the broker's URL, and
    the run stays (no outcome, its instance held) while the executor retries."""
    executor = CeleryExecutor("amqp://guest:guest@127.0.0.1:1//", backend=backend_url())
    outcomes = Outcomes()
    sched = BackgroundScheduler(executors={"default": executor})
    sched.add_listener(outcomes, TASK_EXECUTED | TASK_ERROR)
    sched.start()
    seen = threading.Event()
    try:
        sched.add_task("celery_jobs:add", "date", args=[1, 2], id="waiting")
        for _ in range(100):
            if "cannot reach the Celery broker amqp://guest:**@127.0.0.1:1//" in caplog.text:
                seen.set()
                break
            threading.Event().wait(0.1)
        assert seen.is_set(), caplog.text
        assert "does not answer at start" in caplog.text
        assert "kept and sent when it answers" in caplog.text
        assert executor.active_instances("waiting") == 1
        assert outcomes.events.empty()
    finally:
        sched.shutdown(wait=False)


def _orphan() -> None: ...


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_a_run_taken_over_is_followed_under_its_key_and_not_sent_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two executors (two schedulers) hand over the same slot, as a scheduler does when it
    takes over a dead one's run: the broker gets one message, and both see its outcome."""
    import asyncio
    import logging

    import kombu
    from executor_host import T0, Host, task

    caplog.set_level(logging.INFO, logger="tickwork.executors.CeleryExecutor")
    name = new_queue()
    hosts = [Host(asyncio.new_event_loop()) for _ in range(2)]
    executors = [
        CeleryExecutor(rabbitmq_url(), backend=backend_url(), queue=name, poll_interval=0.1)
        for _ in hosts
    ]
    for index, (executor, host) in enumerate(zip(executors, hosts, strict=True)):
        executor.start(host, f"celery{index}")
    slot = T0 + timedelta(seconds=int(name[-6:], 16))  # a slot of this test's own
    try:
        executors[0].send_task(task("celery_jobs:add", 4, 5, id="taken"), [slot])
        for _ in range(100):  # until the first one has published and marked it
            if executors[0]._followed:
                break
            threading.Event().wait(0.05)
        executors[1].send_task(task("celery_jobs:add", 4, 5, id="taken"), [slot])
        for _ in range(100):
            if "was sent by another scheduler" in caplog.text:
                break
            threading.Event().wait(0.05)
        assert f"run {run_key('taken', slot)} was sent by another scheduler" in caplog.text
        with kombu.Connection(rabbitmq_url()) as connection:
            _, messages, _ = connection.channel().queue_declare(name, passive=True)
        assert messages == 1
        with celery_worker(name):
            for _ in range(200):
                if all(host.events for host in hosts):
                    break
                threading.Event().wait(0.05)
        assert [h.events[0].return_value for h in hosts] == [9, 9]
    finally:
        for executor, host in zip(executors, hosts, strict=True):
            executor.shutdown(wait=False)
            host.event_loop.close()
        delete_queue(name)


def test_importing_the_executor_without_celery_names_the_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['celery'] = None\n"
        "try:\n"
        "    import tickwork.executors.celery\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("MissingDependencyError")
    assert "pip install 'tickwork[celery]'" in out.stdout
