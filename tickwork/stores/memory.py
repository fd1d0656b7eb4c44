"""Tasks kept in this process's memory: fast, and gone when the process exits."""

from __future__ import annotations

import contextlib
import heapq
import threading
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta

from tickwork.exceptions import ConflictIdError, TaskLookupError
from tickwork.stores.base import BaseStore, InProgressRun, NextRunTime, PendingRetries
from tickwork.tasks import Task
from tickwork.utils import timestamp

__all__ = ["MemoryStore"]

#: What a paused task's ``_store_entry`` holds: it is in the store but in no bucket.
_PAUSED = float("inf")

#: Stale ids tolerated beyond twice the task count before a sweep: small stores are not
#: swept on every other write. (Tests set it to 0 to make short runs sweep.)
_SWEEP_SLACK = 64


class MemoryStore(BaseStore):
    """Keeps tasks in a dict, and their ids in buckets by next run timestamp, with a
    binary heap of those timestamps for "what is due?".

    Tasks due at the same instant (a thousand tasks on one cron minute, a burst) share one
    bucket and one heap entry, so taking them costs one heap operation for all of them.
    A task's ``_store_entry`` slot holds the timestamp of the bucket it counts in; an id
    found in another bucket is stale and skipped (lazy deletion), which makes update and
    remove O(log n) and O(1). Stale ids are swept out once they outnumber the tasks.

    Shutting the scheduler down keeps the tasks: a restarted scheduler finds them again.
    """

    blocking = False
    poll_interval = None

    def __init__(self) -> None:
        super().__init__()
        self._tasks: dict[str, Task] = {}
        #: Timestamp -> the id (or list of ids) filed under it, stale ones included.
        self._buckets: dict[float, str | list[str]] = {}
        #: Every key of ``_buckets``, once, as a heap.
        self._heap: list[float] = []
        #: How many ids the buckets hold (live and stale): the sweep's trigger.
        self._filed = 0
        #: Ids taken by ``acquire_due_tasks`` and not yet settled by ``release_tasks``
        #: (they are in no bucket). A pass that fails in between has them filed back at
        #: the next acquire, so no task drops out; a write to one settles its claim.
        self._claimed: set[str] = set()
        #: Tag -> the ids of the tasks filed under it. A task changed in place (the
        #: scheduler updates the stored object itself) may leave its id under a tag it
        #: no longer has: :meth:`get_tasks_by_tag` checks each and drops those.
        self._tagged: dict[str, set[str]] = {}
        self._lock = threading.RLock()
        #: The default's pending retries (see BaseStore._retries), made now so that
        #: take_over_runs and next_retry_time can look into them without a call.
        self._pending_retries = PendingRetries()

    # -- the index ------------------------------------------------------------------------

    def _file(self, task: Task) -> None:
        """File ``task`` under its next run time and make that the bucket it counts in."""
        if task.next_run_time is None:
            task._store_entry = _PAUSED
            return
        ts = timestamp(task.next_run_time)
        task._store_entry = ts
        self._file_id(ts, task.id)

    def _file_id(self, ts: float, task_id: str) -> None:
        bucket = self._buckets.get(ts)
        if bucket is None:
            self._buckets[ts] = task_id
            heapq.heappush(self._heap, ts)
        elif type(bucket) is str:
            self._buckets[ts] = [bucket, task_id]
        else:
            bucket.append(task_id)  # type: ignore[union-attr]
        self._filed += 1

    def _sweep_if_needed(self) -> None:
        if self._filed > 2 * len(self._tasks) + _SWEEP_SLACK:
            self._sweep()

    def _sweep(self) -> None:
        """Rebuild the buckets from the live tasks: stale ids outnumber them."""
        self._buckets.clear()
        self._heap.clear()
        self._filed = 0
        for task in self._tasks.values():
            # Claimed tasks stay out: settling the claim files them. (Waiting for no claim
            # instead would let a claim a failed pass left grow the buckets without bound.)
            if task._store_entry != _PAUSED and task.id not in self._claimed:
                self._file_id(task._store_entry, task.id)

    def _is_live(self, task_id: str, ts: float) -> Task | None:
        task = self._tasks.get(task_id)
        if task is None or task._store_entry != ts or task_id in self._claimed:
            return None
        return task

    def _own(self, task: Task) -> Task:
        """The object to keep for ``task``: itself, or a shallow copy when another memory
        store already holds that very object (the filing lives on the object, and one
        object cannot carry two)."""
        if task._store_entry is not None and self._tasks.get(task.id) is not task:
            return task._shallow_copy()
        return task

    # -- writes ---------------------------------------------------------------------------

    def add_task(self, task: Task) -> None:
        """Store a new task (see :meth:`BaseStore.add_task`)."""
        with self._lock:
            tasks = self._tasks
            if task.id in tasks:
                raise ConflictIdError(task.id)
            if task._store_entry is not None:
                task = self._own(task)
            task.store_alias = self.alias
            tasks[task.id] = task
            self._file(task)
            if task.tags:
                self._index_tags(task)
            if self._filed > 2 * len(tasks) + _SWEEP_SLACK:
                self._sweep()

    def add_tasks(self, tasks: Iterable[Task]) -> None:
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
            stored = self._tasks.get(task.id)
            if stored is None:
                raise TaskLookupError(task.id, self.alias)
            filed = stored._store_entry
            # The write settles a claim: the task is filed where the write puts it, and
            # nothing refiles it later under the time it was claimed at (that entry
            # would be stale, and the task would never come due again).
            was_claimed = task.id in self._claimed
            self._claimed.discard(task.id)
            if stored is not task:
                stored._store_entry = None
                task = self._own(task)
            task.store_alias = self.alias
            self._tasks[task.id] = task
            if task.tags:
                self._index_tags(task)
            new_ts = _PAUSED if task.next_run_time is None else timestamp(task.next_run_time)
            if new_ts == filed and not was_claimed:
                task._store_entry = filed  # already filed there: nothing to move
            else:
                self._file(task)
                self._sweep_if_needed()

    def remove_task(self, task_id: str) -> None:
        """Delete a task (see :meth:`BaseStore.remove_task`)."""
        with self._lock:
            task = self._tasks.pop(task_id, None)
            if task is None:
                raise TaskLookupError(task_id, self.alias)
            task._store_entry = None
            for tag in task.tags:
                self._unindex_tag(tag, task_id)
            # Its claim goes too: refiling it would touch a task added later with this id.
            self._claimed.discard(task_id)

    def remove_all_tasks(self) -> None:
        """Delete every task."""
        with self._lock:
            for task in self._tasks.values():
                task._store_entry = None
            self._tasks.clear()
            self._tagged.clear()
            self._buckets.clear()
            self._heap.clear()
            self._claimed.clear()
            self._filed = 0

    # -- the scheduler's processing pass ----------------------------------------------------

    def acquire_due_tasks(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> list[Task]:
        """Take up to ``limit`` due tasks out of their buckets (each once);
        :meth:`release_tasks` files them again under their new run times. Cheaper than
        peeking and restoring, which the pass would follow with an update per task."""
        now_ts = timestamp(now)
        due: list[Task] = []
        with self._lock:
            # (The checks of _refile_claimed and _is_live inline: under a spread load this
            # runs at every wake-up, for a single task, and each call costs a frame.)
            if self._claimed:
                self._refile_claimed()
            heap, buckets, claimed, tasks = self._heap, self._buckets, self._claimed, self._tasks
            while heap and heap[0] <= now_ts and len(due) < limit:
                ts = heap[0]
                bucket = buckets[ts]
                if type(bucket) is str:  # one task at this instant: the spread load's case
                    task = tasks.get(bucket)
                    if task is not None and task._store_entry == ts and bucket not in claimed:
                        claimed.add(bucket)
                        due.append(task)
                    self._filed -= 1
                    del buckets[ts]
                    heapq.heappop(heap)
                    continue
                room = limit - len(due)
                taken, rest = bucket[:room], bucket[room:]
                for task_id in taken:
                    task = self._is_live(task_id, ts)
                    if task is not None:
                        claimed.add(task_id)
                        due.append(task)
                self._filed -= len(taken)
                if rest:
                    buckets[ts] = rest  # the batch is full; the rest wait for the next one
                else:
                    del buckets[ts]
                    heapq.heappop(heap)
        return due

    def release_tasks(
        self,
        owner: str,
        updated: Iterable[Task],
        removed: Iterable[str],
        runs: Iterable[tuple[Task, datetime]] = (),
        runs_expire: datetime | None = None,
    ) -> Collection[str]:
        """Write back what :meth:`acquire_due_tasks` handed out: advanced tasks are filed
        under their new time, finished ones deleted, and anything claimed but not
        mentioned is filed back unchanged. A task deleted meanwhile stays deleted."""
        with self._lock:
            claimed, self._claimed = self._claimed, set()
            tasks, buckets, alias = self._tasks, self._buckets, self.alias
            for task in updated:
                task_id = task.id
                claimed.discard(task_id)
                stored = tasks.get(task_id)
                if stored is None:
                    continue
                if stored is not task:
                    stored._store_entry = None
                    task = self._own(task)  # not acquired here: maybe another store's
                task.store_alias = alias
                tasks[task_id] = task
                next_run_time = task.next_run_time
                ts = _PAUSED if next_run_time is None else timestamp(next_run_time)
                if ts != _PAUSED and ts not in buckets:
                    # _file and _file_id inline for a time nothing else is filed under
                    # (the spread load's case: two calls less per task, at every wake-up)
                    task._store_entry = ts
                    buckets[ts] = task_id
                    heapq.heappush(self._heap, ts)
                    self._filed += 1
                else:
                    self._file(task)
                if task.tags:
                    self._index_tags(task)
            for task_id in removed:
                claimed.discard(task_id)
                with contextlib.suppress(TaskLookupError):
                    self.remove_task(task_id)
            if claimed:
                self._refile(claimed)
            if self._filed > 2 * len(tasks) + _SWEEP_SLACK:
                self._sweep()
        return ()

    def take_over_runs(
        self, now: datetime, limit: int, owner: str, expires: datetime
    ) -> list[InProgressRun]:
        """Hand out the pending retries due at ``now`` (see
        :meth:`BaseStore.take_over_runs`)."""
        # Every batch asks, and there are rarely any: answered here without the two
        # calls of the default (this runs at every wake-up of a spread load).
        retries = self._pending_retries
        if not retries._retries:
            return []
        return retries.take_due(now, limit)

    def next_retry_time(self) -> datetime | None:
        """When the earliest pending retry is due (see :meth:`BaseStore.next_retry_time`)."""
        retries = self._pending_retries
        if not retries._retries:  # (as in take_over_runs)
            return None
        return retries.next_due()

    def _refile_claimed(self) -> None:
        # A pass failed between acquire and release: its tasks go back.
        claimed, self._claimed = self._claimed, set()
        self._refile(claimed)

    def _refile(self, task_ids: Iterable[str]) -> None:
        # Under their run time now, not the one they were claimed at: a pass that failed
        # may have advanced some in place (and started their runs) before failing.
        for task_id in task_ids:
            task = self._tasks.get(task_id)
            if task is not None:
                self._file(task)

    # -- tags -----------------------------------------------------------------------------

    def _index_tags(self, task: Task) -> None:
        for tag in task.tags:
            self._tagged.setdefault(tag, set()).add(task.id)

    def _unindex_tag(self, tag: str, task_id: str) -> None:
        ids = self._tagged.get(tag)
        if ids is not None:
            ids.discard(task_id)
            if not ids:
                del self._tagged[tag]

    def get_tasks_by_tag(self, tag: str) -> list[Task]:
        """Return the tasks with ``tag`` (see :meth:`BaseStore.get_tasks_by_tag`), from the
        tag index: O(k) for the k tasks under it."""
        with self._lock:
            found: list[Task] = []
            for task_id in list(self._tagged.get(tag, ())):
                task = self._tasks.get(task_id)
                if task is not None and tag in task.tags:
                    found.append(task)
                else:  # removed, or its tags changed in place
                    self._unindex_tag(tag, task_id)
        found.sort(key=_sort_key)
        return found

    # The tag operations: one pass over the tag's ids under the lock, each change made by
    # the store's own update/remove (so they follow whatever layout those keep).

    def pause_tasks_by_tag(self, tag: str) -> list[Task]:
        """Pause the tasks with ``tag`` in one pass under the lock (see
        :meth:`BaseStore.pause_tasks_by_tag`)."""
        with self._lock:
            paused = [task for task in self.get_tasks_by_tag(tag) if task.next_run_time is not None]
            for task in paused:
                task.next_run_time = None
                self.update_task(task)
        return paused

    def resume_tasks_by_tag(
        self, tag: str, next_run_time: NextRunTime
    ) -> tuple[list[Task], list[Task]]:
        """Resume the paused tasks with ``tag`` in one pass under the lock (see
        :meth:`BaseStore.resume_tasks_by_tag`)."""
        resumed: list[Task] = []
        removed: list[Task] = []
        with self._lock:
            for task in self.get_tasks_by_tag(tag):
                if task.next_run_time is not None:
                    continue
                when = next_run_time(task)
                if when is None:
                    self.remove_task(task.id)
                    removed.append(task)
                elif when is not False:
                    task.next_run_time = when
                    self.update_task(task)
                    resumed.append(task)
        return resumed, removed

    def remove_tasks_by_tag(self, tag: str) -> list[Task]:
        """Delete the tasks with ``tag`` in one pass under the lock."""
        with self._lock:
            removed = self.get_tasks_by_tag(tag)
            for task in removed:
                self.remove_task(task.id)
        return removed

    # -- reads ----------------------------------------------------------------------------

    def lookup_task(self, task_id: str) -> Task | None:
        """Return the task with this id, or ``None``."""
        return self._tasks.get(task_id)

    def get_due_tasks(self, now: datetime, limit: int | None = None) -> list[Task]:
        """Return due tasks, earliest first, without taking them; O(k log n) for the k
        buckets read (up to ``limit`` tasks' worth, not every due one)."""
        if limit is not None and limit <= 0:
            return []
        now_ts = timestamp(now)
        due: list[Task] = []
        with self._lock:
            heap = self._heap
            popped: list[float] = []  # the heap is left as it was
            seen: set[str] = set()
            try:
                while heap and heap[0] <= now_ts:
                    ts = heapq.heappop(heap)
                    popped.append(ts)
                    bucket = self._buckets[ts]
                    for task_id in [bucket] if type(bucket) is str else bucket:
                        task = self._is_live(task_id, ts)
                        if task is not None and task_id not in seen:
                            seen.add(task_id)
                            due.append(task)
                            if limit is not None and len(due) >= limit:
                                return due
            finally:
                for ts in popped:
                    heapq.heappush(heap, ts)
        return due

    def get_next_run_time(self) -> datetime | None:
        """Return the earliest next run time; O(1) after sweeping stale ids off the top."""
        with self._lock:
            heap = self._heap
            if heap and not self._claimed:
                # The common case, without the general one's lists and generator (it runs
                # at every wake-up): no claims pending, and one live task at the top.
                ts = heap[0]
                bucket = self._buckets[ts]
                if type(bucket) is str:
                    task = self._tasks.get(bucket)
                    if task is not None and task._store_entry == ts:
                        return task.next_run_time
            candidates = [self._tasks[i] for i in self._claimed if i in self._tasks]
            heap, buckets = self._heap, self._buckets
            while heap:
                ts = heap[0]
                bucket = buckets[ts]
                ids = [bucket] if type(bucket) is str else bucket
                first_live = next(
                    (task for i in ids if (task := self._is_live(i, ts)) is not None), None
                )
                if first_live is not None:
                    candidates.append(first_live)
                    break
                # Nothing live under the earliest time: drop that bucket.
                self._filed -= len(ids)
                del buckets[ts]
                heapq.heappop(heap)
            times = [t.next_run_time for t in candidates if t.next_run_time is not None]
            return min(times, key=datetime.timestamp) if times else None

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
    return (0, timestamp(task.next_run_time))
