"""Tasks kept as files in a directory: one file per task, each written atomically.

Layout of ``directory``:

* ``<escaped id>.task``: one task. A one-line JSON header (task id, next run time,
  payload length and CRC-32) and then the serializer's bytes (see
  :mod:`tickwork.stores._task_file`).
* ``.tmp-*``: files being written. A writer fills a temporary file, fsyncs it, renames
  it over the task file (``os.replace``, atomic) and fsyncs the directory, so a reader
  or a crash sees the old task or the new one, never a mix.
* ``.lock``: held by writers (``flock``), so several processes can share the directory.
* ``corrupt/``: task files (and retry files) that could not be read, moved aside with a
  log line.
* ``retries/``: pending retries, one file per run, written the same way (see
  :mod:`tickwork.stores._retry_file`): a retry survives a restart of the scheduler.

Several processes (or store objects) may use one directory. Each keeps an in-memory
index of next run times and refreshes it before answering a query when the directory's
modification time changed, re-reading only the files whose size, inode or mtime
changed. What is supported: tickwork stores in any number of processes on one local
file system. What is not: editing task files in place (write a new file and rename it,
as tickwork does), or network file systems without working ``flock`` and ``rename``.

Cost: a query after a change stats every task file, so this store suits up to a few
thousand tasks; use the SQL or Redis store beyond that.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import shutil
import threading
import time
from collections.abc import Collection, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from filelock import FileLock

from tickwork.exceptions import ConflictIdError, StoreUnavailableError, TaskLookupError
from tickwork.runs.base import RunLog
from tickwork.security.files import check_private_directory
from tickwork.serializers import BaseSerializer, resolve_serializer
from tickwork.serializers._broken import BrokenTasks
from tickwork.stores._claimed import ClaimedRecords, merge_changed
from tickwork.stores._retry_file import RetryFiles, write_atomically
from tickwork.stores._task_file import (
    StatKey,
    Unreadable,
    encode,
    file_name_for,
    fsync_directory,
    is_task_file,
    parse,
    stat_key,
)
from tickwork.stores.base import BaseStore, InProgressRun, NextRunTime, PendingRetry
from tickwork.tasks import Task

__all__ = ["FileStore", "file_name_for"]

# A temporary file this old belongs to a writer that died; younger ones may be in use.
_STALE_TEMP_SECONDS = 3600.0
# Directory timestamps have a coarse granularity (a kernel tick); a change made in the
# same tick as our last scan would not move the mtime, so a directory modified this
# recently is scanned again on the next query.
_RACY_NS = 2_000_000_000


class FileStore(BaseStore):
    """One file per task in ``directory`` (see the module docstring for the layout).

    ``directory`` is created with mode 0o700 and task files with 0o600: task arguments
    may be private. ``cleanup_directory=True`` deletes the directory, tasks included, on
    :meth:`shutdown` (for tests and throw-away schedulers). ``serializer`` is a
    :class:`~tickwork.serializers.base.BaseSerializer`, ``"json"`` (the default) or
    ``"pickle"``.

    A directory owned by another user, or writable by group or others, is refused
    (:class:`~tickwork.exceptions.UnsafePathError`) when the store starts: anyone who
    can write there can plant a task file that this scheduler would run.
    ``allow_shared_directory=True`` accepts it (every writer is trusted, or records
    are signed: ``signing_key``, see ``docs/security.md``). Everything else: see
    :class:`~tickwork.stores.base.BaseStore`.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        cleanup_directory: bool = False,
        serializer: BaseSerializer | str | None = None,
        allow_shared_directory: bool = False,
    ) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.allow_shared_directory = allow_shared_directory
        self.cleanup_directory = cleanup_directory
        self.serializer = resolve_serializer(serializer)
        self._lock = threading.RLock()
        self._file_lock = FileLock(
            self.directory / ".lock", mode=0o600, thread_local=False, preserve_lock_file=True
        )
        self._broken = BrokenTasks(self.logger)
        #: The bytes of each task a pass read, until its write-back (see _claimed): a
        #: change another process makes meanwhile (``tickwork tasks pause``) is kept.
        self._claimed = ClaimedRecords()
        self._retry_files = RetryFiles(self.directory, self.serializer, self.logger)
        self._prepared = False
        self._reset_index()

    def _install_serializer(self, serializer: BaseSerializer) -> None:
        """See :meth:`BaseStore._install_serializer`: the retry files use it too."""
        self.serializer = serializer
        self._retry_files._serializer = serializer

    def _reset_index(self) -> None:
        self._files: dict[str, tuple[StatKey, str]] = {}  # file name -> (stat, task id)
        self._times: dict[str, tuple[float, str]] = {}  # task id -> live heap entry
        self._heap: list[tuple[float, str]] = []
        self._dir_mtime_ns = -1
        self._racy = True
        self._retry_files.reset()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, alias: str) -> None:
        """Create the directory if needed, drop stale temporary files, build the index."""
        super().start(alias)
        with self._lock:
            self._prepared = False
            self._reset_index()
            self._prepare()

    def shutdown(self) -> None:
        """Forget the index; with ``cleanup_directory`` delete the directory."""
        with self._lock:
            self._prepared = False
            self._reset_index()
            self._broken.clear()
            self._claimed.clear()
            if self.cleanup_directory:
                shutil.rmtree(self.directory, ignore_errors=True)

    def _prepare(self) -> None:
        if self._prepared:
            return
        with self._io_errors("prepare the directory"):
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.allow_shared_directory:
            check_private_directory(self.directory)  # (outside: not a passing I/O error)
        with self._io_errors("clean up the directory"):
            now = time.time()
            for entry in os.scandir(self.directory):
                if entry.name.startswith(".tmp-"):
                    with contextlib.suppress(OSError):
                        if now - entry.stat().st_mtime > _STALE_TEMP_SECONDS:
                            os.unlink(entry.path)
        self._prepared = True
        self._refresh()

    # -- writes ---------------------------------------------------------------------------

    def add_task(self, task: Task) -> None:
        """Store a new task (see :meth:`BaseStore.add_task`)."""
        self.add_tasks([task])

    def add_tasks(self, tasks: Iterable[Task]) -> None:
        """Store several new tasks; on a duplicate id or a failed write none is kept."""
        blobs = [(task, self._encode(task)) for task in tasks]
        seen: set[str] = set()
        for task, _ in blobs:
            if task.id in seen:
                raise ConflictIdError(task.id)
            seen.add(task.id)
        with self._writing("add tasks"):
            for task, _ in blobs:
                if (self.directory / file_name_for(task.id)).exists():
                    raise ConflictIdError(task.id)
            written: list[Task] = []
            try:
                for task, blob in blobs:
                    self._write(task, blob)
                    written.append(task)
            except BaseException:
                for task in written:
                    self._unlink(task.id)
                raise
            finally:
                fsync_directory(self.directory)
        for task, _ in blobs:
            task.store_alias = self.alias

    def update_task(self, task: Task) -> None:
        """Replace the stored task (see :meth:`BaseStore.update_task`)."""
        blob = self._encode(task)
        with self._writing("update a task"):
            if not (self.directory / file_name_for(task.id)).exists():
                raise TaskLookupError(task.id, self.alias)
            self._write(task, blob)
            fsync_directory(self.directory)
        task.store_alias = self.alias

    def remove_task(self, task_id: str) -> None:
        """Delete a task (see :meth:`BaseStore.remove_task`)."""
        with self._writing("remove a task"):
            if not self._unlink(task_id):
                raise TaskLookupError(task_id, self.alias)
            fsync_directory(self.directory)

    def remove_all_tasks(self) -> None:
        """Delete every task file (files moved to ``corrupt/`` stay)."""
        with self._writing("remove all tasks"):
            for entry in os.scandir(self.directory):
                if is_task_file(entry.name):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
            fsync_directory(self.directory)
            self._reset_index()
            self._broken.clear()

    def release_tasks(
        self,
        owner: str,
        updated: Iterable[Task],
        removed: Iterable[str],
        runs: Iterable[tuple[Task, datetime]] = (),
        runs_expire: datetime | None = None,
    ) -> Collection[str]:
        """Write a pass's results under one lock and with one directory sync (``runs`` are
        not recorded: this store has no leases). A task deleted meanwhile stays deleted; a
        task changed meanwhile keeps the change (see :mod:`._claimed`)."""
        tasks = list(updated)
        removed = list(removed)
        blobs = [(task, self._encode(task)) for task in tasks]
        try:
            with self._writing("store processed tasks"):
                for task, blob in blobs:
                    if self._unchanged_since_claim(task.id, task):
                        self._write(task, blob)
                        task.store_alias = self.alias
                for task_id in removed:
                    if self._unchanged_since_claim(task_id, None):
                        self._unlink(task_id)
                fsync_directory(self.directory)
        finally:
            self._claimed.forget([task.id for task in tasks] + removed)
        return ()

    def _unchanged_since_claim(self, task_id: str, advanced: Task | None) -> bool:
        """Whether the write-back may write (or delete) ``task_id`` as the pass decided:
        its file still holds the bytes the pass read. Otherwise store the merge of the
        change and the pass's advance here and say no. The caller holds the write lock."""
        name = file_name_for(task_id)
        if not (self.directory / name).exists():
            return False  # deleted meanwhile (by anyone): stays deleted
        was = self._claimed.blob(task_id)
        if was is None:
            return True
        current, payload = self._load_read(name)
        if payload == was or current is None:
            return True  # (a file that no longer loads is replaced, as before)
        merged = merge_changed(current, self._claimed.next_run_time(task_id), advanced)
        self.logger.info(
            "task %r was changed while this scheduler held it for its runs; the change is "
            "kept (its next run time moved past the runs made, unless the change set it)",
            task_id,
            extra={"task_id": task_id},
        )
        if merged is None:
            self._unlink(task_id)
        else:
            self._write(merged, self._encode(merged))
        return False

    # -- acting on a tag: one pass under the file lock, one directory sync ---------------

    def _tagged_locked(self, tag: str) -> list[Task]:
        """The loadable tasks with ``tag``, read under the write lock (the caller holds
        it): this store has no tag index, so every task file is read."""
        self._refresh()
        tasks = [task for task in map(self._load, list(self._files)) if task is not None]
        return [task for task in tasks if tag in task.tags]

    def pause_tasks_by_tag(self, tag: str) -> list[Task]:
        """Pause the tasks with ``tag`` (see :meth:`BaseStore.pause_tasks_by_tag`): one
        pass under the file lock, one directory sync."""
        with self._writing("pause tasks by tag"):
            paused = [t for t in self._tagged_locked(tag) if t.next_run_time is not None]
            for task in paused:
                task.next_run_time = None
                self._write(task, self._encode(task))
            if paused:
                fsync_directory(self.directory)
        return paused

    def resume_tasks_by_tag(
        self, tag: str, next_run_time: NextRunTime
    ) -> tuple[list[Task], list[Task]]:
        """Resume the paused tasks with ``tag`` (see :meth:`BaseStore.resume_tasks_by_tag`):
        one pass under the file lock, one directory sync."""
        resumed: list[Task] = []
        removed: list[Task] = []
        with self._writing("resume tasks by tag"):
            for task in self._tagged_locked(tag):
                if task.next_run_time is not None:
                    continue
                when = next_run_time(task)
                if when is None:
                    self._unlink(task.id)
                    removed.append(task)
                elif when is not False:
                    task.next_run_time = when
                    self._write(task, self._encode(task))
                    resumed.append(task)
            if resumed or removed:
                fsync_directory(self.directory)
        return resumed, removed

    def remove_tasks_by_tag(self, tag: str) -> list[Task]:
        """Delete the tasks with ``tag``: one pass under the file lock, one directory
        sync. A task file that cannot be read is left (its tags are unknown)."""
        with self._writing("remove tasks by tag"):
            removed = self._tagged_locked(tag)
            for task in removed:
                self._unlink(task.id)
            if removed:
                fsync_directory(self.directory)
        return removed

    def _encode(self, task: Task) -> bytes:
        payload = self.serializer.serialize(task)
        when = task.next_run_time.timestamp() if task.next_run_time is not None else None
        return encode(task.id, when, payload)

    def _write(self, task: Task, blob: bytes) -> None:
        """Atomically replace the task's file; the caller holds the write lock."""
        name = file_name_for(task.id)
        stat = write_atomically(self.directory, name, blob)
        when = task.next_run_time.timestamp() if task.next_run_time is not None else None
        self._index(name, stat_key(stat), task.id, when)
        self._broken.forget(task.id)

    def _unlink(self, task_id: str) -> bool:
        name = file_name_for(task_id)
        try:
            os.unlink(self.directory / name)
        except FileNotFoundError:
            return False
        finally:
            self._drop(name)
            self._broken.forget(task_id)
        return True

    @contextlib.contextmanager
    def _writing(self, action: str) -> Iterator[None]:
        with self._lock, self._io_errors(action):
            self._prepare()
            with self._file_lock:
                yield

    @contextlib.contextmanager
    def _io_errors(self, action: str) -> Iterator[None]:
        # Disk full, permissions, a vanished mount: the scheduler retries later.
        try:
            yield
        except OSError as exc:
            raise StoreUnavailableError(
                f"file store {self.alias!r} could not {action} in {str(self.directory)!r}: {exc}"
            ) from exc

    # -- pending retries (files in retries/, see tickwork.stores._retry_file) -------------

    def retry_runs(self, owner: str, retries: Collection[PendingRetry]) -> None:
        """Keep each retry in a file of its own under ``retries/``, durably (see
        :meth:`BaseStore.retry_runs`; this store has no records of runs, so ``owner``
        does not matter)."""
        if not retries:
            return
        with self._writing("record pending retries"):
            self._retry_files.add(retries)

    def take_over_runs(
        self, now: datetime, limit: int, owner: str, expires: datetime
    ) -> list[InProgressRun]:
        """Hand out (and delete) up to ``limit`` pending retries due at ``now``, earliest
        first. A retry whose task cannot be loaded is logged and left in place."""
        # Called at every pass: without a retry due, a look at the directory's mtime
        # (no file lock) is all it costs.
        due = self.next_retry_time()
        if due is None or due > now:
            return []
        with self._writing("take due retries"):
            return self._retry_files.take_due(now, limit, self.alias)

    def next_retry_time(self) -> datetime | None:
        """When the earliest pending retry is due."""
        with self._lock, self._io_errors("read the pending retries"):
            self._prepare()
            return self._retry_files.next_due()

    def cancel_runs(self, task_id: str, run_time: datetime | None = None) -> int:
        """Delete the pending retries of ``task_id`` (of its run at ``run_time`` only,
        when given); return how many (see :meth:`BaseStore.cancel_runs`)."""
        with self._writing("delete pending retries"):
            return self._retry_files.remove(task_id, run_time)

    # -- the index ------------------------------------------------------------------------

    def _index(self, name: str, key: StatKey, task_id: str, when: float | None) -> None:
        self._files[name] = (key, task_id)
        if when is None:
            self._times.pop(task_id, None)
            return
        entry = (when, task_id)
        self._times[task_id] = entry
        heapq.heappush(self._heap, entry)
        if len(self._heap) > 2 * len(self._times) + 64:
            self._heap = list(self._times.values())
            heapq.heapify(self._heap)

    def _drop(self, name: str) -> None:
        known = self._files.pop(name, None)
        if known is not None:
            self._times.pop(known[1], None)

    def _refresh(self) -> None:
        """Bring the index up to date with the directory (the caller holds ``_lock``)."""
        with self._io_errors("read the directory"):
            self._prepare()
            dir_stat = os.stat(self.directory)
            if dir_stat.st_mtime_ns == self._dir_mtime_ns and not self._racy:
                return
            present: set[str] = set()
            for entry in os.scandir(self.directory):
                if not is_task_file(entry.name):
                    continue
                try:
                    key = stat_key(entry.stat())
                except FileNotFoundError:
                    continue
                present.add(entry.name)
                known = self._files.get(entry.name)
                if known is None or known[0] != key:
                    self._reindex(entry.name)
            for name in set(self._files) - present:
                self._drop(name)
        # The mtime read *before* scanning: a change during the scan moves it again.
        self._dir_mtime_ns = dir_stat.st_mtime_ns
        self._racy = time.time_ns() - dir_stat.st_mtime_ns < _RACY_NS

    def _reindex(self, name: str) -> None:
        read = self._read(name)
        if read is None:
            self._drop(name)
            return
        key, task_id, when, _ = read
        self._drop(name)
        self._index(name, key, task_id, when)
        # A new or rewritten file (by another process, or by hand to fix a task that did
        # not load): its data gets a fresh try. Without this, a task known not to load
        # stayed skipped by the due and next-run-time queries, which never read it again.
        self._broken.forget(task_id)

    def _ordered_ids(self, max_time: float, count: int | None) -> list[tuple[float, str]]:
        """The live heap entries up to ``max_time``, earliest first, skipping known-broken
        tasks; at most ``count``. The heap is left as it was."""
        found: list[tuple[float, str]] = []
        popped: list[tuple[float, str]] = []
        heap, times = self._heap, self._times
        while heap and (count is None or len(found) < count):
            entry = heap[0]
            if times.get(entry[1]) is not entry:
                heapq.heappop(heap)
                continue
            if entry[0] > max_time:
                break
            popped.append(heapq.heappop(heap))
            if not self._broken.is_known(entry[1]):
                found.append(entry)
        for entry in popped:
            heapq.heappush(heap, entry)
        return found

    # -- reading files ----------------------------------------------------------------------

    def _read(self, name: str) -> tuple[StatKey, str, float | None, bytes] | None:
        """Read and check one task file; ``None`` when it is gone or unreadable."""
        path = self.directory / name
        try:
            with open(path, "rb") as stream:
                key = stat_key(os.fstat(stream.fileno()))
                raw = stream.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.logger.error("skipping task file %s: %s", path, exc)
            return None
        try:
            task_id, when, payload = parse(raw, name)
        except Unreadable as exc:
            if exc.quarantine:
                self._quarantine(name, key, str(exc))
            else:
                self.logger.error("skipping task file %s: %s", path, exc)
            return None
        return key, task_id, when, payload

    def _quarantine(self, name: str, key: StatKey, reason: str) -> None:
        """Move an unreadable file to ``corrupt/`` unless it was rewritten meanwhile."""
        with self._lock, self._file_lock:
            source = self.directory / name
            try:
                if stat_key(os.stat(source)) != key:
                    return
                target_dir = self.directory / "corrupt"
                target_dir.mkdir(mode=0o700, exist_ok=True)
                target = target_dir / f"{name}.{time.time_ns()}"
                os.replace(source, target)
                fsync_directory(self.directory)
            except OSError as exc:
                self.logger.error(
                    "task file %s is unreadable (%s) and could not be moved aside: %s",
                    source,
                    reason,
                    exc,
                )
                return
            self._drop(name)
        self.logger.error("task file %s is unreadable (%s); moved it to %s", source, reason, target)

    def _load(self, name: str) -> Task | None:
        return self._load_read(name)[0]

    def _load_read(self, name: str) -> tuple[Task | None, bytes]:
        """The task in file ``name`` and the bytes it was read from (``b""``: none)."""
        read = self._read(name)
        if read is None:
            return None, b""
        _, task_id, _, payload = read
        task = self._broken.load(self.serializer, task_id, payload)
        if task is not None:
            task.store_alias = self.alias
        return task, payload

    # -- reads ----------------------------------------------------------------------------

    def lookup_task(self, task_id: str) -> Task | None:
        """Return the task with this id, or ``None`` (also when it cannot be loaded)."""
        with self._lock:
            self._prepare()
        return self._load(file_name_for(task_id))

    def get_due_tasks(self, now: datetime, limit: int | None = None) -> list[Task]:
        """Return due tasks, earliest first, read fresh from their files."""
        return [task for task, _ in self._due(now, limit)]

    def acquire_due_tasks(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> list[Task]:
        """The due tasks (see :meth:`BaseStore.acquire_due_tasks`), remembering the bytes
        read so that :meth:`release_tasks` keeps a change made meanwhile."""
        due = self._due(now, limit)
        for task, payload in due:
            self._claimed.remember(task.id, payload, task.next_run_time)
        return [task for task, _ in due]

    def _due(self, now: datetime, limit: int | None) -> list[tuple[Task, bytes]]:
        now_ts = now.timestamp()
        while True:
            known = len(self._broken)
            with self._lock:
                self._refresh()
                entries = self._ordered_ids(now_ts, limit)
            due: list[tuple[Task, bytes]] = []
            for _, task_id in entries:
                task, payload = self._load_read(file_name_for(task_id))
                # Another process may have changed the file since the index was built.
                if (
                    task is not None
                    and task.next_run_time is not None
                    and task.next_run_time <= now
                ):
                    due.append((task, payload))
            # Newly found unloadable tasks left gaps: ask again, they are now skipped.
            if limit is None or len(due) >= limit or len(self._broken) == known:
                return due

    def get_next_run_time(self) -> datetime | None:
        """Return the earliest next run time of the tasks that can be loaded."""
        with self._lock:
            self._refresh()
            entries = self._ordered_ids(float("inf"), 1)
        return datetime.fromtimestamp(entries[0][0], UTC) if entries else None

    def get_all_tasks(self) -> list[Task]:
        """Return every loadable task, by next run time, paused last."""
        with self._lock:
            self._refresh()
            names = list(self._files)
        tasks = [task for task in map(self._load, names) if task is not None]
        tasks.sort(key=_sort_key)
        return tasks

    def _make_run_log(self) -> RunLog:
        """The run records, one file each under ``<directory>/runs`` (see
        :mod:`tickwork.runs.file`); ``cleanup_directory`` removes them with the tasks."""
        from tickwork.runs.file import FileRunLog

        return FileRunLog(self.directory / "runs", logger=self.logger)

    def __repr__(self) -> str:
        return f"<FileStore alias={self.alias!r} directory={str(self.directory)!r}>"


def _sort_key(task: Task) -> tuple[int, float, str]:
    if task.next_run_time is None:
        return (1, 0.0, task.id)
    return (0, task.next_run_time.timestamp(), task.id)
