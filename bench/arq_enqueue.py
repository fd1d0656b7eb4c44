"""Enqueued runs per second from a burst handed to ArqExecutor, next to arq's own
``enqueue_job`` loop (what arq's cron does for each due job, without its schedule
bookkeeping: a ceiling rather than arq's scheduler itself).

    python bench/arq_enqueue.py [--runs 10000]

Needs Redis (db 7; a queue and job ids of the bench's own, deleted after); no worker runs. Both
sides pass a job id, so both pay arq's duplicate check; tickwork's figure includes
following each job (one pipelined read of the states per 500 jobs and poll).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import redis
from arq import create_pool
from arq.connections import RedisSettings

from tickwork.executors.arq import ArqExecutor
from tickwork.tasks import Task
from tickwork.triggers import DateTrigger

URL = "redis://127.0.0.1:6379/7"
SLOT = datetime(2026, 1, 1, tzinfo=UTC)


class Host:
    def wants(self, code: int) -> bool:
        return True

    def emit(self, event: Any) -> None:
        pass


def tickwork_burst(runs: int, queue: str) -> float:
    executor = ArqExecutor(URL, queue_name=queue, poll_interval=60)
    executor.start(Host(), "bench")
    prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    tasks = [
        Task("builtins:print", DateTrigger(SLOT), id=f"{prefix}{i}", max_instances=1)
        for i in range(runs)
    ]
    began = time.perf_counter()
    for task in tasks:
        executor.send_task(task, [SLOT])
    # A run is followed once its job is in Redis.
    while len(executor._followed) < runs:
        time.sleep(0.01)
    took = time.perf_counter() - began
    executor.shutdown(wait=False)
    return runs / took


async def _arq_loop(runs: int, queue: str) -> float:
    pool = await create_pool(RedisSettings.from_dsn(URL), default_queue_name=queue)
    try:
        began = time.perf_counter()
        run = uuid.uuid4().hex[:8]
        for i in range(runs):
            await pool.enqueue_job("bench_job", _job_id=f"cron-{run}-{i}")
        return runs / (time.perf_counter() - began)
    finally:
        await pool.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    runs = parser.parse_args().runs
    queues = [f"tickwork_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    try:
        print(f"ArqExecutor, burst of {runs}: {tickwork_burst(runs, queues[0]):,.0f} runs/s")
        rate = asyncio.run(_arq_loop(runs, queues[1]))
        print(f"arq enqueue_job loop, {runs}: {rate:,.0f} jobs/s")
    finally:
        _clean(queues)


def _clean(queues: list[str]) -> None:
    """Delete the bench's queues and the jobs it enqueued (their ids are its own)."""
    client = redis.Redis.from_url(URL)
    try:
        client.delete(*queues)
        for pattern in ("arq:job:bench-*", "arq:job:cron-*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
    finally:
        client.close()


if __name__ == "__main__":
    main()
