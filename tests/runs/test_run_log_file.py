"""FileRunLog specifics: private modes, file names, damaged and leftover files, and the
rule on a file system without hard links."""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from datetime import timedelta
from pathlib import Path

import pytest
from run_log_support import T0, record

from tickwork.runs import RunRecord
from tickwork.runs import file as file_module
from tickwork.runs._records import encode_record
from tickwork.runs.file import FileRunLog

NOW = T0 + timedelta(days=1)


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def log(directory: Path) -> FileRunLog:
    return FileRunLog(directory)


def files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file())


def path_of(log: FileRunLog, written: RunRecord) -> Path:
    (path,) = [p for p in files(log.directory) if file_module._escape(written.run_id) in p.name]
    return path


def test_directories_are_0700_and_records_0600(log: FileRunLog, directory: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        log.write([record("a", 0), record("a", 1, "running"), record("b", 2, "error")])
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    task_dirs = [p for p in directory.iterdir()]
    assert len(task_dirs) == 2
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in task_dirs)
    records = files(directory)
    assert len(records) == 3
    assert {p.suffix for p in records} == {".json", ".running"}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in records)


def test_any_task_or_run_id_stays_inside_the_directory(
    log: FileRunLog, directory: Path, tmp_path: Path
) -> None:
    task_ids = ["../../escape", "a/b", "Upper", "upper", ".dot", "", "\x00nul", "é" * 300]
    written = [record(task_id, n) for n, task_id in enumerate(task_ids)]
    odd = RunRecord(
        run_id="../../" + "X" * 400,  # not make_run_id's form, and too long for a name
        task_id="odd",
        task_name="odd",
        scheduled_run_time=T0,
        outcome="success",
    )
    log.write([*written, odd])
    paths = files(directory)
    assert len(paths) == len(task_ids) + 1
    assert all(directory in p.parents for p in paths)
    assert all(len(p.name) < 255 for p in paths)
    assert not (tmp_path.parent / "escape").exists()
    for one in [*written, odd]:
        assert log.get(one.run_id) == one
        assert log.query(one.task_id) == [one]


def test_a_final_record_removes_the_running_file(log: FileRunLog, directory: Path) -> None:
    log.write([record(outcome="running")])
    log.write([record(outcome="success")])
    assert [p.suffix for p in files(directory)] == [".json"]
    log.write([record(outcome="running")])  # a start written after the end: not kept
    assert [p.suffix for p in files(directory)] == [".json"]


def test_a_leftover_running_file_is_never_read_and_pruned(log: FileRunLog) -> None:
    log.write([record(outcome="error")])
    final = path_of(log, record())
    # What a racing start leaves for a moment: a running file next to the final one.
    final.with_suffix(".running").write_bytes(encode_record(record(outcome="running")))
    assert log.get(record().run_id) == record(outcome="error")
    assert log.query() == [record(outcome="error")]
    assert log.prune(NOW, None, None) == 0  # not a record: removed, not counted
    assert not final.with_suffix(".running").exists()
    assert log.get(record().run_id) == record(outcome="error")


def test_damaged_files_are_skipped_and_logged_once(
    log: FileRunLog, caplog: pytest.LogCaptureFixture
) -> None:
    good = [record("a", m) for m in range(6)] + [record("a", 6, "running")]
    log.write(good)
    damage = {
        0: b"\x00\xff not json",
        1: b'{"v": 1, "run_id": "a"',  # torn
        2: encode_record(record("a", 2))[:-1] + b',"attempt":"two"}',  # a field of the wrong type
        3: encode_record(record("a", 4)),  # another run's record under this run's name
        4: encode_record(record("a", 4, "running")),  # a running record in a final file
        6: b"[]",  # a running file that is not a record
    }
    for minute, data in damage.items():
        path_of(log, record("a", minute)).write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="tickwork.runs.file"):
        assert log.query("a") == [record("a", 5)]
        assert log.query() == [record("a", 5)]
        assert log.get(record("a", 0).run_id) is None
    warnings = [r for r in caplog.records if "damaged run record" in r.getMessage()]
    assert len(warnings) == len(damage)
    assert "holds run" in caplog.text
    # A damaged final file still holds the run's place: no later outcome replaces it.
    log.write([record("a", 0, "error")])
    assert log.get(record("a", 0).run_id) is None
    # A damaged running file is replaced by the next write, as any running one is.
    log.write([record("a", 6, "timeout")])
    assert log.get(record("a", 6).run_id) == record("a", 6, "timeout")
    # Retention works from names: the damaged final files go like any other.
    assert log.prune(NOW, max_age=60, max_per_task=None) == 7
    assert files(log.directory) == []


def test_without_hard_links_final_files_are_created_exclusively(
    log: FileRunLog, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = []

    def no_links(source: object, target: object) -> None:
        calls.append(target)
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(file_module.os, "link", no_links)
    with caplog.at_level(logging.INFO, logger="tickwork.runs.file"):
        log.write([record(outcome="running")])
        log.write([record(outcome="cancelled")])
        log.write([record(outcome="success"), record("b", 1, "error")])
    assert len(calls) == 1  # tried once, then never again
    assert "refuses hard links" in caplog.text
    assert log.get(record().run_id) == record(outcome="cancelled")
    assert log.get(record("b", 1).run_id) == record("b", 1, "error")
    assert [p.suffix for p in files(log.directory)] == [".json", ".json"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files(log.directory))
    assert not any(p.name.startswith(".tmp-") for p in log.directory.rglob("*"))


def test_prune_removes_stale_temporary_files_and_empty_task_directories(
    log: FileRunLog, directory: Path
) -> None:
    log.write([record("a", 0), record("b", 0), record("b", 1, "running")])
    stale = directory / file_module._escape("b") / ".tmp-stale"
    young = directory / file_module._escape("b") / ".tmp-young"
    stale.write_bytes(b"x")
    young.write_bytes(b"x")
    hours_ago = time.time() - 7200
    os.utime(stale, (hours_ago, hours_ago))
    assert log.prune(NOW, max_age=60, max_per_task=None) == 2
    assert not (directory / "a").exists()  # empty: removed
    assert not stale.exists()
    assert young.exists()
    assert log.query() == [record("b", 1, "running")]
    log.write([record("a", 5)])  # the task's directory is made again
    assert log.query("a") == [record("a", 5)]


def test_a_log_without_fsync_keeps_the_same_records(directory: Path) -> None:
    fast = FileRunLog(directory, durable=False)
    fast.write([record(outcome="running"), record("b", 1)])
    fast.write([record(outcome="error")])
    assert FileRunLog(directory).query() == [record("b", 1), record(outcome="error")]


def test_reading_a_missing_directory_finds_nothing(directory: Path) -> None:
    log = FileRunLog(directory)
    assert log.query() == []
    assert log.get(record().run_id) is None
    assert log.prune(NOW, 0, 0) == 0
    assert not directory.exists()
