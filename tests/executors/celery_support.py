"""Real Celery workers for the Celery executor tests: a subprocess ``celery worker`` on a
queue of the test's own, and the URLs it uses."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from enqueue_support import HERE, ROOT, child_env, process, queue_name, redis_db_url
from servers import rabbitmq_url

__all__ = [
    "BACKEND_DB",
    "HERE",
    "ROOT",
    "backend_url",
    "celery_worker",
    "delete_queue",
    "new_queue",
]

#: The result backend database of these tests (the other tests use db 0).
BACKEND_DB = 5


def backend_url() -> str:
    """The Redis URL of the result backend (database ``BACKEND_DB``)."""
    return redis_db_url(BACKEND_DB)


def new_queue() -> str:
    return queue_name("celery")


@contextlib.contextmanager
def celery_worker(
    queue: str, name: str = "w1", log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run one ``celery worker`` (solo pool) on ``queue`` until the block ends; wait until
    it is ready."""
    env = child_env(
        TICKWORK_TEST_CELERY_BROKER=rabbitmq_url(), TICKWORK_TEST_CELERY_BACKEND=backend_url()
    )
    command = [
        *(sys.executable, "-m", "celery", "-A", "celery_worker_app", "worker", "--pool=solo"),
        *("-Q", queue, "-n", f"{name}-{queue}@%h"),
        *("--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"),
    ]
    try:
        with process(command, env, log, lambda child: _wait_ready(child, queue)) as worker:
            yield worker
    finally:
        delete_queue(queue)


def delete_queue(queue: str) -> None:
    """Remove a test queue from the broker (the last worker on it has stopped)."""
    import kombu

    with contextlib.suppress(Exception), kombu.Connection(rabbitmq_url()) as connection:
        connection.channel().queue_delete(queue)


def _wait_ready(worker: subprocess.Popen[bytes], queue: str) -> None:
    """Wait until the worker consumes from ``queue`` (the broker lists a consumer)."""
    import kombu

    deadline = time.monotonic() + 30
    with kombu.Connection(rabbitmq_url()) as connection:
        channel = connection.channel()
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError(f"celery worker exited with {worker.returncode}")
            with contextlib.suppress(Exception):
                _, _, consumers = channel.queue_declare(queue, passive=True)
                if consumers:
                    return
            channel = connection.channel()
            time.sleep(0.2)
    raise RuntimeError("celery worker did not start consuming within 30 s")


def module_worker_queue() -> Any:
    """A module-scoped fixture (assign it to a name in a test module): a queue of that
    module's own with one real worker consuming it."""

    @pytest.fixture(scope="module")
    def worker_queue() -> Iterator[str]:
        name = new_queue()
        with celery_worker(name):
            yield name

    return worker_queue
