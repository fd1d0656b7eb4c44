"""Private files (issue 18): SQLite databases created 0600, FileStore refusing a
directory others can write or own, and lock/progress paths that refuse a planted
symlink by name. Real files, real modes; the foreign owner is ``nobody`` (needs root)."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import pytest

from tickwork.exceptions import UnsafePathError
from tickwork.locks import FileLockProtected
from tickwork.schedulers import BackgroundScheduler
from tickwork.security.files import check_private_directory, open_no_follow
from tickwork.stores.file import FileStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_database_is_private(tmp_path: Path) -> None:
    path = tmp_path / "tasks.sqlite"
    old = os.umask(0o022)  # the usual umask, which would give 0644
    try:
        store = SQLAlchemyStore(f"sqlite:///{path}")
        store.start("default")
        store.shutdown()
    finally:
        os.umask(old)
    assert mode(path) == 0o600


def test_an_existing_sqlite_database_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "tasks.sqlite"
    path.touch(mode=0o640)
    path.chmod(0o640)
    SQLAlchemyStore(f"sqlite:///{path}").engine.dispose()
    assert mode(path) == 0o640


def test_a_file_store_refuses_a_world_writable_directory(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    store = FileStore(shared)
    with pytest.raises(UnsafePathError, match=r"shared.*writable by group or others \(mode 777\)"):
        store.start("default")
    accepting = FileStore(shared, allow_shared_directory=True)
    accepting.start("default")
    accepting.shutdown()


def test_a_file_store_refuses_a_directory_of_another_user(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to give a directory to another user")
    nobody = pwd.getpwnam("nobody").pw_uid
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o755)
    os.chown(foreign, nobody, -1)
    with pytest.raises(UnsafePathError, match=rf"owned by user id {nobody}"):
        FileStore(foreign).start("default")
    scheduler = BackgroundScheduler(stores={"default": FileStore(foreign)})
    with pytest.raises(UnsafePathError):
        scheduler.start()


def test_a_new_file_store_directory_is_private(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "new")
    store.start("default")
    store.shutdown()
    assert mode(tmp_path / "new") & 0o077 == 0
    check_private_directory(tmp_path / "new")  # (its own check accepts it)


def test_a_symlink_planted_at_the_lock_path_is_an_error_naming_it(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("keep me")
    lock = tmp_path / "tickwork-default.lock"
    lock.symlink_to(target)
    with pytest.raises(UnsafePathError, match=r"tickwork-default\.lock.*symbolic link"):
        FileLockProtected(str(lock))
    scheduler = BackgroundScheduler(lock_path=str(tmp_path / "tickwork-{store}.lock"))
    with pytest.raises(UnsafePathError, match="symbolic link"):
        scheduler.start()
    assert target.read_text() == "keep me"


def test_a_symlink_planted_at_the_progress_path_is_an_error_naming_it(tmp_path: Path) -> None:
    lock_path = tmp_path / "x.lock"
    guard = FileLockProtected(str(lock_path))
    assert guard.acquire()
    assert mode(lock_path) == 0o600
    guard.release()
    Path(guard.progress_path).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError, match=r"x\.lock\.progress"):
        guard.last_progress()
    with pytest.raises(UnsafePathError, match=r"x\.lock\.progress"):
        FileLockProtected(str(lock_path))


def test_a_symlink_planted_at_the_lock_path_later_is_refused_when_taking_the_lock(
    tmp_path: Path,
) -> None:
    lock_path = tmp_path / "late.lock"
    guard = FileLockProtected(str(lock_path))
    lock_path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError, match=r"late\.lock"):
        guard.acquire()
    assert not (tmp_path / "elsewhere").exists()


def test_open_no_follow_refuses_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafePathError):
        open_no_follow(tmp_path / "link", os.O_RDONLY)
    os.close(open_no_follow(tmp_path / "real", os.O_RDONLY))
