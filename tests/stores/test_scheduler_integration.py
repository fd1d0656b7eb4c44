"""Persistent stores under a real scheduler: configuration from dicts, refusing tasks that
cannot be stored, and a restart that picks up where a stopped process left off."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import servers
from storetest_funcs import noop

from tickwork.clock import FakeClock
from tickwork.events import TASK_EXECUTED, TASK_MISSED, TASK_REMOVED
from tickwork.exceptions import SerializationError
from tickwork.executors import DebugExecutor
from tickwork.schedulers import BackgroundScheduler
from tickwork.serializers import PickleSerializer
from tickwork.stores.file import FileStore
from tickwork.stores.redis import RedisStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.005)


@pytest.fixture
def scheduler_factory() -> Iterator[Callable[..., BackgroundScheduler]]:
    made: list[BackgroundScheduler] = []

    def make(**options: Any) -> BackgroundScheduler:
        options.setdefault("executors", {"default": DebugExecutor()})
        options.setdefault("timezone", "UTC")
        scheduler = BackgroundScheduler(**options)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        if scheduler.running:
            scheduler.shutdown(wait=False)


# -- configuration ------------------------------------------------------------------------


def test_persistent_stores_are_configured_from_dicts(
    tmp_path: Path, scheduler_factory: Callable[..., BackgroundScheduler]
) -> None:
    stores = {
        "default": {"type": "sqlalchemy", "url": f"sqlite:///{tmp_path / 'db.sqlite'}"},
        "files": {"type": "file", "directory": str(tmp_path / "files"), "serializer": "pickle"},
    }
    scheduler = scheduler_factory(stores=stores, clock=FakeClock(T0))
    scheduler.start()
    scheduler.add_task(noop, "interval", minutes=5, id="in-sql")
    scheduler.add_task(noop, "interval", minutes=5, id="in-files", store="files")
    scheduler.shutdown()
    sql_store, file_store = (
        SQLAlchemyStore(f"sqlite:///{tmp_path / 'db.sqlite'}"),
        FileStore(tmp_path / "files", serializer=PickleSerializer()),
    )
    for store, task_id in ((sql_store, "in-sql"), (file_store, "in-files")):
        store.start("check")
        assert [task.id for task in store.get_all_tasks()] == [task_id]
        store.shutdown()


@pytest.mark.external_service("redis")
def test_the_redis_store_is_configured_from_a_dict(
    scheduler_factory: Callable[..., BackgroundScheduler],
) -> None:
    with servers.redis_prefix() as prefix:
        stores = {"default": {"type": "redis", "url": servers.redis_url(), "prefix": prefix}}
        scheduler = scheduler_factory(stores=stores, clock=FakeClock(T0))
        scheduler.start()
        scheduler.add_task(noop, "interval", minutes=5, id="in-redis")
        assert [task.id for task in scheduler.get_tasks()] == ["in-redis"]
        scheduler.shutdown()
        check = RedisStore(servers.redis_url(), prefix=prefix)
        check.start("check")
        assert [task.id for task in check.get_all_tasks()] == ["in-redis"]
        check.shutdown()


# -- tasks that cannot be stored ------------------------------------------------------------


@pytest.mark.parametrize("started", [False, True], ids=["before-start", "running"])
def test_add_task_refuses_what_a_persistent_store_cannot_keep(
    tmp_path: Path, scheduler_factory: Callable[..., BackgroundScheduler], started: bool
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    scheduler = scheduler_factory(stores={"default": {"type": "sqlalchemy", "url": url}})
    if started:
        scheduler.start()
    with pytest.raises(SerializationError, match="module-level function") as info:
        scheduler.add_task(lambda: 1, id="lam")
    assert "'lam'" in str(info.value)
    with pytest.raises(SerializationError, match=r"kwargs\['lock'\].*pickle serializer"):
        scheduler.add_task(
            noop, "interval", seconds=5, id="locked", kwargs={"lock": threading.Lock()}
        )
    scheduler.add_task(noop, "interval", seconds=5, id="fine")
    if not started:
        scheduler.start()
    assert [task.id for task in scheduler.get_tasks()] == ["fine"]
    with pytest.raises(SerializationError, match=r"args\[0\]"):
        scheduler.update_task("fine", args=[threading.Lock()])
    task = scheduler.get_task("fine")
    assert task is not None
    assert task.args == ()


# -- restart ------------------------------------------------------------------------------

FIRST_PROCESS = """
import sys, time
from datetime import UTC, datetime, timedelta
from tickwork.clock import FakeClock
from tickwork.events import TASK_EXECUTED
from tickwork.executors import DebugExecutor
from tickwork.schedulers import BackgroundScheduler
from tickwork.stores.sqlalchemy import SQLAlchemyStore

db, mode = sys.argv[1], sys.argv[2]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
clock = FakeClock(T0)
scheduler = BackgroundScheduler(
    clock=clock,
    timezone="UTC",
    stores={"default": {"type": "sqlalchemy", "url": f"sqlite:///{db}"}},
    executors={"default": DebugExecutor()},
)
ran = []

def report(event):
    print("ran", event.task_id, event.scheduled_run_time.isoformat(), flush=True)
    ran.append(event)

scheduler.add_listener(report, TASK_EXECUTED)
scheduler.start()
fn = "storetest_funcs:noop"
scheduler.add_task(fn, "interval", seconds=10, id="coalesced", coalesce=True, mistrigger_grace_time=None)
scheduler.add_task(fn, "interval", seconds=10, id="every", coalesce=False, mistrigger_grace_time=None)
scheduler.add_task(fn, "date", run_at=T0 + timedelta(seconds=30), id="strict", mistrigger_grace_time=5)
scheduler.add_task(fn, "date", run_at=T0 + timedelta(seconds=120), id="future", mistrigger_grace_time=5)
clock.advance(seconds=10)
deadline = time.monotonic() + 10
# Wait until the pass has written the advanced tasks back, the two runs have ended and
# their ends are recorded (a run killed before that counts as abandoned: the next
# process would run it again), then stop.
check = SQLAlchemyStore(f"sqlite:///{db}")
check.start("check")
while (
    scheduler.get_task("every").next_run_time != T0 + timedelta(seconds=20)
    or len(ran) < 2
    or check.count_runs(["coalesced", "every"])
):
    assert time.monotonic() < deadline, "the first pass did not finish"
    time.sleep(0.005)
check.shutdown()
if mode == "shutdown":
    scheduler.shutdown()
print("idle", flush=True)
time.sleep(60)  # in "kill" mode the test kills us here
"""


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run_first_process(db: Path, mode: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    first = subprocess.Popen(
        [sys.executable, "-c", FIRST_PROCESS, str(db), mode],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert first.stdout is not None
    lines: list[str] = []
    for line in first.stdout:
        if line.strip() == "idle":
            break
        lines.append(line.strip())
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["shutdown", "kill"])
def test_a_new_process_runs_what_came_due_while_none_was_running(
    tmp_path: Path, scheduler_factory: Callable[..., BackgroundScheduler], mode: str
) -> None:
    db = tmp_path / "tasks.sqlite"
    first_runs = run_first_process(db, mode)
    assert sorted(first_runs) == sorted(
        [f"ran coalesced {at(10).isoformat()}", f"ran every {at(10).isoformat()}"]
    )

    # 55 s of downtime: the new process starts at T0 + 65 s.
    clock = FakeClock(at(65))
    events: list[Any] = []
    scheduler = scheduler_factory(
        clock=clock, stores={"default": {"type": "sqlalchemy", "url": f"sqlite:///{db}"}}
    )
    scheduler.add_listener(events.append, TASK_EXECUTED | TASK_MISSED | TASK_REMOVED)
    scheduler.start()

    def runs(code: int, task_id: str) -> list[datetime]:
        return [e.scheduled_run_time for e in events if e.code == code and e.task_id == task_id]

    wait_until(lambda: any(e.code == TASK_REMOVED and e.task_id == "strict" for e in events))
    wait_until(lambda: len(runs(TASK_EXECUTED, "every")) == 5)
    # coalesce=True: the five missed runs fold into one, the latest.
    assert runs(TASK_EXECUTED, "coalesced") == [at(60)]
    # coalesce=False, no grace limit: every missed run happens, in order.
    assert runs(TASK_EXECUTED, "every") == [at(20), at(30), at(40), at(50), at(60)]
    # A one-off run 35 s late with a 5 s grace time is reported missed, never run.
    assert runs(TASK_MISSED, "strict") == [at(30)]
    assert runs(TASK_EXECUTED, "strict") == []
    assert runs(TASK_EXECUTED, "future") == []

    # From here on, runs happen at their scheduled times.
    events.clear()
    clock.set(at(120))
    wait_until(lambda: runs(TASK_EXECUTED, "future") == [at(120)])
    wait_until(lambda: len(runs(TASK_EXECUTED, "every")) == 6)
    assert runs(TASK_EXECUTED, "coalesced") == [at(120)]
    scheduler.shutdown()
    check = SQLAlchemyStore(f"sqlite:///{db}")
    check.start("check")
    stored = {task.id: task.next_run_time for task in check.get_all_tasks()}
    check.shutdown()
    assert stored == {"coalesced": at(130), "every": at(130)}
