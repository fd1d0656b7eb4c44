"""Exactly once at the boundary: three schedulers on one PostgreSQL store send runs to two
real Celery workers; one scheduler is SIGKILLed and RabbitMQ's app is restarted mid-run.
Every slot must be executed by a worker exactly once (counted in a table the job writes);
duplicate deliveries are counted from the workers' logs.

Short by default (about 40 s). ``TICKWORK_CELERY_FLEET_FULL=1`` runs the issue's size:
30 tasks every 20 s for 3 minutes.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from contextlib import AbstractContextManager
from pathlib import Path
from subprocess import Popen

import psycopg
import pytest
import sqlalchemy
from celery_support import backend_url, celery_worker, new_queue
from enqueue_support import FleetCount, fleet_scheduler, fleet_size, seed_fleet_store
from servers import rabbitmq_url, temporary_database

pytestmark = [
    pytest.mark.slow,
    pytest.mark.external_service("rabbitmq"),
    pytest.mark.external_service("postgresql"),
    pytest.mark.external_service("redis"),
    pytest.mark.timeout(400),
]

TASKS, EVERY, RUN_FOR = fleet_size("TICKWORK_CELERY_FLEET_FULL")
TABLE = "celery_helper_runs"


def _libpq(url: str) -> str:
    return (
        sqlalchemy.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def _scheduler(url: str, queue: str, log: Path) -> AbstractContextManager[Popen[bytes]]:
    executor = {
        "type": "celery",
        "app": rabbitmq_url(),
        "backend": backend_url(),
        "queue": queue,
        "poll_interval": 0.2,
    }
    return fleet_scheduler(url, executor, log)


def _rabbit_restart(down_for: float) -> None:
    """Stop RabbitMQ's app and start it again (the node stays; always started back)."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        pytest.skip("rabbitmqctl not found: cannot restart the broker")
    try:
        subprocess.run([ctl, "stop_app"], check=True, capture_output=True, timeout=60)
        time.sleep(down_for)
    finally:
        subprocess.run([ctl, "start_app"], check=True, capture_output=True, timeout=120)


def test_each_slot_reaches_a_worker_once_through_a_kill_and_a_broker_restart(
    tmp_path: Path,
) -> None:
    queue = new_queue()
    with temporary_database("postgresql") as url:
        dsn = _libpq(url)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {TABLE} (run_key text NOT NULL)")
        seed_fleet_store(url, "celery_jobs:record", (dsn, TABLE), TASKS, EVERY)
        logs = [tmp_path / f"worker{n}.log" for n in (1, 2)]
        with (
            celery_worker(queue, "w1", logs[0]),
            celery_worker(queue, "w2", logs[1]),
            _scheduler(url, queue, tmp_path / "s1.log"),
            _scheduler(url, queue, tmp_path / "s2.log") as doomed,
            _scheduler(url, queue, tmp_path / "s3.log"),
        ):
            began = time.time()
            time.sleep(RUN_FOR / 4)
            doomed.send_signal(signal.SIGKILL)  # between claim and write-back, somewhere
            time.sleep(RUN_FOR / 4)
            _rabbit_restart(down_for=3.0)
            time.sleep(max(0.0, began + RUN_FOR - time.time()))
            stopped_at = time.time()
        # The schedulers and workers are stopped: what they enqueued has run or is lost.
        with psycopg.connect(dsn) as conn:
            keys = [row[0] for row in conn.execute(f"SELECT run_key FROM {TABLE}")]
    counts = Counter(keys)
    count = FleetCount(dict(counts), EVERY)
    dropped = sum(len(re.findall("duplicate dropped", log.read_text())) for log in logs)
    report = count.report(
        TASKS, stopped_at - began, f"duplicate deliveries dropped by the workers {dropped}"
    )
    print(report)
    count.assert_exactly_once(TASKS, RUN_FOR, report)
