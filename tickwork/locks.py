"""Locks that let one process of many do something: process a store, run a lifecycle.

``FileLockProtected`` wraps an OS file lock (``filelock``: ``flock`` on Unix), so a lock
held by a process that dies, even by SIGKILL, is released by the kernel at once; a
standby that retries every second takes over within about a second.

Path templates may use ``{store}`` (the store alias), ``{pgrp}`` (the process group: all
workers of one gunicorn master share it), ``{ppid}`` (the parent process) and ``{pid}``.

Beside the lock file, the holder of a store's lock notes how far it processed the store
(``<path>.progress``, see :meth:`FileLockProtected.record_progress`), so a process that
takes the lock over does not run again what the previous holder already ran.
"""

from __future__ import annotations

import contextlib
import os
import string
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import filelock

from tickwork.exceptions import LockPathError, UnsafePathError
from tickwork.security.files import open_no_follow, refuse_symlink

__all__ = [
    "FileLockProtected",
    "LockProtected",
    "NullLockProtected",
    "format_lock_path",
    "lock_path_warnings",
]

PLACEHOLDERS = ("store", "pgrp", "ppid", "pid")


def format_lock_path(template: str, store: str = "default") -> str:
    """Fill a lock path template; raise :class:`LockPathError` naming an unknown
    placeholder (or a positional ``{}``)."""
    for _, field, _, _ in string.Formatter().parse(template):
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            raise LockPathError(
                f"unknown placeholder {{{field}}} in lock path {template!r}; "
                f"use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
            )
    values: dict[str, Any] = {
        "store": store,
        "pgrp": os.getpgrp(),
        "ppid": os.getppid(),
        "pid": os.getpid(),
    }
    return template.format(**values)


def lock_path_warnings(template: str) -> list[str]:
    """What is wrong with ``template`` for this process, in words (an empty list when
    nothing is): the placeholders that give processes meant to share a lock a lock each,
    so that each of them runs every task.

    * ``{pid}``: every process has its own, always.
    * ``{pgrp}``: shared by the workers a master forks (gunicorn, uvicorn ``--workers``),
      who inherit its process group; a process that leads a group of its own was started
      on its own (two ``uvicorn`` commands, two systemd units), and shares it with nobody.
    """
    fields = {field for _, field, _, _ in string.Formatter().parse(template) if field}
    found = []
    if "pid" in fields:
        found.append(
            f"lock path {template!r} has {{pid}}: every process gets a lock of its own, so "
            "each runs every task; use a fixed path (processes on one host), or {ppid} "
            "for the workers of one master"
        )
    if "pgrp" in fields and os.getpgrp() == os.getpid():
        found.append(
            f"lock path {template!r} has {{pgrp}}, and this process leads its own process "
            "group: it was started on its own, not forked by a master with others, so "
            "processes started like it each get a lock of their own and each run every "
            "task; use a fixed path to share one lock between separately started processes"
        )
    return found


class LockProtected(ABC):
    """The lock protocol: ``protected()`` as a context manager yielding whether the lock
    was obtained, plus explicit ``acquire``/``release`` for long holds."""

    @abstractmethod
    def acquire(self, blocking: bool = False, timeout: float | None = None) -> bool:
        """Take the lock; without ``blocking`` return False at once if someone holds it."""

    @abstractmethod
    def release(self) -> None:
        """Give the lock back (no error if not held)."""

    @property
    @abstractmethod
    def held(self) -> bool:
        """True while this object holds the lock."""

    @contextmanager
    def protected(self, blocking: bool = False, timeout: float | None = None) -> Iterator[bool]:
        """``with lock.protected() as acquired:`` — run the block's work only if
        ``acquired``; the lock is released when the block ends."""
        acquired = self.acquire(blocking, timeout)
        try:
            yield acquired
        finally:
            if acquired:
                self.release()

    def shutdown(self) -> None:
        """Release the lock for good."""
        self.release()


class NullLockProtected(LockProtected):
    """A lock that is always obtained: for code that takes a lock object but runs in a
    single process."""

    def __init__(self) -> None:
        self._held = False

    def acquire(self, blocking: bool = False, timeout: float | None = None) -> bool:
        """Always succeeds."""
        self._held = True
        return True

    def release(self) -> None:
        """Forget the hold."""
        self._held = False

    @property
    def held(self) -> bool:
        """True between acquire and release."""
        return self._held


class FileLockProtected(LockProtected):
    """An exclusive lock on a file, shared by every process that names the same path.

    ``path`` may be a template (see the module docstring). Its directory must exist and be
    writable: that is checked here, so a typo fails at start-up, not at first use.
    """

    def __init__(self, path: str, store: str = "default") -> None:
        self.path = format_lock_path(path, store)
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise LockPathError(f"the directory of lock path {self.path!r} does not exist")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise LockPathError(f"the directory of lock path {self.path!r} is not writable")
        # A symlink planted at the path (another user, in a shared /tmp) would make every
        # attempt fail or write through it: refuse it here, by name (and in acquire()).
        refuse_symlink(self.path)
        refuse_symlink(self.progress_path)
        # thread_local=False: the scheduler may take the lock on one thread and release it
        # on another; is_singleton=False: two schedulers in one process compete properly.
        self._lock = filelock.FileLock(self.path, thread_local=False, is_singleton=False)

    def acquire(self, blocking: bool = False, timeout: float | None = None) -> bool:
        """Take the file lock (see :meth:`LockProtected.acquire`)."""
        if self._lock.is_locked:
            return True
        wait = (-1 if timeout is None else timeout) if blocking else 0
        self._create_private()
        try:
            self._lock.acquire(timeout=wait)
        except filelock.Timeout:
            return False
        return True

    def _create_private(self) -> None:
        """Create the lock file ours and private (0o600) without following a symlink, so
        filelock (which follows them) opens a regular file: in a sticky directory like
        /tmp nobody else can then replace it. A symlink there raises ``UnsafePathError``."""
        try:
            os.close(open_no_follow(self.path, os.O_RDONLY | os.O_CREAT, 0o600))
        except UnsafePathError:
            raise
        except OSError:
            pass  # (another user's lock file: filelock reports what it cannot do)

    def release(self) -> None:
        """Release the file lock; the file itself stays (removing it would race with a
        process that just opened it)."""
        if self._lock.is_locked:
            self._lock.release(force=True)

    @property
    def held(self) -> bool:
        """True while this object holds the file lock."""
        return bool(self._lock.is_locked)

    @property
    def progress_path(self) -> str:
        """The file where the holder notes how far it processed the store."""
        return self.path + ".progress"

    def record_progress(self, timestamp: float) -> None:
        """Note that every run due up to ``timestamp`` (epoch seconds) was handled.

        Written to a temporary file and renamed over the old one, so a reader sees the
        previous value or the new one, whatever happens to the writer. (The lock file
        itself cannot hold it: every process trying the lock opens it truncating.)
        Raises ``OSError``.
        """
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, temporary = tempfile.mkstemp(prefix=".tickwork-progress-", dir=directory)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(repr(timestamp))
            os.replace(temporary, self.progress_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def last_progress(self) -> float | None:
        """What the last holder recorded with :meth:`record_progress`, or ``None``."""
        try:
            fd = open_no_follow(self.progress_path, os.O_RDONLY)
        except UnsafePathError:
            raise  # a planted symlink: an error naming the path, not "no progress"
        except OSError:
            return None
        try:
            with os.fdopen(fd) as file:
                return float(file.read())
        except (OSError, ValueError):
            return None

    def __repr__(self) -> str:
        return f"FileLockProtected({self.path!r}, held={self.held})"
