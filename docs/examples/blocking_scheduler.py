"""Schedulers: a program whose only job is to run tasks, with BlockingScheduler. start()
runs the scheduler in the calling thread and returns after a shutdown: from a task (as
here), another thread, or SIGTERM / Ctrl-C when started in the main thread."""

from __future__ import annotations

from tickwork import BlockingScheduler

log: list[str] = []
scheduler = BlockingScheduler(shutdown_timeout=30)


def work() -> None:
    log.append("work")
    if log.count("work") == 3:
        scheduler.shutdown()  # (in a real service: SIGTERM from systemd or Docker)


def close_connections() -> None:
    log.append("cleanup")


scheduler.add_task(work, "interval", seconds=0.05)
scheduler.add_task(close_connections, "shutdown")
scheduler.start()  # blocks until shut down; SIGTERM and Ctrl-C shut down cleanly

assert log == ["work", "work", "work", "cleanup"]
