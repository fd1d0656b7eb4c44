"""Run records live in the task's store: every backend keeps them (durably, where the
store is persistent), and another scheduler on the same store reads them."""

from __future__ import annotations

import time
from collections.abc import Callable

from storetest_funcs import noop
from storetest_support import StoreMaker

from tickwork.executors import DebugExecutor
from tickwork.schedulers import BackgroundScheduler


def wait_for(condition: Callable[[], object], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.02)


def test_records_are_kept_by_the_store_and_read_by_another_scheduler(
    make_store: StoreMaker,
) -> None:
    first = BackgroundScheduler(
        stores={"default": make_store(start=False)},
        executors={"default": DebugExecutor()},
        timezone="UTC",
        identity="member-1",
    )
    first.add_task(noop, "interval", seconds=0.1, id="tick", name="ticker")
    first.start()
    try:
        wait_for(lambda: len(first.get_runs("tick", outcome="success")) >= 3)
    finally:
        first.shutdown()
    written = first.get_runs("tick")
    # A new scheduler (a restart, or another member of a fleet) on the same store.
    second = BackgroundScheduler(
        stores={"default": make_store(start=False)},
        executors={"default": DebugExecutor()},
        timezone="UTC",
        identity="member-2",
    )
    second.start(paused=True)
    try:
        seen = second.get_runs("tick")
    finally:
        second.shutdown()
    assert len(seen) >= 3
    assert {r.run_id for r in written} <= {r.run_id for r in seen}
    assert {r.scheduler for r in seen} == {"member-1"}
    assert {r.task_name for r in seen} == {"ticker"}
    assert all(r.outcome == "success" for r in seen)
