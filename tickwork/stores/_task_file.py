"""The task file of :class:`~tickwork.stores.file.FileStore`: its name and its format.

A task file is a one-line JSON header (format version, task id, next run time, payload
length and CRC-32), a newline, then the serializer's bytes. The header lets the store
build its index without importing any task's function, and tells a torn or damaged file
from a task whose function is gone.
"""

from __future__ import annotations

import errno
import json
import os
import zlib
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "SUFFIX",
    "StatKey",
    "Unreadable",
    "encode",
    "file_name_for",
    "fsync_directory",
    "is_task_file",
    "parse",
    "stat_key",
]

SUFFIX = ".task"
_HEADER_VERSION = 1
_MAX_HEADER = 64 * 1024
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-.")
# The timestamps a datetime can hold: from 0001-01-01 (UTC) to just before the year 10000.
_EARLIEST = datetime.min.replace(tzinfo=UTC).timestamp()
_END = datetime(9999, 12, 31, tzinfo=UTC).timestamp() + 86400
# Escaped names stay well under the 255-byte limit of common file systems; longer ids
# are named by their hash (the id itself is always in the header).
_MAX_NAME = 200


def file_name_for(task_id: str) -> str:
    """Return the file name of a task: ``[a-z0-9_-.]`` kept, every other byte as ``%XX``.

    Upper-case letters are escaped too, so ids differing only in case stay distinct on
    case-insensitive file systems; ``/``, ``..`` and NUL can never reach the path.
    """
    escaped = "".join(
        char if char in _SAFE else "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
        for char in task_id
    )
    if escaped.startswith("."):
        escaped = "%2E" + escaped[1:]
    if not escaped or len(escaped) > _MAX_NAME:
        escaped = "~" + sha256(task_id.encode("utf-8")).hexdigest()
    return escaped + SUFFIX


class StatKey(NamedTuple):
    """What identifies one version of a file: a rewrite changes at least one of these."""

    inode: int
    size: int
    mtime_ns: int


class Unreadable(Exception):
    """A task file whose header cannot be used; ``quarantine`` says whether to move it."""

    def __init__(self, reason: str, quarantine: bool = True) -> None:
        super().__init__(reason)
        self.quarantine = quarantine


def encode(task_id: str, next_run_time: float | None, payload: bytes) -> bytes:
    """The bytes of a task file: the header line, then ``payload``."""
    header = {
        "v": _HEADER_VERSION,
        "id": task_id,
        "next": next_run_time,
        "len": len(payload),
        "crc": zlib.crc32(payload),
    }
    return json.dumps(header, ensure_ascii=True).encode("ascii") + b"\n" + payload


def parse(raw: bytes, name: str) -> tuple[str, float | None, bytes]:
    """Check a task file read whole; return its task id, next run time and payload.
    Raises :class:`Unreadable`."""
    newline = raw.find(b"\n", 0, _MAX_HEADER)
    if newline < 0:
        raise Unreadable("no header line (empty or truncated file)")
    try:
        header = json.loads(raw[:newline])
    except ValueError:
        raise Unreadable("the header line is not JSON") from None
    if not isinstance(header, dict):
        raise Unreadable("the header line is not a JSON object")
    if header.get("v") != _HEADER_VERSION:
        # Written by another tickwork version: leave it for that version to read.
        raise Unreadable(f"unsupported file format {header.get('v')!r}", quarantine=False)
    task_id, when, length, crc = (header.get(k) for k in ("id", "next", "len", "crc"))
    if not isinstance(task_id, str) or not isinstance(length, int) or not isinstance(crc, int):
        raise Unreadable("the header lacks id, len or crc")
    if when is not None and (
        isinstance(when, bool) or not isinstance(when, int | float) or not _EARLIEST <= when < _END
    ):
        # (NaN fails the comparison.) Such a time would make the store's next-run-time
        # answer raise, which stops every task of the store, not just this one.
        raise Unreadable(
            f"the header's next run time {when!r} is not a timestamp between the years 1 and 9999"
        )
    payload = raw[newline + 1 :]
    if len(payload) != length:
        raise Unreadable(f"truncated: {len(payload)} of {length} payload bytes")
    if zlib.crc32(payload) != crc:
        raise Unreadable("the payload's checksum does not match")
    if file_name_for(task_id) != name:
        raise Unreadable(f"the file holds task {task_id!r}, whose file name differs")
    return task_id, (float(when) if when is not None else None), payload


def is_task_file(name: str) -> bool:
    """Is ``name`` a task file (not a temporary one being written)?"""
    return name.endswith(SUFFIX) and not name.startswith(".")


def stat_key(stat: os.stat_result) -> StatKey:
    """The :class:`StatKey` of a file's ``stat``."""
    return StatKey(stat.st_ino, stat.st_size, stat.st_mtime_ns)


def fsync_directory(path: Path) -> None:
    """Make renames and unlinks in ``path`` durable (POSIX; a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.EACCES):
            raise
    finally:
        os.close(fd)
