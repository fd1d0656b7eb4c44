"""Real Celery workers for the Celery executor tests: a subprocess ``celery worker`` on a
queue of the test's own, and the URLs it uses."""

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

from servers import rabbitmq_url, redis_url

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

#: The result backend database of these tests (the other tests use db 0).
BACKEND_DB = 5


def backend_url() -> str:
    """The Redis URL of the result backend (database ``BACKEND_DB``)."""
    base = redis_url().rsplit("/", 1)[0]
    return f"{base}/{BACKEND_DB}"


def new_queue() -> str:
    return f"tickwork_celery_test_{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def celery_worker(
    queue: str, name: str = "w1", log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run one ``celery worker`` (solo pool) on ``queue`` until the block ends; wait until
    it is ready."""
    env = dict(os.environ)
    env["TICKWORK_TEST_CELERY_BROKER"] = rabbitmq_url()
    env["TICKWORK_TEST_CELERY_BACKEND"] = backend_url()
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")])
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_worker_app",
            "worker",
            "--pool=solo",
            "-Q",
            queue,
            "-n",
            f"{name}-{queue}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "INFO",
        ],
        env=env,
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
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log is not None and out is not subprocess.DEVNULL:
            out.close()  # type: ignore[union-attr]
        delete_queue(queue)


def delete_queue(queue: str) -> None:
    """Remove a test queue from the broker (the last worker on it has stopped)."""
    import kombu

    with contextlib.suppress(Exception), kombu.Connection(rabbitmq_url()) as connection:
        connection.channel().queue_delete(queue)


def _wait_ready(process: subprocess.Popen[bytes], queue: str) -> None:
    """Wait until the worker consumes from ``queue`` (the broker lists a consumer)."""
    import kombu

    deadline = time.monotonic() + 30
    with kombu.Connection(rabbitmq_url()) as connection:
        channel = connection.channel()
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"celery worker exited with {process.returncode}")
            with contextlib.suppress(Exception):
                _, _, consumers = channel.queue_declare(queue, passive=True)
                if consumers:
                    return
            channel = connection.channel()
            time.sleep(0.2)
    raise RuntimeError("celery worker did not start consuming within 30 s")
