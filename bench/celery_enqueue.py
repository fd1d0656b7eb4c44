"""Enqueued runs per second from a burst handed to CeleryExecutor, next to Celery's own
``send_task`` loop (what Celery beat does for each due entry, without its schedule
bookkeeping: a ceiling for beat rather than beat itself).

    python bench/celery_enqueue.py [--runs 10000]

Needs RabbitMQ (amqp://guest:guest@127.0.0.1:5672//) and Redis (db 5 for the result
backend). Both sides publish with confirms to a queue of the bench's own, deleted after;
no worker runs. tickwork's figure includes what makes a slot go out once: the sent marker
written to the result backend after each confirm.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import celery
import kombu
import redis

from tickwork.executors.celery import SENT_PREFIX, CeleryExecutor
from tickwork.tasks import Task
from tickwork.triggers import DateTrigger

BROKER = "amqp://guest:guest@127.0.0.1:5672//"
BACKEND = "redis://127.0.0.1:6379/5"
SLOT = datetime(2026, 1, 1, tzinfo=UTC)


class Host:
    def wants(self, code: int) -> bool:
        return True

    def emit(self, event: Any) -> None:
        pass


def tickwork_burst(runs: int, queue: str) -> float:
    executor = CeleryExecutor(BROKER, backend=BACKEND, queue=queue, poll_interval=60)
    executor.start(Host(), "bench")
    prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    tasks = [
        Task("builtins:print", DateTrigger(SLOT), id=f"{prefix}{i}", max_instances=1)
        for i in range(runs)
    ]
    began = time.perf_counter()
    for task in tasks:
        executor.send_task(task, [SLOT])
    while len(executor._followed) < runs:
        time.sleep(0.01)
    took = time.perf_counter() - began
    executor.shutdown(wait=False)
    client = redis.Redis.from_url(BACKEND)
    keys = list(client.scan_iter(match=f"*{SENT_PREFIX}{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    return runs / took


def celery_burst(runs: int, queue: str) -> float:
    app = celery.Celery("bench", broker=BROKER, backend=BACKEND)
    app.conf.broker_transport_options = {"confirm_publish": True}
    began = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for i in range(runs):
            app.send_task("bench.job", task_id=f"beat-{i}", queue=queue, producer=producer)
    return runs / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    runs = parser.parse_args().runs
    queues = [f"tickwork_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    try:
        print(f"CeleryExecutor, burst of {runs}: {tickwork_burst(runs, queues[0]):,.0f} runs/s")
        print(f"Celery send_task loop, {runs}: {celery_burst(runs, queues[1]):,.0f} messages/s")
    finally:
        with kombu.Connection(BROKER) as connection:
            for queue in queues:
                connection.channel().queue_delete(queue)


if __name__ == "__main__":
    main()
