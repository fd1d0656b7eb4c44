"""A writer killed with SIGKILL mid-way loses no task whose ``add_task`` returned.

A real subprocess adds tasks one by one and prints each id once ``add_task`` returned;
the test kills it at an arbitrary moment (three times, on the same store), then checks
with a fresh store object that every printed id is stored and that everything loads.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy
from storetest_funcs import make_task

from tickwork.stores import BaseStore
from tickwork.stores.file import FileStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL"),
]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

WRITER = """
import sys
from storetest_funcs import at, make_task
from tickwork.stores.file import FileStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore

kind, location, first = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = FileStore(location) if kind == "file" else SQLAlchemyStore(f"sqlite:///{location}")
store.start("default")
print("ready", flush=True)
index = first
while True:
    task_id = f"task-{index:06d}"
    store.add_task(make_task(task_id, at(index % 1000)))
    print(task_id, flush=True)  # only after add_task returned
    index += 1
"""


def open_store(kind: str, location: Path) -> BaseStore:
    if kind == "file":
        return FileStore(location)
    return SQLAlchemyStore(f"sqlite:///{location}")


def run_and_kill(kind: str, location: Path, first: int) -> list[str]:
    """Start a writer, let it add a random number of tasks, SIGKILL it; return the ids it
    printed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, kind, str(location), str(first)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready"
    printed: list[str] = []
    target = random.randint(20, 120)
    deadline = time.monotonic() + 5
    while len(printed) < target and time.monotonic() < deadline:
        line = writer.stdout.readline()
        if not line:
            break
        printed.append(line.strip())
    writer.send_signal(signal.SIGKILL)
    # Ids printed between our last read and the kill are still in the pipe, and some may
    # sit in the buffer readline() filled: read through that buffer to the end of the
    # pipe. (communicate() with a timeout reads the raw pipe and skips that buffer, so
    # those ids looked stored without being acknowledged.)
    with writer.stdout:
        rest = writer.stdout.read()
    writer.wait(timeout=10)
    printed.extend(line.strip() for line in rest.splitlines() if line.strip())
    assert writer.returncode == -signal.SIGKILL
    return printed


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_no_acknowledged_task_is_lost_when_the_writer_is_killed(kind: str, tmp_path: Path) -> None:
    location = tmp_path / ("tasks" if kind == "file" else "tasks.sqlite")
    acknowledged: list[str] = []
    for round_ in range(3):
        acknowledged += run_and_kill(kind, location, first=round_ * 100_000)
        store = open_store(kind, location)
        store.start("check")
        stored = {task.id for task in store.get_all_tasks()}
        missing = [task_id for task_id in acknowledged if task_id not in stored]
        assert missing == [], f"round {round_}: lost {missing}"
        # At most one task per round was written but not yet acknowledged.
        assert len(stored) <= len(acknowledged) + round_ + 1
        # The store still works normally after the crash.
        store.add_task(make_task(f"after-{round_}"))
        store.remove_task(f"after-{round_}")
        store.shutdown()
    if kind == "file":
        assert not (location / "corrupt").exists()
    else:
        engine = sqlalchemy.create_engine(f"sqlite:///{location}")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        engine.dispose()
