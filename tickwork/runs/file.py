"""Run records as files: one small JSON file per record, in a directory per task.

Layout of ``directory``::

    <escaped task id>/                                   mode 0700
        <UTC key>_<escaped run id>.json                  a final record (mode 0600)
        <UTC key>_<escaped run id>.running               a running record (mode 0600)
        .tmp-*                                           a record being written

The UTC key is the scheduled run time, ``YYYYMMDDTHHMMSSffffffZ`` (22 characters, so
file names sort by it); escaped ids keep ``[a-z0-9_-]`` and write every other byte as
``%XX`` (upper case too, for case-insensitive disks; ``.`` too, so the suffix is the
only dot). Ids that would escape to more than 200 characters are named
``~<sha256>`` instead; the file still holds the real id. Because a record's place and
order are in its name, :meth:`FileRunLog.prune` reads no file, and :meth:`~FileRunLog.
query` reads only the files it returns (plus, with ``outcome``, those it filters out).
:meth:`~FileRunLog.get` finds a record from its run id alone when the id has
:func:`~tickwork.runs.make_run_id`'s form (task id and time are in it); other ids are
looked for in every task directory.

The rule (the first final outcome wins), across threads and processes, without locks:

* A final record is written to a temporary file (fsynced unless ``durable=False``) and
  then **hard-linked** to its ``.json`` name. ``link`` fails if the name exists, so of
  writers racing on one run exactly one creates the final file, and it appears whole.
  The others' records are dropped. A final file is never written again.
* A running record replaces the ``.running`` file (temporary file, ``os.replace``), and
  only while no ``.json`` file exists for the run. Readers take the ``.json`` file when
  there is one, so a start written late (after the run's end) is never read; the
  writer of a final record deletes the ``.running`` file, and a running writer that
  finds a final file after its rename deletes its own (whichever comes last sees the
  other's file, so no stale file survives both).
* A reader looks for the final file, then the running one, then the final one again:
  the final file is linked before the running one is deleted, so a record is never
  missed in between.

What is atomic: creating a final file (one ``link``) and replacing a running file (one
``rename``). A ``write`` of many records is not one transaction: a crash in the middle
leaves the records written so far. On a file system without hard links (``link``
refused with ``EPERM``, ``ENOTSUP`` or ``ENOSYS``) final files are created with
``O_CREAT | O_EXCL`` and written in place instead: the rule still holds, but a reader
may meet a final file still being written and skip it (logged) that once, and a crash
while writing it leaves a damaged final file.

Damaged files (not JSON, missing fields, a record that is not the one its name says)
are skipped by reads and logged once per file version; a damaged ``.json`` file still
counts as the run's final record (it is never replaced) and is pruned by its name like
any other. Supported: any number of processes on one local file system; not: network
file systems without atomic ``link`` and ``rename``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

from tickwork.runs import RunRecord
from tickwork.runs._records import (
    CANONICAL_RUN_ID,
    DamagedRecord,
    DamageLog,
    apply_rule,
    decode_record,
    encode_record,
)
from tickwork.runs.base import RunLog, newest_first
from tickwork.stores._task_file import fsync_directory

__all__ = ["FileRunLog"]

_FINAL = ".json"
_RUNNING = ".running"
_TEMP_PREFIX = ".tmp-"
# A temporary file this old belongs to a writer that died; younger ones may be in use.
_STALE_TEMP_SECONDS = 3600.0
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
# Escaped names stay well under the 255-byte limit of common file systems once the key
# (22), the separator and the suffix are added.
_MAX_ESCAPED = 200
_KEY_LENGTH = 22
_NAME = re.compile(r"(\d{8}T\d{12}Z)_([^.]+)(\.json|\.running)")
# errno values of a file system that has no hard links.
_NO_LINKS = frozenset(
    code
    for code in (
        errno.EPERM,
        getattr(errno, "ENOTSUP", None),
        getattr(errno, "EOPNOTSUPP", None),
        errno.ENOSYS,
    )
    if code is not None
)


def _escape(text: str) -> str:
    """A file name for ``text`` (see the module docstring)."""
    escaped = "".join(
        char
        if char in _SAFE
        else "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        for char in text
    )
    if not escaped or len(escaped) > _MAX_ESCAPED:
        return "~" + sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return escaped


def _unescape(name: str) -> str | None:
    """The text :func:`_escape` made ``name`` of, or ``None`` for a hashed name."""
    if name.startswith("~"):
        return None
    raw = bytearray()
    index = 0
    try:
        while index < len(name):
            char = name[index]
            if char == "%":
                raw.append(int(name[index + 1 : index + 3], 16))
                index += 3
            else:
                raw.extend(char.encode("ascii"))
                index += 1
        return raw.decode("utf-8", "surrogatepass")
    except ValueError:  # not a name _escape made (a foreign file)
        return None


def _key(moment: datetime) -> str:
    """The UTC key of a scheduled time: fixed width, so names sort by it."""
    utc = moment.astimezone(UTC)
    return (
        f"{utc.year:04d}{utc.month:02d}{utc.day:02d}T"
        f"{utc.hour:02d}{utc.minute:02d}{utc.second:02d}{utc.microsecond:06d}Z"
    )


def _stem(record: RunRecord) -> str:
    return f"{_key(record.scheduled_run_time)}_{_escape(record.run_id)}"


class _Entry:
    """One run found in a task directory: its stem (name without suffix), which of its
    files were there, and its key."""

    __slots__ = ("directory", "final", "running", "stem")

    def __init__(self, directory: Path, stem: str) -> None:
        self.directory = directory
        self.stem = stem
        self.final = False
        self.running = False

    @property
    def key(self) -> str:
        return self.stem[:_KEY_LENGTH]


# -- the log ----------------------------------------------------------------------------


class FileRunLog(RunLog):
    """Run records as files under ``directory`` (created with mode 0700 on the first write;
    records are 0600: errors and tracebacks may be private). See the module docstring
    for the layout and what holds when several processes share the directory.

    ``durable`` (default true) fsyncs each record before it appears under its name, and
    the task directories a write changed: after a power loss a record is there whole or
    not at all. Without it writes are several times faster and a crash of the machine
    (not of the process) may lose the last records or leave a final file empty, which is
    then damaged for good. ``logger`` receives the damage reports.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        durable: bool = True,
        logger: logging.Logger | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.durable = durable
        self.logger = logger or logging.getLogger(__name__)
        self._damage = DamageLog(self.logger, f"file run log {str(self.directory)!r}")
        # Cleared the first time link() is refused: the file system has no hard links.
        self._hard_links = True

    def __repr__(self) -> str:
        return f"<FileRunLog directory={str(self.directory)!r}>"

    # -- writes -----------------------------------------------------------------------

    def write(self, records: Iterable[RunRecord]) -> None:
        """See :meth:`RunLog.write`; each record is written as described in the module
        docstring, one after the other (not as one transaction)."""
        batch = apply_rule(records)
        if not batch:
            return
        touched: set[Path] = set()
        for record in batch:
            directory = self.directory / _escape(record.task_id)
            # A prune may remove an empty task directory between our mkdir and our
            # first file in it; then it is simply made again.
            for attempt in range(3):
                try:
                    if self._make_directory(directory):
                        touched.add(self.directory)
                    self._write_one(directory, record)
                    break
                except FileNotFoundError:
                    if attempt == 2:
                        raise
            touched.add(directory)
        if self.durable:
            for directory in touched:
                fsync_directory(directory)

    def _make_directory(self, directory: Path) -> bool:
        """Create the log's and the task's directory if missing; True if the task's was."""
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            return False
        except FileNotFoundError:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory, 0o700)
        return True

    def _write_one(self, directory: Path, record: RunRecord) -> None:
        stem = _stem(record)
        final = directory / (stem + _FINAL)
        running = directory / (stem + _RUNNING)
        data = encode_record(record)
        if record.finished:
            # (The check only saves writing a file that could not be linked anyway.)
            if not final.exists():
                self._create_final(directory, final, data)
            # Whoever's final file it is, the running one is no longer the record.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(running)
            return
        if final.exists():
            return  # a final record is never replaced
        temp = self._temp_file(directory, data)
        try:
            os.replace(temp, running)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        if final.exists():
            # A final record was linked after our check: the one who wrote it may have
            # deleted the running file before our rename, so delete ours.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(running)

    def _create_final(self, directory: Path, final: Path, data: bytes) -> None:
        """Create ``final`` holding ``data`` unless it exists (then leave it alone)."""
        if self._hard_links:
            temp = self._temp_file(directory, data)
            try:
                os.link(temp, final)
                return
            except FileExistsError:
                return  # another writer's final record came first: it wins
            except OSError as exc:
                if exc.errno not in _NO_LINKS:
                    raise
                self._hard_links = False
                self.logger.info(
                    "%r: the file system refuses hard links (%s); final records are "
                    "created in place from now on",
                    self,
                    exc,
                )
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
        try:
            fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o600)
        except FileExistsError:
            return
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            if self.durable:
                stream.flush()
                os.fsync(stream.fileno())

    def _temp_file(self, directory: Path, data: bytes) -> str:
        """A new temporary file (0600) in ``directory`` holding ``data``."""
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=directory)
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
                if self.durable:
                    stream.flush()
                    os.fsync(stream.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return temp

    # -- reads ------------------------------------------------------------------------

    def get(self, run_id: str) -> RunRecord | None:
        """See :meth:`RunLog.get`. An id of :func:`~tickwork.runs.make_run_id`'s form is
        one file lookup; any other id is looked for in every task directory."""
        found = CANONICAL_RUN_ID.fullmatch(run_id)
        if found is not None:
            task_id, *parts = found.groups()
            key = "{}{}{}T{}{}{}{}Z".format(*parts)
            entry = _Entry(self.directory / _escape(task_id), f"{key}_{_escape(run_id)}")
            entry.final = entry.running = True
            record = self._read(entry)
            return record if record is not None and record.run_id == run_id else None
        suffix = "_" + _escape(run_id)
        for entry in self._entries(self._task_directories()):
            if entry.stem.endswith(suffix):
                record = self._read(entry)
                if record is not None and record.run_id == run_id:
                    return record
        return None

    def query(
        self,
        task_id: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        """See :meth:`RunLog.query`. Sorted by file name (the scheduled time is in it);
        only the files that can be in the answer are read."""
        if limit <= 0:
            return []
        directories = (
            [self.directory / _escape(task_id)] if task_id is not None else self._task_directories()
        )
        entries = list(self._entries(directories))
        if since is not None:
            since_key = _key(since)
            entries = [entry for entry in entries if entry.key >= since_key]
        entries.sort(key=lambda entry: entry.key, reverse=True)
        found: list[RunRecord] = []
        start = 0
        # Runs with the same scheduled time are read together and ordered by run id
        # (the name holds an escaped or hashed id, which does not sort like the id).
        while start < len(entries) and len(found) < limit:
            end = start + 1
            while end < len(entries) and entries[end].key == entries[start].key:
                end += 1
            group = []
            for entry in entries[start:end]:
                record = self._read(entry)
                if (
                    record is not None
                    and (task_id is None or record.task_id == task_id)
                    and (outcome is None or record.outcome == outcome)
                    and (since is None or record.scheduled_run_time >= since)
                ):
                    group.append(record)
            group.sort(key=newest_first, reverse=True)
            found.extend(group)
            start = end
        return found[:limit]

    def _task_directories(self) -> list[Path]:
        try:
            with os.scandir(self.directory) as scan:
                return [
                    Path(entry.path)
                    for entry in scan
                    if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False)
                ]
        except FileNotFoundError:
            return []

    def _entries(self, directories: Iterable[Path]) -> Iterator[_Entry]:
        """The runs found in ``directories``, one entry per run (both files merged)."""
        for directory in directories:
            try:
                names = os.listdir(directory)
            except (FileNotFoundError, NotADirectoryError):
                continue
            entries: dict[str, _Entry] = {}
            for name in names:
                match = _NAME.fullmatch(name)
                if match is None:
                    continue
                stem = name[: match.end(2)]
                entry = entries.get(stem)
                if entry is None:
                    entry = entries[stem] = _Entry(directory, stem)
                if match.group(3) == _FINAL:
                    entry.final = True
                else:
                    entry.running = True
            yield from entries.values()

    def _read(self, entry: _Entry) -> RunRecord | None:
        """The record of a run: its final file, else its running one, else (the final
        one may have appeared meanwhile, and the running one gone) its final one."""
        final = entry.directory / (entry.stem + _FINAL)
        running = entry.directory / (entry.stem + _RUNNING)
        attempts = [(final, True), (running, False), (final, True)]
        if not entry.running:
            attempts = attempts[:1]
        for path, is_final in attempts:
            try:
                with open(path, "rb") as stream:
                    data = stream.read()
                    stat = os.fstat(stream.fileno())
            except FileNotFoundError:
                continue
            except OSError as exc:
                self._damage.report((str(path), type(exc)), str(path), f"cannot be read: {exc}")
                return None
            try:
                record = decode_record(data)
                if is_final != record.finished:
                    raise DamagedRecord(
                        f"a {'final' if is_final else 'running'} file holds a "
                        f"{record.outcome!r} record"
                    )
                if path.parent.name != _escape(record.task_id) or entry.stem != _stem(record):
                    raise DamagedRecord(
                        f"it holds run {record.run_id!r} of task {record.task_id!r}, "
                        "which belongs under another name"
                    )
            except DamagedRecord as exc:
                key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
                self._damage.report(key, str(path), str(exc))
                return None
            return record
        return None

    # -- retention --------------------------------------------------------------------

    def prune(self, now: datetime, max_age: float | None, max_per_task: int | None) -> int:
        """See :meth:`RunLog.prune`. Works from file names: no record is read (except, for
        ``max_per_task``, records with hashed names whose order among records of the
        same time depends on their run id). No lock is held; files are deleted one by
        one, and one that another pruner deleted first is not counted twice."""
        cutoff: str | None = None
        if max_age is not None:
            try:
                cutoff = _key(now - timedelta(seconds=max_age))
            except OverflowError:
                # Further back than year 1 keeps everything; further ahead than the year
                # 9999 deletes every final record.
                cutoff = None if max_age > 0 else "~"
            except ValueError:  # NaN
                cutoff = None
        deleted = 0
        wall = time.time()
        for directory in self._task_directories():
            deleted += self._prune_directory(directory, cutoff, max_per_task, wall)
        return deleted

    def _prune_directory(
        self, directory: Path, cutoff: str | None, max_per_task: int | None, wall: float
    ) -> int:
        entries = list(self._entries([directory]))
        finals = [entry for entry in entries if entry.final]
        doomed: list[_Entry] = []
        kept: list[_Entry] = []
        for entry in finals:
            (doomed if cutoff is not None and entry.key < cutoff else kept).append(entry)
        if max_per_task is not None and len(kept) > max(max_per_task, 0):
            self._sort_newest_first(kept)
            doomed.extend(kept[max(max_per_task, 0) :])
        deleted = 0
        for entry in doomed:
            try:
                os.unlink(entry.directory / (entry.stem + _FINAL))
                deleted += 1
            except FileNotFoundError:
                pass  # another pruner was first
        for entry in entries:
            if entry.final and entry.running:
                # A running file next to a final one is a leftover, not a record.
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.directory / (entry.stem + _RUNNING))
        self._remove_stale_temps(directory, wall)
        if deleted:
            if self.durable:
                fsync_directory(directory)
            # Fails (and is meant to) unless the directory is empty now; a writer that
            # loses its directory to this makes it again.
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        return deleted

    def _sort_newest_first(self, entries: list[_Entry]) -> None:
        """Sort ``entries`` in :meth:`query`'s order (scheduled time, then run id, newest
        first) from their names. Names order by time; only runs of the same time need
        their run ids (unescaped from the name, or read from a hashed name's file)."""
        entries.sort(key=lambda entry: entry.key, reverse=True)
        start = 0
        while start < len(entries):
            end = start + 1
            while end < len(entries) and entries[end].key == entries[start].key:
                end += 1
            if end - start > 1:
                entries[start:end] = sorted(entries[start:end], key=self._run_id, reverse=True)
            start = end

    def _run_id(self, entry: _Entry) -> str:
        run_id = _unescape(entry.stem[_KEY_LENGTH + 1 :])
        if run_id is None:
            record = self._read(entry)
            run_id = record.run_id if record is not None else ""
        return run_id

    def _remove_stale_temps(self, directory: Path, wall: float) -> None:
        with contextlib.suppress(OSError), os.scandir(directory) as scan:
            for item in scan:
                if item.name.startswith(_TEMP_PREFIX):
                    with contextlib.suppress(OSError):
                        if wall - item.stat().st_mtime > _STALE_TEMP_SECONDS:
                            os.unlink(item.path)


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
