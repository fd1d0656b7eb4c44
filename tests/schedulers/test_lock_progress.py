"""A ``lock_path`` progress file is a hint from another process, never trusted blindly.

Found on the earlier core: a ``.progress`` file holding a time in the future (a fast
clock on another host, or a file planted in /tmp) made the new lock holder run nothing
for the hour, deleted a one-shot task with no event, and a year-2100 value pegged the
CPU walking the catch-up.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tickwork.events import TASK_EXECUTED, TASK_MISSED, TASK_REMOVED
from tickwork.executors import DebugExecutor
from tickwork.schedulers import BackgroundScheduler


def noop() -> None:
    """The task body."""


@pytest.mark.parametrize("planted", [datetime(2100, 1, 1, tzinfo=UTC).timestamp(), 1e300])
def test_a_progress_time_in_the_future_is_clamped_and_reported(
    tmp_path: Path, planted: float, caplog: pytest.LogCaptureFixture
) -> None:
    lock_path = tmp_path / "{store}.lock"
    (tmp_path / "default.lock.progress").write_text(repr(planted))
    events: list[Any] = []
    scheduler = BackgroundScheduler(
        lock_path=str(lock_path), executors={"default": DebugExecutor()}, timezone="UTC"
    )
    scheduler.add_listener(events.append, TASK_EXECUTED | TASK_MISSED | TASK_REMOVED)
    scheduler.add_task(noop, "interval", seconds=0.2, id="tick")
    scheduler.add_task(noop, "date", run_at=datetime.now(UTC) - timedelta(seconds=0.1), id="once")
    cpu = time.process_time()
    scheduler.start()
    try:
        deadline = time.monotonic() + 5
        while sum(e.code == TASK_EXECUTED for e in events) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        scheduler.shutdown()
    assert time.process_time() - cpu < 2.0  # no walk to the year 2100
    assert sum(e.code == TASK_EXECUTED and e.task_id == "tick" for e in events) >= 3
    # The one-shot task was due before the handover: skipped, and said so twice over.
    once = [e.code for e in events if e.task_id == "once"]
    assert TASK_MISSED in once
    assert TASK_REMOVED in once
    assert "in the future" in caplog.text
