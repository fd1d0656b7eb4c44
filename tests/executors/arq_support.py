"""Real arq workers for the arq executor tests: a subprocess ``arq`` worker on a queue of
the test's own, in a Redis database of these tests."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import redis
from enqueue_support import HERE, ROOT, child_env, process, queue_name, redis_db_url

__all__ = [
    "ARQ_DB",
    "HERE",
    "ROOT",
    "arq_url",
    "arq_worker",
    "clean",
    "module_worker_queue",
    "new_queue",
]

#: The Redis database of these tests (the other tests use db 0, Celery's backend db 5).
ARQ_DB = 6


def arq_url() -> str:
    """The Redis URL of the arq tests (database ``ARQ_DB``)."""
    return redis_db_url(ARQ_DB)


def new_queue() -> str:
    return queue_name("arq")


def clean(queue: str, *keys: str) -> None:
    """Remove a test queue (and ``keys``) from Redis (its workers have stopped). Job and
    result keys expire on their own."""
    client = redis.Redis.from_url(arq_url())
    try:
        client.delete(queue, f"{queue}:health-check", *keys)
    finally:
        client.close()


def arq_worker(
    queue: str, log: Path | None = None, job_timeout: float = 300.0
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """Run one ``arq`` worker on ``queue`` until the block ends; wait until it is ready
    (its health-check key is written). ``job_timeout`` also sets when arq gives a job of
    a dead worker to another (10 s after it). The worker allows aborting jobs."""
    env = child_env(
        TICKWORK_TEST_ARQ_JOB_TIMEOUT=str(job_timeout),
        TICKWORK_TEST_ARQ_REDIS=arq_url(),
        TICKWORK_TEST_ARQ_QUEUE=queue,
    )
    command = [sys.executable, "-m", "arq", "arq_worker_settings.WorkerSettings"]
    return process(command, env, log, lambda child: _wait_ready(child, queue), grace=15.0)


def _wait_ready(worker: subprocess.Popen[bytes], queue: str) -> None:
    client = redis.Redis.from_url(arq_url())
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError(f"arq worker exited with {worker.returncode}")
            if client.exists(f"{queue}:health-check"):
                return
            time.sleep(0.1)
    finally:
        client.close()
    raise RuntimeError("arq worker did not start within 30 s")


def module_worker_queue() -> Any:
    """A module-scoped fixture (assign it to a name in a test module): a queue of that
    module's own with one real worker consuming it, removed afterwards."""

    @pytest.fixture(scope="module")
    def worker_queue() -> Iterator[str]:
        name = new_queue()
        with arq_worker(name):
            yield name
        clean(name)

    return worker_queue
