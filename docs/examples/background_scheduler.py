"""Schedulers: BackgroundScheduler for programs without an event loop."""

from __future__ import annotations

import threading
import time

from tickwork import BackgroundScheduler

threads: set[str] = set()


def job() -> None:
    threads.add(threading.current_thread().name)


async def async_job() -> None:  # coroutines run too, each on a loop of its own
    threads.add("async:" + threading.current_thread().name)


scheduler = BackgroundScheduler(executors={"default": {"type": "threadpool", "max_workers": 4}})
scheduler.add_task(job, "interval", seconds=0.1)
scheduler.add_task(async_job, "interval", seconds=0.1)
scheduler.start()  # returns at once; the scheduler thread is a daemon
time.sleep(0.35)
scheduler.shutdown()  # returns when the thread stopped and running tasks finished
assert not scheduler.running
assert any(name.startswith("tickwork-default") for name in threads)
assert any(name.startswith("async:tickwork-default") for name in threads)
