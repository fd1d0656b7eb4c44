"""File locks: one process of many processes a store; a standby takes over."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tickwork.exceptions import LockPathError
from tickwork.locks import FileLockProtected, NullLockProtected, format_lock_path
from tickwork.schedulers import BackgroundScheduler


def test_placeholders_are_filled() -> None:
    path = format_lock_path("/tmp/x-{store}-{pgrp}-{ppid}-{pid}.lock", "jobs")
    assert path == f"/tmp/x-jobs-{os.getpgrp()}-{os.getppid()}-{os.getpid()}.lock"


def test_unknown_placeholder_is_named() -> None:
    with pytest.raises(LockPathError, match=r"\{worker\}"):
        format_lock_path("/tmp/x-{worker}.lock")
    with pytest.raises(LockPathError, match=r"\{host\}"):
        BackgroundScheduler(lock_path="/tmp/{host}.lock")


def test_missing_directory_fails_at_start(tmp_path: Path) -> None:
    scheduler = BackgroundScheduler(lock_path=str(tmp_path / "missing" / "{store}.lock"))
    with pytest.raises(LockPathError, match="does not exist"):
        scheduler.start()
    assert not scheduler.running


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to any directory")
def test_read_only_directory_fails(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(LockPathError, match="not writable"):
            FileLockProtected(str(tmp_path / "x.lock"))
    finally:
        tmp_path.chmod(0o700)


def test_only_one_holder_and_release(tmp_path: Path) -> None:
    first = FileLockProtected(str(tmp_path / "{store}.lock"), "s")
    second = FileLockProtected(str(tmp_path / "{store}.lock"), "s")
    assert first.acquire()
    assert first.held
    assert not second.acquire()
    first.release()
    assert second.acquire()
    with first.protected() as acquired:
        assert not acquired
    second.shutdown()
    with first.protected() as acquired:
        assert acquired
    assert not first.held


def test_null_lock_always_acquires() -> None:
    lock = NullLockProtected()
    with lock.protected() as acquired:
        assert acquired
        assert lock.held
    assert not lock.held


def test_only_the_lock_holder_runs_tasks_and_a_standby_takes_over(tmp_path: Path) -> None:
    runs: dict[str, int] = {"a": 0, "b": 0}
    guard = threading.Lock()

    def make(name: str) -> BackgroundScheduler:
        def tick() -> None:
            with guard:
                runs[name] += 1

        scheduler = BackgroundScheduler(lock_path=str(tmp_path / "tickwork-{store}.lock"))
        scheduler.lock_retry_interval = 0.1
        scheduler.add_task(tick, "interval", seconds=0.05, id="tick")
        return scheduler

    a, b = make("a"), make("b")
    a.start()
    time.sleep(0.05)
    b.start()
    try:
        time.sleep(0.5)
        assert runs["a"] >= 3
        assert runs["b"] == 0, "the standby must not run tasks"
        a.shutdown()
        taken_over = time.monotonic()
        while runs["b"] == 0 and time.monotonic() - taken_over < 3:
            time.sleep(0.01)
        assert runs["b"] >= 1
        assert time.monotonic() - taken_over < 1.0
    finally:
        for scheduler in (a, b):
            if scheduler.running:
                scheduler.shutdown()


def _warnings_in_a_process(template: str, own_group: bool) -> list[str]:
    import json
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from tickwork.locks import lock_path_warnings\n"
        "print(json.dumps(lock_path_warnings(sys.argv[1])))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, template],
        capture_output=True,
        text=True,
        check=True,
        start_new_session=own_group,
        timeout=30,
    )
    found: list[str] = json.loads(done.stdout)
    return found


def test_pgrp_in_a_process_started_on_its_own_is_named() -> None:
    # Two separately launched uvicorns each lead a process group: {pgrp} gave each a
    # lock of its own, and every task ran twice.
    (warning,) = _warnings_in_a_process("/tmp/tw-{pgrp}-{store}.lock", own_group=True)
    assert "{pgrp}" in warning
    assert "fixed path" in warning
    assert _warnings_in_a_process("/tmp/tw-{pgrp}-{store}.lock", own_group=False) == []


def test_pid_is_always_named_and_fixed_paths_are_fine() -> None:
    from tickwork.locks import lock_path_warnings

    (warning,) = lock_path_warnings("/tmp/tw-{pid}.lock")
    assert "{pid}" in warning
    assert lock_path_warnings("/tmp/tw-{store}.lock") == []
    assert lock_path_warnings("/tmp/tw-{ppid}-{store}.lock") == []
