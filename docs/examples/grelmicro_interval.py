"""grelmicro's interval task with ``min_lock_seconds``, as a tickwork program.

In grelmicro an interval task runs on every worker of an application, guarded by a
distributed lock held at least ``min_lock_seconds``, so the fleet runs it at most once
per that many seconds. In tickwork the fleet shares one store, each run happens once,
and ``cooldown`` keeps the next run, on any member, that long after the last one ended.
"""

from __future__ import annotations

import tempfile
import threading
import time
from itertools import pairwise
from pathlib import Path

from tickwork.schedulers import BackgroundScheduler
from tickwork.stores.sqlalchemy import SQLAlchemyStore

runs: list[tuple[float, float]] = []
lock = threading.Lock()


def refresh_cache() -> None:
    start = time.monotonic()
    time.sleep(0.1)
    with lock:
        runs.append((start, time.monotonic()))


def worker(database: Path, name: str) -> BackgroundScheduler:
    """One member of the fleet (in production, one per process or host)."""
    store = SQLAlchemyStore(f"sqlite:///{database}")
    return BackgroundScheduler(stores={"default": store}, identity=name)


with tempfile.TemporaryDirectory() as folder:
    database = Path(folder) / "tasks.sqlite"
    members = [worker(database, f"worker-{i}") for i in range(2)]
    # Like @task.interval(seconds=0.2) with min_lock_seconds=0.6: every member would
    # declare it at start-up; the same id and replace_existing keep one task.
    for member in members:
        member.add_task(
            refresh_cache,
            "interval",
            seconds=0.2,
            cooldown=0.6,
            id="refresh-cache",
            replace_existing=True,
        )
        member.start()
    time.sleep(3.0)
    for member in members:
        member.shutdown()

gaps = [nxt[0] - prev[1] for prev, nxt in pairwise(sorted(runs))]
assert len(runs) >= 2, runs
assert min(gaps) >= 0.6 - 0.005, gaps  # never sooner, whichever member ran it
print(f"{len(runs)} runs, each at least 0.6 s after the previous one ended")
