"""BackgroundScheduler in an ordinary (sync) program: no event loop anywhere.

The scheduler runs in a daemon thread of its own and runs tasks in a thread pool, while
the main thread carries on. ``with scheduler:`` starts it and, on leaving, shuts it down:
shutdown-trigger tasks run and running tasks finish before the ``with`` block ends.

Run: ``python examples/background.py``.
"""

from __future__ import annotations

import threading
import time

from tickwork import BackgroundScheduler

lock = threading.Lock()
beats: list[float] = []
started = time.monotonic()


def heartbeat() -> None:
    with lock:
        beats.append(time.monotonic() - started)
        print(f"[{beats[-1]:5.2f}s] heartbeat #{len(beats)} in {threading.current_thread().name}")


def report() -> None:
    print(f"shutdown: {len(beats)} heartbeats in all")


def main() -> None:
    scheduler = BackgroundScheduler()
    scheduler.add_task(heartbeat, "interval", seconds=0.25, id="heartbeat")
    scheduler.add_task(report, "shutdown", id="report")

    with scheduler:
        for step in range(3):  # the main thread does its own work meanwhile
            time.sleep(0.4)
            print(f"main thread: step {step + 1} done")
    print(f"scheduler stopped: running={scheduler.running}")
    assert len(beats) >= 3, beats


if __name__ == "__main__":
    main()
