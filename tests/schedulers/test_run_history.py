"""Run history through a real scheduler: every run, and every run that did not start, is
on record (tickwork.runs), with the identity that ran it."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tickwork import AsyncIOScheduler, BackgroundScheduler
from tickwork.clock import FakeClock
from tickwork.events import TASK_ERROR, TASK_EXECUTED
from tickwork.exceptions import ConfigurationError
from tickwork.executors import DebugExecutor


def wait_for(condition: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)


def boom() -> None:
    raise ValueError("boom")


def test_runs_are_recorded_with_their_outcome() -> None:
    scheduler = BackgroundScheduler(timezone="UTC", identity="host-a")
    scheduler.add_task(lambda: 42, "interval", seconds=0.05, id="ok", name="the ok task")
    scheduler.add_task(boom, id="bad")
    with scheduler:
        wait_for(lambda: len(scheduler.get_runs("ok", outcome="success")) >= 2)
        wait_for(lambda: scheduler.get_runs("bad", outcome="error"))
    ok = scheduler.get_runs("ok")
    assert all(r.task_name == "the ok task" for r in ok)
    assert [r.scheduled_run_time for r in ok] == sorted(
        (r.scheduled_run_time for r in ok), reverse=True
    )  # newest first
    first = ok[-1]
    assert first.outcome == "success"
    assert first.attempt == 1
    assert first.scheduler == "host-a"
    assert first.executor == "default"
    assert first.duration is not None
    assert first.duration >= 0
    assert first.started_at is not None
    assert first.finished_at is not None
    assert first.run_id.startswith("ok@")
    (bad,) = scheduler.get_runs("bad")
    assert bad.outcome == "error"
    assert bad.error == "ValueError: boom"
    assert bad.traceback is not None
    assert "ValueError: boom" in bad.traceback
    assert scheduler.get_runs(outcome="error") == [bad]


def test_a_run_in_progress_is_recorded_as_running() -> None:
    release = threading.Event()
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_task(release.wait, args=[5], id="slow")
    scheduler.start()
    try:
        wait_for(lambda: scheduler.get_runs("slow"))
        (running,) = scheduler.get_runs("slow")
        assert running.outcome == "running"
        assert running.finished_at is None
        release.set()
        wait_for(lambda: scheduler.get_runs("slow")[0].outcome == "success")
    finally:
        release.set()
        scheduler.shutdown()


def test_missed_and_max_instances_runs_are_recorded() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    release = threading.Event()
    scheduler = BackgroundScheduler(timezone="UTC", clock=clock)
    scheduler.add_task(
        release.wait, "interval", seconds=10, args=[5], id="busy", mistrigger_grace_time=None
    )
    scheduler.add_task(
        print, "date", run_at=clock.now() - timedelta(seconds=30), id="late", args=["x"]
    )
    scheduler.start()
    try:
        wait_for(lambda: scheduler.get_runs("late"))
        clock.advance(seconds=10)
        wait_for(lambda: scheduler.get_runs("busy", outcome="running"))
        clock.advance(seconds=10)  # still running: max_instances 1
        wait_for(lambda: scheduler.get_runs("busy", outcome="max_instances"))
    finally:
        release.set()
        scheduler.shutdown()
    assert [r.outcome for r in scheduler.get_runs("late")] == ["missed"]
    assert scheduler.get_runs("late")[0].started_at is None


async def test_coroutine_runs_and_the_async_twin() -> None:
    async def job() -> str:
        await asyncio.sleep(0)
        return "done"

    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_task(job, id="co")
    async with scheduler:
        for _ in range(200):
            if await scheduler.get_runs_async("co", outcome="success"):
                break
            await asyncio.sleep(0.01)
    (record,) = await scheduler.get_runs_async("co")
    assert record.outcome == "success"


def test_without_history_nothing_is_recorded_and_no_event_is_forced() -> None:
    scheduler = BackgroundScheduler(
        timezone="UTC", run_history=None, executors={"default": DebugExecutor()}
    )
    scheduler.add_task(print, args=["hi"], id="t")
    with scheduler:
        time.sleep(0.1)
        assert scheduler.get_runs() == []
        assert not scheduler._events.wants(TASK_EXECUTED)


def test_retention_keeps_the_newest_per_task() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    scheduler = BackgroundScheduler(
        timezone="UTC",
        clock=clock,
        executors={"default": DebugExecutor()},
        run_history={"max_per_task": 3, "max_age": 3600},
    )
    scheduler.add_task(print, "interval", seconds=10, args=["x"], id="t")
    scheduler.start()
    try:
        for _ in range(6):
            clock.advance(seconds=10)
            count = len(scheduler.get_runs("t"))
            wait_for(lambda count=count: len(scheduler.get_runs("t")) > count)  # type: ignore[misc]
        assert len(scheduler.get_runs("t")) == 6
        scheduler._history.prune()  # (its thread does this every minute)
        runs = scheduler.get_runs("t")
        assert len(runs) == 3
        assert runs[0].scheduled_run_time == clock.now()
        clock.advance(hours=2)
        scheduler._history.prune()
        assert scheduler.get_runs("t") == []
    finally:
        scheduler.shutdown()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"run_history": {"max_age": -1}}, "max_age"),
        ({"run_history": {"max_per_task": 0}}, "max_per_task"),
        ({"run_history": {"max_runs": 5}}, "max_runs"),
        ({"run_history": 7}, "run_history"),
    ],
)
def test_bad_run_history_settings_are_refused_by_name(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        BackgroundScheduler(**options)


def test_bad_queries_are_refused_by_name() -> None:
    scheduler = BackgroundScheduler(timezone="UTC")
    with pytest.raises(ConfigurationError, match="'bogus'"):
        scheduler.get_runs(outcome="bogus")
    with pytest.raises(ConfigurationError, match="limit"):
        scheduler.get_runs(limit=0)
    with pytest.raises(ConfigurationError, match="since"):
        scheduler.get_runs(since=datetime(2026, 1, 1))  # naive
    scheduler.start()
    try:
        with pytest.raises(ConfigurationError, match="nowhere"):
            scheduler.get_runs(store="nowhere")
    finally:
        scheduler.shutdown()


def test_events_and_records_agree_on_the_run_id() -> None:
    events: list[Any] = []
    scheduler = BackgroundScheduler(timezone="UTC", executors={"default": DebugExecutor()})
    scheduler.add_listener(events.append, TASK_EXECUTED | TASK_ERROR)
    scheduler.add_task(print, args=["x"], id="t")
    with scheduler:
        wait_for(lambda: events and scheduler.get_runs("t", outcome="success"))
    assert events[0].run_id == scheduler.get_runs("t")[0].run_id


def test_a_run_log_that_cannot_be_read_names_its_store(tmp_path: Any) -> None:
    from tickwork.exceptions import StoreUnavailableError

    scheduler = BackgroundScheduler(
        timezone="UTC",
        stores={"db": {"type": "sqlalchemy", "url": f"sqlite:///{tmp_path}/gone/x.db"}},
    )
    (tmp_path / "gone").mkdir()
    scheduler.start()
    scheduler.shutdown()
    (tmp_path / "gone" / "x.db").unlink()
    (tmp_path / "gone").rmdir()
    with pytest.raises(StoreUnavailableError, match="'db'"):
        scheduler.get_runs(store="db")


def test_the_writer_thread_ends_when_there_is_nothing_to_write() -> None:
    scheduler = BackgroundScheduler(timezone="UTC", executors={"default": DebugExecutor()})
    scheduler.add_task(print, "interval", hours=1, args=["tick"], id="hourly")
    scheduler.start()
    try:
        scheduler.run_task("hourly")
        wait_for(lambda: scheduler.get_runs("hourly", outcome="success"))
        history = scheduler._history
        assert history is not None
        wait_for(lambda: history._thread is None)
        time.sleep(0.01)  # (run_task's record time differs from the first's)
        scheduler.run_task("hourly")  # a new run starts a new writer
        wait_for(lambda: len(scheduler.get_runs("hourly", outcome="success")) == 2)
    finally:
        scheduler.shutdown()
