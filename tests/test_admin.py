"""An admin-only process (tickwork.admin.open_admin) on a store that another scheduler
runs: it sees and changes that scheduler's tasks, and its run requests are run by the
other scheduler exactly once, with the schedule untouched."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_locations import STORE_KINDS, store_location

from tickwork.admin import administer, open_admin
from tickwork.exceptions import SchedulerNotRunningError, TaskLookupError
from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import store_from_url

CALLS: list[str] = []


def record_call(tag: str) -> None:
    CALLS.append(tag)


@pytest.fixture(params=STORE_KINDS)
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """A URL (and its table/prefix option) of a fresh location of each kind of store."""
    with store_location(request.param, tmp_path, "admin") as found:
        yield found


def _wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_admin_sees_and_changes_a_fleets_tasks(store_url: tuple[str, dict[str, str]]) -> None:
    url, options = store_url
    worker = BackgroundScheduler(
        stores={"default": store_from_url(url, **options)}, identity="worker-1"
    )
    tag = uuid.uuid4().hex
    worker.add_task(f"{__name__}:record_call", "interval", hours=1, args=[tag], id="hourly")
    worker.start()
    try:
        with administer(url, **options) as admin:
            assert admin.identity.startswith("admin:")
            assert [task.id for task in admin.get_tasks()] == ["hourly"]
            scheduled = admin.get_task("hourly").next_run_time  # type: ignore[union-attr]

            run_id = admin.request_run("hourly")
            assert run_id.startswith("hourly@")
            assert run_id.endswith("#1")
            _wait_for(lambda: CALLS.count(tag) == 1)
            _wait_for(lambda: [r.outcome for r in admin.get_runs("hourly")] == ["success"])
            (record,) = admin.get_runs("hourly")
            assert (record.run_id, record.scheduler) == (run_id, "worker-1")
            # The schedule is untouched, and the run was made once.
            assert worker.get_task("hourly").next_run_time == scheduled  # type: ignore[union-attr]
            time.sleep(1.5)
            assert CALLS.count(tag) == 1

            admin.pause_task("hourly")
            _wait_for(lambda: worker.get_task("hourly").next_run_time is None)  # type: ignore[union-attr]
            with pytest.raises(TaskLookupError):
                admin.request_run("nope")
            admin.delete_task("hourly")
            assert worker.get_tasks() == []
    finally:
        worker.shutdown()


def test_request_run_in_the_scheduler_itself_runs_it_here(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    scheduler = BackgroundScheduler()
    scheduler.add_task(record_call, "interval", hours=1, args=[tag], id="hourly", max_instances=2)
    with pytest.raises(SchedulerNotRunningError):
        scheduler.request_run("hourly")
    with scheduler:
        first, second = scheduler.request_run("hourly"), scheduler.request_run("hourly")
        assert first != second  # one microsecond apart: each run has an id of its own
        _wait_for(lambda: CALLS.count(tag) == 2)


def test_open_admin_runs_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    tag = uuid.uuid4().hex
    seed = BackgroundScheduler(stores={"default": store_from_url(url)})
    seed.add_task(f"{__name__}:record_call", "interval", seconds=0.2, args=[tag], id="fast")
    seed.start(paused=True)
    seed.shutdown()
    admin = open_admin(url)
    try:
        assert admin.get_scheduler_info()["state"] == "paused"
        time.sleep(0.8)
        assert CALLS.count(tag) == 0
    finally:
        admin.shutdown()


def test_an_admin_process_never_takes_the_fleets_leadership(tmp_path: Path) -> None:
    """Opened before any member runs, the admin (paused) does not stand for election, so
    the first real member leads and runs the leader-only tasks."""
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    admin = open_admin(url)
    try:
        time.sleep(0.5)
        worker = BackgroundScheduler(stores={"default": store_from_url(url)}, identity="w1")
        worker.start()
        try:
            _wait_for(lambda: worker.is_leader)
            assert not admin.is_leader
        finally:
            worker.shutdown()
    finally:
        admin.shutdown()


def test_a_paused_scheduler_resigns_and_stands_again_when_resumed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    scheduler = BackgroundScheduler(stores={"default": store_from_url(url)})
    scheduler.start()
    try:
        _wait_for(lambda: scheduler.is_leader)
        scheduler.pause()
        _wait_for(lambda: not scheduler.is_leader)
        scheduler.resume()
        _wait_for(lambda: scheduler.is_leader)
    finally:
        scheduler.shutdown()
