"""CeleryExecutor against a real RabbitMQ broker, a real Redis result backend and a real
``celery worker`` subprocess."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import celery
import pytest
import redis
from celery_support import backend_url, celery_worker, delete_queue, module_worker_queue, new_queue
from enqueue_support import Outcomes, running_run, running_scheduler, slot, started, wait_for
from executor_host import task
from servers import rabbitmq_url

from tickwork.events import TASK_CANCELLED, TASK_ERROR, TASK_EXECUTED
from tickwork.exceptions import CeleryTaskNotRegisteredError, InvalidTaskError, RunCancelledError
from tickwork.executors.celery import CeleryExecutor, run_key
from tickwork.executors.celery_worker import CLAIM_PREFIX
from tickwork.schedulers.background import BackgroundScheduler

pytestmark = [pytest.mark.external_service("rabbitmq"), pytest.mark.external_service("redis")]


worker_queue = module_worker_queue()


@pytest.fixture
def scheduler(worker_queue: str) -> Iterator[tuple[BackgroundScheduler, Outcomes]]:
    config = {
        "type": "celery",
        "app": rabbitmq_url(),
        "backend": backend_url(),
        "queue": worker_queue,
        "poll_interval": 0.1,
    }
    with running_scheduler(config, TASK_EXECUTED | TASK_ERROR) as started_:
        yield started_


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
    executor = CeleryExecutor(app, queue=worker_queue, poll_interval=0.1)
    with running_scheduler(executor, TASK_ERROR) as (sched, outcomes):
        sched.add_task(orphan, "interval", hours=1, id="orphan", next_run_time=_now())
        event = outcomes.next()
        assert isinstance(event.exception, CeleryTaskNotRegisteredError)
        assert "'tickwork_test.orphan'" in str(event.exception)
        assert sched.get_task("orphan") is not None


def test_a_broker_that_does_not_answer_keeps_the_run_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing listens on port 1: every send fails, is logged with the broker's URL, and
    the run stays (no outcome, its instance held) while the executor retries."""
    executor = CeleryExecutor("amqp://guest:guest@127.0.0.1:1//", backend=backend_url())
    codes = TASK_EXECUTED | TASK_ERROR
    with running_scheduler(executor, codes, wait=False) as (sched, outcomes):
        sched.add_task("celery_jobs:add", "date", args=[1, 2], id="waiting")
        wait_for(
            lambda: "cannot reach the Celery broker amqp://guest:**@127.0.0.1:1//" in caplog.text
        )
        assert "cannot reach the Celery broker amqp://guest:**@127.0.0.1:1//" in caplog.text
        assert "does not answer at start" in caplog.text
        assert "kept and sent when it answers" in caplog.text
        assert executor.active_instances("waiting") == 1
        assert outcomes.events.empty()


def _orphan() -> None: ...


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_a_run_taken_over_is_followed_under_its_key_and_not_sent_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two executors (two schedulers) hand over the same slot, as a scheduler does when it
    takes over a dead one's run: the broker gets one message, and both see its outcome."""
    import logging

    import kombu

    caplog.set_level(logging.INFO, logger="tickwork.executors.CeleryExecutor")
    name = new_queue()
    executors = [
        CeleryExecutor(rabbitmq_url(), backend=backend_url(), queue=name, poll_interval=0.1)
        for _ in range(2)
    ]
    at = slot(name)
    try:
        with started(list(executors), "celery") as hosts:
            executors[0].send_task(task("celery_jobs:add", 4, 5, id="taken"), [at])
            wait_for(lambda: executors[0]._followed, 5.0)  # published and marked
            executors[1].send_task(task("celery_jobs:add", 4, 5, id="taken"), [at])
            wait_for(lambda: "was sent by another scheduler" in caplog.text, 5.0)
            assert f"run {run_key('taken', at)} was sent by another scheduler" in caplog.text
            with kombu.Connection(rabbitmq_url()) as connection:
                _, messages, _ = connection.channel().queue_declare(name, passive=True)
            assert messages == 1
            with celery_worker(name):
                wait_for(lambda: all(host.events for host in hosts), 10.0)
            assert [h.events[0].return_value for h in hosts] == [9, 9]
    finally:
        delete_queue(name)


def test_cancelling_a_run_not_yet_sent_ends_it_cancelled_and_never_sends_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The broker does not answer (port 1): the run waits in the executor, and a cancel
    ends it there, releasing its instance."""
    executor = CeleryExecutor("amqp://guest:guest@127.0.0.1:1//", backend=backend_url())
    codes = TASK_EXECUTED | TASK_ERROR | TASK_CANCELLED
    with running_scheduler(executor, codes, wait=False) as (sched, outcomes):
        sched.add_task("celery_jobs:add", "date", args=[1, 2], id="unsent")
        wait_for(lambda: "cannot reach the Celery broker" in caplog.text)
        (running,) = sched.get_runs("unsent", outcome="running")
        assert sched.cancel_run(running.run_id) is True
        event = outcomes.next()
        assert event.code == TASK_CANCELLED
        assert isinstance(event.exception, RunCancelledError)
        assert running.run_id in str(event.exception)
        assert executor.active_instances("unsent") == 0
        wait_for(lambda: sched.get_runs("unsent", outcome="cancelled"))
        assert len(sched.get_runs("unsent", outcome="cancelled")) == 1


def test_cancelling_a_sent_run_revokes_it_and_the_worker_drops_it() -> None:
    """The message waits in a queue no worker reads; cancel_run revokes it (a broadcast
    every worker keeps in memory), then a worker that got the revoke starts reading the
    queue: it drops the message unrun, and the run ends TASK_CANCELLED."""
    import socket

    idle, waiting = new_queue(), new_queue()
    executor = CeleryExecutor(
        rabbitmq_url(), backend=backend_url(), queue=waiting, poll_interval=0.1
    )
    client = redis.Redis.from_url(backend_url())
    try:
        with (
            celery_worker(idle, "wc"),
            running_scheduler(executor, TASK_EXECUTED | TASK_ERROR | TASK_CANCELLED) as (
                sched,
                outcomes,
            ),
        ):
            sched.add_task("celery_jobs:add", "date", args=[1, 2], id="revoked")
            wait_for(lambda: executor._followed)
            (running,) = sched.get_runs("revoked", outcome="running")
            key = run_key("revoked", running.scheduled_run_time)
            assert sched.cancel_run(running.run_id) is True
            wait_for(lambda: all(run.revoked for run in executor._followed.values()))
            # Broadcast after the revoke, so the worker has it when the message arrives.
            executor.app.control.add_consumer(
                waiting, destination=[f"wc-{idle}@{socket.gethostname()}"], reply=True
            )
            event = outcomes.next()
            assert event.code == TASK_CANCELLED
            assert isinstance(event.exception, RunCancelledError)
            assert not client.exists(CLAIM_PREFIX + key)  # tickwork.run never started
            wait_for(lambda: sched.get_runs("revoked", outcome="cancelled"))
            assert len(sched.get_runs("revoked", outcome="cancelled")) == 1
    finally:
        client.close()
        delete_queue(waiting)


def test_a_purged_message_is_released_by_marking_it_revoked_in_the_backend() -> None:
    """A message purged from its queue never reaches a worker, so its run stays followed
    (documented); writing REVOKED for its key in the result backend, as docs/celery.md
    says, ends it TASK_ERROR with the reason and releases its instance."""
    import kombu

    name = new_queue()
    executor = CeleryExecutor(rabbitmq_url(), backend=backend_url(), queue=name, poll_interval=0.1)
    at = slot(name)
    key = run_key("purged", at)
    try:
        with started([executor], "celery") as [host]:
            executor.send_task(task("celery_jobs:add", 1, 1, id="purged"), [at])
            wait_for(lambda: executor._followed, 5.0)
            with kombu.Connection(rabbitmq_url()) as connection:
                assert connection.channel().queue_purge(name) == 1
            threading.Event().wait(0.5)  # polls that find nothing: the run stays
            assert executor.active_instances("purged") == 1
            executor.app.backend.mark_as_revoked(key, reason="purged by hand")
            wait_for(lambda: host.events, 5.0)
            [event] = host.events
            assert event.code == TASK_ERROR
            assert "purged by hand" in str(event.exception)
            assert executor.active_instances("purged") == 0
    finally:
        executor.app.backend.forget(key)
        delete_queue(name)


def test_a_run_a_worker_has_started_is_not_counted_as_cancelled_and_runs_on(
    scheduler: tuple[BackgroundScheduler, Outcomes], caplog: pytest.LogCaptureFixture
) -> None:
    """tickwork never terminates a worker's process: a started run (its claim written by
    tickwork.run) cannot be cancelled, which cancel_run says (False, and a warning), and
    its outcome comes back as it ended."""
    sched, outcomes = scheduler
    sched.add_task("celery_jobs:sleep", "date", args=[2.0], id="started")
    running, key = running_run(sched, "started")
    client = redis.Redis.from_url(backend_url())
    try:
        wait_for(lambda: client.exists(CLAIM_PREFIX + key), 10.0)
        assert sched.cancel_run(running.run_id) is False
        assert f"run {key} has started at a worker" in caplog.text
        assert outcomes.next().code == TASK_EXECUTED
    finally:
        client.close()
