"""Real arq workers for the arq executor tests: a subprocess ``arq`` worker on a queue of
the test's own, in a Redis database of these tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import redis
from servers import redis_url

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

#: The Redis database of these tests (the other tests use db 0, Celery's backend db 5).
ARQ_DB = 6


def arq_url() -> str:
    """The Redis URL of the arq tests (database ``ARQ_DB``)."""
    base = redis_url().rsplit("/", 1)[0]
    return f"{base}/{ARQ_DB}"


def new_queue() -> str:
    return f"tickwork_arq_test_{uuid.uuid4().hex[:10]}"


def clean(queue: str, *keys: str) -> None:
    """Remove a test queue (and ``keys``) from Redis (its workers have stopped). Job and
    result keys expire on their own."""
    client = redis.Redis.from_url(arq_url())
    try:
        client.delete(queue, f"{queue}:health-check", *keys)
    finally:
        client.close()


def worker_env(queue: str, job_timeout: float = 300.0) -> dict[str, str]:
    env = dict(os.environ)
    env["TICKWORK_TEST_ARQ_JOB_TIMEOUT"] = str(job_timeout)
    env["TICKWORK_TEST_ARQ_REDIS"] = arq_url()
    env["TICKWORK_TEST_ARQ_QUEUE"] = queue
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")])
    return env


@contextlib.contextmanager
def arq_worker(
    queue: str, log: Path | None = None, job_timeout: float = 300.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Run one ``arq`` worker on ``queue`` until the block ends; wait until it is ready
    (its health-check key is written). ``job_timeout`` also sets when arq gives a job of
    a dead worker to another (10 s after it)."""
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "arq", "arq_worker_settings.WorkerSettings"],
        env=worker_env(queue, job_timeout),
        cwd=HERE,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(process, queue)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log is not None and out is not subprocess.DEVNULL:
            out.close()  # type: ignore[union-attr]


def _wait_ready(process: subprocess.Popen[bytes], queue: str) -> None:
    client = redis.Redis.from_url(arq_url())
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"arq worker exited with {process.returncode}")
            if client.exists(f"{queue}:health-check"):
                return
            time.sleep(0.1)
    finally:
        client.close()
    raise RuntimeError("arq worker did not start within 30 s")
