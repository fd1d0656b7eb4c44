"""Extending: a store of your own. This one keeps serialized tasks in a dict, the way a
key-value database would (swap the dict for your client's get/set/delete)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from tickwork import BackgroundScheduler, FakeClock
from tickwork.exceptions import ConflictIdError, TaskLookupError
from tickwork.executors import DebugExecutor
from tickwork.serializers import JSONSerializer
from tickwork.stores import BaseStore, store_registry
from tickwork.tasks import Task


class KeyValueStore(BaseStore):
    """Tasks as serialized bytes under their id; a scan answers "what is due?"."""

    blocking = True  # real I/O: async schedulers call it from a worker thread
    poll_interval = 1.0  # other processes may write to it: look again every second

    def __init__(self) -> None:
        super().__init__()
        # With a `serializer` attribute, BaseStore.validate_task() refuses, at add_task
        # time, a task this store could not keep (a lambda, an argument JSON can't hold).
        self.serializer = JSONSerializer()
        self._data: dict[str, bytes] = {}
        self._lock = threading.Lock()  # stores are called from several threads

    def _load(self, data: bytes) -> Task:
        task = self.serializer.deserialize(data)
        task.store_alias = self.alias  # tasks handed out carry the store's alias
        return task

    def add_task(self, task: Task) -> None:
        data = self.serializer.serialize(task)  # before writing anything
        with self._lock:
            if task.id in self._data:
                raise ConflictIdError(task.id)
            self._data[task.id] = data

    def update_task(self, task: Task) -> None:
        data = self.serializer.serialize(task)
        with self._lock:
            if task.id not in self._data:
                raise TaskLookupError(task.id, self.alias)
            self._data[task.id] = data

    def remove_task(self, task_id: str) -> None:
        with self._lock:
            if self._data.pop(task_id, None) is None:
                raise TaskLookupError(task_id, self.alias)

    def remove_all_tasks(self) -> None:
        with self._lock:
            self._data.clear()

    def lookup_task(self, task_id: str) -> Task | None:
        with self._lock:
            data = self._data.get(task_id)
        return None if data is None else self._load(data)

    def get_all_tasks(self) -> list[Task]:
        with self._lock:
            tasks = [self._load(data) for data in self._data.values()]
        return sorted(tasks, key=_by_next_run_time)

    def get_due_tasks(self, now: datetime, limit: int | None = None) -> list[Task]:
        due = [
            t
            for t in self.get_all_tasks()
            if t.next_run_time is not None and t.next_run_time <= now
        ]
        return due[:limit]

    def get_next_run_time(self) -> datetime | None:
        times = [t.next_run_time for t in self.get_all_tasks() if t.next_run_time is not None]
        return min(times, default=None)


def _by_next_run_time(task: Task) -> tuple[bool, float]:
    """Order by next run time, paused tasks (None) last."""
    when = task.next_run_time
    return (when is None, when.timestamp() if when else 0.0)


# Optional: an alias for stores={"kv": {"type": "keyvalue"}}.
store_registry.register("keyvalue", KeyValueStore)

# -- check it ---------------------------------------------------------------------------

runs: list[str] = []


def nightly_backup(target: str) -> None:  # stored by reference: a module-level function
    runs.append(target)


clock = FakeClock(datetime(2026, 1, 1, 23, 59, 59, tzinfo=UTC))
scheduler = BackgroundScheduler(
    stores={"default": {"type": "keyvalue"}},
    executors={"default": DebugExecutor()},
    clock=clock,
    timezone="UTC",
)
scheduler.add_task(nightly_backup, "cron", hour=0, args=["s3://backups"], id="backup")
with scheduler:
    stored = scheduler.get_task("backup")
    assert stored is not None
    assert stored.next_run_time == datetime(2026, 1, 2, 0, 0, tzinfo=UTC)
    clock.advance(seconds=1)  # midnight: the scheduler thread runs the backup
    deadline = time.monotonic() + 2
    while not runs and time.monotonic() < deadline:
        time.sleep(0.01)
    assert runs == ["s3://backups"]
