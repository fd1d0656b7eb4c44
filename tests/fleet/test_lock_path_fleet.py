"""One host, several processes, ``lock_path``: each process has its own memory store and
adds the same tasks; only the process holding the store's file lock runs them. When the
holder dies (SIGKILL) or stops (SIGTERM), the kernel releases its lock and a standby,
retrying every ``lock_retry_interval`` (1 s), takes over without running again what the
holder ran (it skips past the holder's recorded progress)."""

from __future__ import annotations

import math
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from fleet_support import Fleet, Record, fleet, judge

pytestmark = pytest.mark.slow

TASKS = [f"tick-{index:02d}" for index in range(5)]


def holder_of(records: list[Record], since: float) -> int:
    runners = Counter(r.pid for r in records if r.code == "SUB" and r.wall > since)
    assert len(runners) == 1, f"not exactly one process ran tasks: {runners}"
    return next(iter(runners))


def just_after_a_slot(running: Fleet) -> None:
    """Wait until 0.1 s past a whole second: the holder has just run that slot, and a
    standby taking over before the next one would run it again unless it knew."""
    now = time.time()
    time.sleep(math.floor(now) + 1.1 - now)


def test_only_the_lock_holder_runs_tasks_and_a_standby_takes_over(tmp_path: Path) -> None:
    lock_path = str(tmp_path / "tickwork-{store}.lock")
    options = ("--lock-path", lock_path, "--tasks", str(len(TASKS)))
    with fleet(tmp_path, "memory", "-", *options) as running:
        running.start(3)
        first = time.time() + 1.5
        time.sleep(2.5)
        holder = holder_of(running.records(), 0)
        just_after_a_slot(running)
        killed_at = running.kill(holder)
        time.sleep(2.6)
        heir = holder_of(running.records(), killed_at)
        (locked_at,) = [t for t in running.log_times("took the lock") if t > killed_at]
        # A clean stop hands over the same way.
        just_after_a_slot(running)
        stopped_at = time.time()
        running.processes[heir].send_signal(signal.SIGTERM)
        running.processes[heir].wait(10)
        time.sleep(2.6)
        last_heir = holder_of(running.records(), stopped_at + 0.5)
        last = time.time() - 1.0
    records = running.records()
    assert len({holder, heir, last_heir}) == 3
    takeover = locked_at - killed_at
    print(f"\nlock_path: a standby took the SIGKILLed holder's lock {takeover:.2f} s later")
    # The kernel releases the lock at once; standbys retry every second.
    assert takeover < 1.3
    verdict = judge(records, TASKS, first, last)
    print(f"lock_path, 3 processes, holder killed then the next stopped: {verdict}")
    assert verdict.duplicates == []
    assert verdict.lost == []
