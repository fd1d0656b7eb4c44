"""Private files: what a store or lock writes must not be plantable by another user.

* :func:`open_no_follow` opens a lock or progress file with ``O_NOFOLLOW``: a symlink
  planted at the path (``/tmp/tickwork-default.lock`` -> ``/etc/passwd``) is refused
  with :class:`UnsafePathError` naming the path, instead of failing every pass or
  truncating the link's target.
* :func:`check_private_directory` refuses a directory another user owns, or that
  group/others may write: whoever can write there can plant a task file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from tickwork.exceptions import UnsafePathError

__all__ = ["check_private_directory", "create_private_file", "open_no_follow", "refuse_symlink"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def open_no_follow(path: str | os.PathLike[str], flags: int, mode: int = 0o600) -> int:
    """``os.open`` that never follows a symlink at ``path``; a symlink there raises
    ``UnsafePathError`` naming it. New files get ``mode`` (private by default)."""
    try:
        return os.open(path, flags | _NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.EMLINK and os.path.islink(path)):
            raise UnsafePathError(
                path,
                "it is a symbolic link (another user may have planted it); "
                "remove it, or choose a path in a directory only you can write",
            ) from None
        raise


def check_private_directory(path: Path) -> None:
    """Raise ``UnsafePathError`` unless ``path`` is owned by this user (or root) and not
    writable by group or others. Does nothing on systems without owners (Windows)."""
    if not hasattr(os, "getuid"):
        return
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePathError(path, "it is a symbolic link; give the real directory")
    uid = os.getuid()
    if info.st_uid not in (uid, 0):
        raise UnsafePathError(
            path,
            f"it is owned by user id {info.st_uid}, not by this process's user ({uid}): "
            "that user could plant task files in it; use a directory of your own, or "
            "pass allow_shared_directory=True if every writer is trusted",
        )
    if _writable(info):
        raise UnsafePathError(
            path,
            f"it is writable by group or others (mode {stat.S_IMODE(info.st_mode):o}): "
            "they could plant task files in it; chmod go-w it, or pass "
            "allow_shared_directory=True if every writer is trusted",
        )


def _writable(info: os.stat_result) -> bool:
    return bool(info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def create_private_file(path: str | os.PathLike[str]) -> None:
    """Create ``path`` empty with mode 0o600 unless it exists (an SQLite database, before
    the driver creates it 0o644 and every local user can read the task arguments).
    A missing directory is left for the caller's own error to report."""
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(open_no_follow(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def refuse_symlink(path: str | os.PathLike[str]) -> None:
    """Raise ``UnsafePathError`` if ``path`` is a symbolic link (nothing if absent)."""
    if os.path.islink(path):
        raise UnsafePathError(
            path,
            "it is a symbolic link (another user may have planted it); remove it, or "
            "choose a path in a directory only you can write",
        )
