"""Exactly once at the boundary: three schedulers on one PostgreSQL store enqueue runs to
two real arq workers; one scheduler is SIGKILLed mid-run. Every slot must be executed by a
worker exactly once (counted in a Redis hash the job increments by run key); arq's
re-runs of a job are counted from the workers' logs.

Short by default (about 30 s). ``TICKWORK_ARQ_FLEET_FULL=1`` runs 30 tasks every 20 s for
3 minutes.
"""

from __future__ import annotations

import re
import signal
import time
import uuid
from contextlib import AbstractContextManager
from pathlib import Path
from subprocess import Popen

import pytest
import redis
from arq_support import arq_url, arq_worker, clean, new_queue
from enqueue_support import FleetCount, fleet_scheduler, fleet_size, seed_fleet_store
from servers import temporary_database

pytestmark = [
    pytest.mark.slow,
    pytest.mark.external_service("postgresql"),
    pytest.mark.external_service("redis"),
    pytest.mark.timeout(400),
]

TASKS, EVERY, RUN_FOR = fleet_size("TICKWORK_ARQ_FLEET_FULL")


def _scheduler(url: str, queue: str, log: Path) -> AbstractContextManager[Popen[bytes]]:
    executor = {"type": "arq", "redis": arq_url(), "queue_name": queue, "poll_interval": 0.2}
    return fleet_scheduler(url, executor, log)


def test_each_slot_reaches_a_worker_once_through_a_scheduler_kill(tmp_path: Path) -> None:
    queue = new_queue()
    counter = f"tickwork_arq_fleet_{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(arq_url(), decode_responses=True)
    try:
        with temporary_database("postgresql") as url:
            seed_fleet_store(url, "arq_jobs:record", (arq_url(), counter), TASKS, EVERY)
            logs = [tmp_path / f"worker{n}.log" for n in (1, 2)]
            with (
                arq_worker(queue, logs[0]),
                arq_worker(queue, logs[1]),
                _scheduler(url, queue, tmp_path / "s1.log"),
                _scheduler(url, queue, tmp_path / "s2.log") as doomed,
                _scheduler(url, queue, tmp_path / "s3.log"),
            ):
                began = time.time()
                time.sleep(RUN_FOR / 3)
                doomed.send_signal(signal.SIGKILL)  # between claim and write-back, somewhere
                time.sleep(max(0.0, began + RUN_FOR - time.time()))
                stopped_at = time.time()
                # What was enqueued before the schedulers stop is run by the workers.
                for _ in range(100):
                    if client.zcard(queue) == 0:
                        break
                    time.sleep(0.1)
        counts = {key: int(n) for key, n in client.hgetall(counter).items()}
    finally:
        client.delete(counter)
        client.close()
        clean(queue)
    count = FleetCount(counts, EVERY)
    reruns = sum(len(re.findall("started again", log.read_text())) for log in logs)
    extra = f"arq re-runs of an unfinished job {reruns}"
    report = count.report(TASKS, stopped_at - began, extra)
    print(report)
    # No worker died: arq's at-least-once re-runs are the only allowed duplicates, and
    # there were none to allow.
    count.assert_exactly_once(TASKS, RUN_FOR, report)
    assert reruns == 0, report
