"""Fixed-delay runs and a cooldown: the next run counts from the end of the previous one."""

from __future__ import annotations

import time
from itertools import pairwise

from tickwork import BackgroundScheduler

spans: dict[str, list[tuple[float, float]]] = {"poll": [], "report": []}


def poll_queue() -> None:
    start = time.monotonic()
    time.sleep(0.3)  # the work takes longer than the delay: runs never overlap
    spans["poll"].append((start, time.monotonic()))


def send_report() -> None:
    start = time.monotonic()
    time.sleep(0.1)
    spans["report"].append((start, time.monotonic()))


scheduler = BackgroundScheduler()
# Run now, then 0.2 s after each run *ended* (a fixed delay, not a fixed rate).
scheduler.add_task(poll_queue, "delay", seconds=0.2, id="poll")
# Every 0.1 s by its trigger, but never sooner than 0.5 s after a run ended: fire times
# inside the cooldown are postponed to its end (one run), never run nor reported skipped.
scheduler.add_task(send_report, "interval", seconds=0.1, cooldown=0.5, id="report")

with scheduler:
    time.sleep(2.0)

for key, spacing in (("poll", 0.2), ("report", 0.5)):
    gaps = [nxt[0] - prev[1] for prev, nxt in pairwise(spans[key])]
    assert gaps, key
    assert min(gaps) >= spacing - 0.005, (key, gaps)
print("fixed delay and cooldown kept")
