"""A store that fails is retried with backoff; no run is lost or repeated."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest
from scheduler_helpers import wait_until

from tickwork.clock import FakeClock
from tickwork.events import TASK_EXECUTED
from tickwork.executors import DebugExecutor
from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import MemoryStore
from tickwork.tasks import Task

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FlakyStore(MemoryStore):
    """A memory store whose reads or write-backs fail while ``failing`` is set (a real
    store losing its server behaves the same from the scheduler's point of view)."""

    blocking = True

    def __init__(self) -> None:
        super().__init__()
        self.fail_acquire = threading.Event()
        self.fail_release = threading.Event()
        self.calls = 0

    def acquire_due_tasks(self, *args: Any) -> list[Task]:
        self.calls += 1
        if self.fail_acquire.is_set():
            raise ConnectionError("database went away")
        return super().acquire_due_tasks(*args)

    def release_tasks(self, *args: Any) -> None:
        if self.fail_release.is_set():
            raise ConnectionError("database went away mid-pass")
        super().release_tasks(*args)


class Rig(NamedTuple):
    clock: FakeClock
    store: FlakyStore
    executed: list[Any]


@pytest.fixture
def rig() -> Iterator[Rig]:
    """A running scheduler on a fake clock and a flaky store, with one task due every
    10 s from T0 and no grace limit; runs happen inline and are recorded."""
    clock = FakeClock(T0)
    store = FlakyStore()
    executed: list[Any] = []
    scheduler = BackgroundScheduler(
        clock=clock, stores={"default": store}, executors={"default": DebugExecutor()}
    )
    scheduler.add_listener(executed.append, TASK_EXECUTED)
    scheduler.add_task(
        print, "interval", seconds=10, args=["tick"], id="t", mistrigger_grace_time=None
    )
    scheduler.start()
    # The first pass (at T0) has looked at the store before the test makes it fail: it
    # runs on the store's own thread, and would otherwise race with the test.
    deadline = time.monotonic() + 5
    while store.calls < 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    yield Rig(clock, store, executed)
    scheduler.shutdown()


async def test_failing_store_is_retried_with_backoff_and_resumes(rig: Rig, caplog: Any) -> None:
    clock, store, executed = rig
    store.fail_acquire.set()
    clock.advance(seconds=10)
    await wait_until(lambda: "failed; retrying in 0.5 s" in caplog.text)
    calls = store.calls
    clock.advance(seconds=0.2)  # within the backoff: the store is left alone
    clock.advance(seconds=0.4)  # past it: tried again, fails, backoff doubles
    await wait_until(lambda: "retrying in 1.0 s" in caplog.text)
    assert store.calls > calls
    store.fail_acquire.clear()
    clock.advance(seconds=1.5)
    await wait_until(lambda: len(executed) == 1)
    assert "reachable again" in caplog.text
    assert executed[0].scheduled_run_time == T0 + timedelta(seconds=10)


async def test_a_failed_write_back_does_not_run_the_same_slot_twice(rig: Rig) -> None:
    clock, store, executed = rig
    store.fail_release.set()
    clock.advance(seconds=10)
    await wait_until(lambda: len(executed) == 1)
    store.fail_release.clear()
    clock.advance(seconds=5)  # past the backoff, before the next slot at +20
    await wait_until(lambda: store.lookup_task("t").next_run_time == T0 + timedelta(seconds=20))  # type: ignore[union-attr]
    clock.advance(seconds=5)
    await wait_until(lambda: len(executed) == 2)
    assert [e.scheduled_run_time for e in executed] == [
        T0 + timedelta(seconds=10),
        T0 + timedelta(seconds=20),
    ]
