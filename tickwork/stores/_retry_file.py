"""The pending retries of :class:`~tickwork.stores.file.FileStore`: one file per run in
``<directory>/retries/``.

A retry file has the task file's frame (see :mod:`tickwork.stores._task_file`: a JSON
header line with a CRC-32 of the payload), whose id is the run's key
``"<repr of the scheduled epoch seconds>|<task id>"`` (which names the file, so a run has
one retry file at most) and whose "next run time" is when the retry is due. Its payload
is one more JSON line (task id, scheduled time, attempt) and then the serializer's bytes
of the task as it was run.

Files are written like task files (:func:`write_atomically`: a temporary file, fsync,
rename, fsync of the directory), so a crash leaves the old retry or the new one. A file
that cannot be read is moved to ``<directory>/corrupt/`` with a log line; one whose task
cannot be loaded is logged (once) and left in place, never deleted: the operator may
still fix it.

The callers hold the store's locks: :class:`RetryFiles` does no locking of its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from tickwork.exceptions import SerializationError
from tickwork.serializers import BaseSerializer
from tickwork.stores._task_file import (
    SUFFIX,
    StatKey,
    Unreadable,
    encode,
    file_name_for,
    fsync_directory,
    is_task_file,
    parse,
    stat_key,
)
from tickwork.stores.base import InProgressRun, PendingRetry
from tickwork.tasks import Task

__all__ = ["RetryFiles", "write_atomically"]

# See FileStore: a directory modified this recently is scanned again on the next query.
_RACY_NS = 2_000_000_000


def write_atomically(directory: Path, name: str, blob: bytes) -> os.stat_result:
    """Replace ``directory / name`` with ``blob`` atomically (temporary file, fsync,
    rename); return the new file's stat. The caller fsyncs the directory."""
    fd, temp_path = tempfile.mkstemp(prefix=".tmp-", suffix=SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(blob)
            stream.flush()
            os.fsync(stream.fileno())
            stat = os.fstat(stream.fileno())
        os.replace(temp_path, directory / name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_path)
        raise
    return stat


class _Entry(NamedTuple):
    """What the index knows of one retry file."""

    stat: StatKey
    task_id: str
    run_time: float
    due: float


class RetryFiles:
    """The retry files of one store directory, with an index of their due times that is
    refreshed when the directory changes (by this process or another)."""

    def __init__(self, store_directory: Path, serializer: BaseSerializer, logger: logging.Logger):
        self.directory = store_directory / "retries"
        self._corrupt = store_directory / "corrupt"
        self._serializer = serializer
        self._logger = logger
        self.reset()

    def reset(self) -> None:
        """Forget the index (it is rebuilt from the files at the next use)."""
        self._index: dict[str, _Entry] = {}
        self._dir_mtime_ns = -1
        self._racy = True
        #: Files already reported as not loading, by name and version.
        self._reported: set[tuple[str, StatKey]] = set()

    # -- writes (the caller holds the store's write lock) ------------------------------------

    def add(self, retries: Iterable[PendingRetry]) -> None:
        """Write one file per retry (replacing a retry of the same run)."""
        self.directory.mkdir(mode=0o700, exist_ok=True)
        for retry in retries:
            run_time = retry.run_time.timestamp()
            key = _key(retry.task.id, run_time)
            inner = json.dumps(
                {"task": retry.task.id, "run_time": run_time, "attempt": retry.attempt},
                ensure_ascii=True,
            ).encode("ascii")
            payload = inner + b"\n" + self._serializer.serialize(retry.task)
            name = file_name_for(key)
            stat = write_atomically(
                self.directory, name, encode(key, retry.due.timestamp(), payload)
            )
            self._index[name] = _Entry(
                stat_key(stat), retry.task.id, run_time, retry.due.timestamp()
            )
        fsync_directory(self.directory)

    def take_due(self, now: datetime, limit: int, alias: str | None) -> list[InProgressRun]:
        """Delete and return up to ``limit`` retries due at ``now`` whose task loads,
        earliest first."""
        self.refresh()
        moment = now.timestamp()
        due = sorted(
            (entry.due, name) for name, entry in self._index.items() if entry.due <= moment
        )
        taken: list[InProgressRun] = []
        for _, name in due:
            if len(taken) >= limit:
                break
            run = self._load(name, alias)
            if run is None:
                continue
            try:
                os.unlink(self.directory / name)
            except FileNotFoundError:
                continue  # (removed meanwhile, outside the store: not handed out)
            finally:
                self._index.pop(name, None)
            taken.append(run)
        if taken:
            fsync_directory(self.directory)
        return taken

    def remove(self, task_id: str, run_time: datetime | None) -> int:
        """Delete the retries of ``task_id`` (its run at ``run_time`` only, when given);
        return how many."""
        self.refresh()
        wanted = run_time.timestamp() if run_time is not None else None
        removed = 0
        for name, entry in list(self._index.items()):
            if entry.task_id != task_id or (wanted is not None and entry.run_time != wanted):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.directory / name)
                removed += 1
            self._index.pop(name, None)
        if removed:
            fsync_directory(self.directory)
        return removed

    # -- reads ---------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """When the earliest retry is due (``None``: there is none)."""
        self.refresh()
        earliest = min((entry.due for entry in self._index.values()), default=None)
        return datetime.fromtimestamp(earliest, UTC) if earliest is not None else None

    def refresh(self) -> None:
        """Bring the index up to date with the directory."""
        try:
            dir_stat = os.stat(self.directory)
        except FileNotFoundError:
            self._index.clear()
            return
        if dir_stat.st_mtime_ns == self._dir_mtime_ns and not self._racy:
            return
        present: set[str] = set()
        now = time.time()
        for entry in os.scandir(self.directory):
            if entry.name.startswith(".tmp-"):
                # A writer that died an hour ago left it (see FileStore).
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime > 3600.0:
                        os.unlink(entry.path)
                continue
            if not is_task_file(entry.name):
                continue
            try:
                key = stat_key(entry.stat())
            except FileNotFoundError:
                continue
            known = self._index.get(entry.name)
            if known is not None and known.stat == key:
                present.add(entry.name)
                continue
            read = self._read(entry.name)
            if read is not None:
                self._index[entry.name] = read[0]
                present.add(entry.name)
        for name in set(self._index) - present:
            del self._index[name]
        # The mtime read before scanning: a change during the scan moves it again.
        self._dir_mtime_ns = dir_stat.st_mtime_ns
        self._racy = time.time_ns() - dir_stat.st_mtime_ns < _RACY_NS

    def _read(self, name: str) -> tuple[_Entry, int, bytes] | None:
        """Read and check one retry file: its index entry, attempt and task bytes;
        ``None`` when it is gone or unreadable (moved aside, or logged)."""
        path = self.directory / name
        try:
            with open(path, "rb") as stream:
                key = stat_key(os.fstat(stream.fileno()))
                raw = stream.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._report(name, None, f"skipping retry file {path}: {exc}")
            return None
        try:
            run_key, due, payload = parse(raw, name)
            task_id, run_time, attempt, task_bytes = _parse_payload(payload)
            if due is None or run_key != _key(task_id, run_time):
                raise Unreadable("the header does not match the retry it holds")
        except Unreadable as exc:
            if exc.quarantine:
                self._quarantine(name, key, str(exc))
            else:
                self._report(name, key, f"skipping retry file {path}: {exc}")
            return None
        return _Entry(key, task_id, run_time, due), attempt, task_bytes

    def _load(self, name: str, alias: str | None) -> InProgressRun | None:
        """The retry in file ``name`` as a run to start, or ``None`` (gone, unreadable,
        or its task cannot be loaded: logged once and left in place)."""
        read = self._read(name)
        if read is None:
            self._index.pop(name, None)
            return None
        entry, attempt, task_bytes = read
        try:
            task: Task = self._serializer.deserialize(task_bytes)
        except SerializationError as exc:
            self._report(
                name,
                entry.stat,
                f"cannot make the pending retry of task {entry.task_id!r} in "
                f"{self.directory / name} (left in place): {exc}",
            )
            return None
        task.store_alias = alias
        zone = getattr(task.trigger, "timezone", None)
        run_time = datetime.fromtimestamp(entry.run_time, UTC)
        due = datetime.fromtimestamp(entry.due, UTC)
        if zone is not None:
            run_time, due = run_time.astimezone(zone), due.astimezone(zone)
        return InProgressRun(task, run_time, "", attempt, due)

    def _report(self, name: str, key: StatKey | None, message: str) -> None:
        """Log ``message`` once per version of the file."""
        if key is not None:
            if (name, key) in self._reported:
                return
            self._reported.add((name, key))
        self._logger.error("%s", message)

    def _quarantine(self, name: str, key: StatKey, reason: str) -> None:
        """Move an unreadable retry file to ``corrupt/`` unless it was rewritten."""
        source = self.directory / name
        try:
            if stat_key(os.stat(source)) != key:
                return
            self._corrupt.mkdir(mode=0o700, exist_ok=True)
            target = self._corrupt / f"retry-{name}.{time.time_ns()}"
            os.replace(source, target)
            fsync_directory(self.directory)
        except OSError as exc:
            self._report(
                name, key, f"retry file {source} is unreadable ({reason}) and stays: {exc}"
            )
            return
        self._index.pop(name, None)
        self._logger.error(
            "retry file %s is unreadable (%s); moved it to %s", source, reason, target
        )


def _key(task_id: str, run_time: float) -> str:
    """The run's key: ``"<repr of the scheduled epoch seconds>|<task id>"``."""
    return f"{run_time!r}|{task_id}"


def _parse_payload(payload: bytes) -> tuple[str, float, int, bytes]:
    """The task id, scheduled time, attempt and task bytes of a retry file's payload."""
    newline = payload.find(b"\n")
    try:
        inner = json.loads(payload[:newline]) if newline >= 0 else None
    except ValueError:
        inner = None
    if not isinstance(inner, dict):
        raise Unreadable("the retry line is missing or not a JSON object")
    task_id, run_time, attempt = (inner.get(k) for k in ("task", "run_time", "attempt"))
    if (
        not isinstance(task_id, str)
        or isinstance(run_time, bool)
        or not isinstance(run_time, int | float)
        or isinstance(attempt, bool)
        or not isinstance(attempt, int)
        or attempt < 1
    ):
        raise Unreadable("the retry line lacks a task id, a scheduled time or an attempt")
    try:
        datetime.fromtimestamp(run_time, UTC)
    except (OverflowError, OSError, ValueError):
        raise Unreadable(f"the scheduled time {run_time!r} is not a datetime") from None
    return task_id, float(run_time), attempt, payload[newline + 1 :]
