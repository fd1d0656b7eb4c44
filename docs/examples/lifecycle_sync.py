"""Lifecycle tasks: a generator holds a task's setup, ticks and cleanup together."""

from __future__ import annotations

import time
from collections.abc import Generator

from tickwork import BackgroundScheduler, make_function

log: list[str] = []


def poll_inbox(address: str) -> Generator[None, bool, int]:
    log.append(f"connect {address}")  # setup: runs once, before the first yield
    polls = 0
    while (yield):  # each trigger fire sends True: one tick
        polls += 1
        log.append("poll")
    log.append(f"disconnect after {polls} polls")  # cleanup: sent False at shutdown
    return polls


lifecycle = poll_inbox("imap.example.com")
next(lifecycle)  # run the setup now
step = make_function(lifecycle.send)  # a plain function a task can call

scheduler = BackgroundScheduler()
scheduler.add_task(step, "interval", seconds=0.1, args=[True], id="poll")
scheduler.add_task(step, "shutdown", args=[False], id="disconnect")
with scheduler:
    time.sleep(0.35)

polls = log.count("poll")
assert log[0] == "connect imap.example.com"
assert log[-1] == f"disconnect after {polls} polls"
assert polls >= 2
