"""Tasks kept in this process's memory: fast, and gone when the process exits."""

from __future__ import annotations

import heapq
import threading
from datetime import datetime

from tickwork.exceptions import ConflictIdError, TaskLookupError
from tickwork.stores.base import BaseStore
from tickwork.tasks import Task

__all__ = ["MemoryStore"]

# A heap entry: (next run timestamp, task id). The entry that counts for a task is the one
# in ``_entries``; any other entry for that id in the heap is stale and skipped (lazy
# deletion), which makes update and remove O(log n) and O(1) instead of O(n).
_Entry = tuple[float, str]


class MemoryStore(BaseStore):
    """Keeps tasks in a dict, with a binary heap on next run time for "what is due?".

    Costs, for n tasks: add and update O(log n); remove O(1) amortised; next run time and
    each due task O(log n); stale heap entries are compacted once they outnumber the live
    ones, which keeps the amortised cost per operation constant.

    Shutting the scheduler down keeps the tasks: a restarted scheduler finds them again.
    """

    blocking = False
    poll_interval = None

    def __init__(self) -> None:
        super().__init__()
        self._tasks: dict[str, Task] = {}
        self._entries: dict[str, _Entry] = {}
        self._heap: list[_Entry] = []
        self._lock = threading.RLock()

    # -- index maintenance ----------------------------------------------------------------

    def _index(self, task: Task) -> None:
        if task.next_run_time is None:
            self._entries.pop(task.id, None)
            return
        entry = (task.next_run_time.timestamp(), task.id)
        self._entries[task.id] = entry
        heapq.heappush(self._heap, entry)
        if len(self._heap) > 2 * len(self._entries) + 64:
            self._heap = list(self._entries.values())
            heapq.heapify(self._heap)

    def _drop_stale_top(self) -> None:
        heap, entries = self._heap, self._entries
        while heap and entries.get(heap[0][1]) is not heap[0]:
            heapq.heappop(heap)

    # -- writes ---------------------------------------------------------------------------

    def add_task(self, task: Task) -> None:
        """Store a new task (see :meth:`BaseStore.add_task`)."""
        with self._lock:
            if task.id in self._tasks:
                raise ConflictIdError(task.id)
            task.store_alias = self.alias
            self._tasks[task.id] = task
            self._index(task)

    def add_tasks(self, tasks: list[Task]) -> None:  # type: ignore[override]
        """Store several tasks; none is added if one id is taken."""
        tasks = list(tasks)
        with self._lock:
            seen: set[str] = set()
            for task in tasks:
                if task.id in self._tasks or task.id in seen:
                    raise ConflictIdError(task.id)
                seen.add(task.id)
            for task in tasks:
                self.add_task(task)

    def update_task(self, task: Task) -> None:
        """Replace the stored task (see :meth:`BaseStore.update_task`)."""
        with self._lock:
            if task.id not in self._tasks:
                raise TaskLookupError(task.id, self.alias)
            task.store_alias = self.alias
            self._tasks[task.id] = task
            entry = self._entries.get(task.id)
            new_ts = task.next_run_time.timestamp() if task.next_run_time else None
            if entry is None or entry[0] != new_ts:
                self._index(task)

    def remove_task(self, task_id: str) -> None:
        """Delete a task (see :meth:`BaseStore.remove_task`)."""
        with self._lock:
            if self._tasks.pop(task_id, None) is None:
                raise TaskLookupError(task_id, self.alias)
            self._entries.pop(task_id, None)

    def remove_all_tasks(self) -> None:
        """Delete every task."""
        with self._lock:
            self._tasks.clear()
            self._entries.clear()
            self._heap.clear()

    # -- reads ----------------------------------------------------------------------------

    def lookup_task(self, task_id: str) -> Task | None:
        """Return the task with this id, or ``None``."""
        return self._tasks.get(task_id)

    def get_due_tasks(self, now: datetime, limit: int | None = None) -> list[Task]:
        """Return due tasks, earliest first; O(k log n) for k due tasks."""
        now_ts = now.timestamp()
        due: list[Task] = []
        popped: list[_Entry] = []
        with self._lock:
            heap, entries = self._heap, self._entries
            while heap and (limit is None or len(due) < limit):
                entry = heap[0]
                if entries.get(entry[1]) is not entry:
                    heapq.heappop(heap)
                    continue
                if entry[0] > now_ts:
                    break
                popped.append(heapq.heappop(heap))
                due.append(self._tasks[entry[1]])
            # Peeking must not change the index: put the live entries back.
            for entry in popped:
                heapq.heappush(heap, entry)
        return due

    def get_next_run_time(self) -> datetime | None:
        """Return the earliest next run time; O(1) after dropping stale entries."""
        with self._lock:
            self._drop_stale_top()
            if not self._heap:
                return None
            return self._tasks[self._heap[0][1]].next_run_time

    def get_all_tasks(self) -> list[Task]:
        """Return every task, by next run time, paused last."""
        with self._lock:
            tasks = list(self._tasks.values())
        tasks.sort(key=_sort_key)
        return tasks

    def __len__(self) -> int:
        return len(self._tasks)


def _sort_key(task: Task) -> tuple[int, float]:
    if task.next_run_time is None:
        return (1, 0.0)
    return (0, task.next_run_time.timestamp())
