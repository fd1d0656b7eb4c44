"""FileStore specifics: atomic writes, permissions, file names, damaged files, sharing."""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from storetest_funcs import NOW, at, make_task

from tickwork.exceptions import StoreUnavailableError
from tickwork.stores.file import FileStore, file_name_for


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(directory: Path) -> Iterator[FileStore]:
    store = FileStore(directory)
    store.start("default")
    yield store
    store.shutdown()


def task_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".task"))


def test_directory_and_files_are_private(store: FileStore, directory: Path) -> None:
    store.add_task(make_task("a"))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / file_name_for("a")).stat().st_mode) == 0o600


def test_file_names_are_escaped_inside_the_directory(store: FileStore, directory: Path) -> None:
    for task_id in ["../../escape", "a/b", "Upper", ".dot", "\x00nul", "é"]:
        store.add_task(make_task(task_id))
    names = task_files(directory)
    assert all("/" not in name and not name.startswith(".") for name in names)
    assert len(names) == 6
    assert not (directory.parent / "escape.task").exists()
    assert file_name_for("Upper") != file_name_for("upper")  # case-insensitive disks


def test_long_ids_get_hashed_file_names(store: FileStore, directory: Path) -> None:
    long_id = "é" * 300
    store.add_task(make_task(long_id))
    (name,) = task_files(directory)
    assert name.startswith("~")
    assert len(name) < 100
    found = store.lookup_task(long_id)
    assert found is not None
    assert found.id == long_id


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    store: FileStore, directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add_task(make_task("a", at(1)))
    before = (directory / file_name_for("a")).read_bytes()

    def no_space(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(StoreUnavailableError, match="No space left") as info:
        store.update_task(make_task("a", at(2)))
    assert isinstance(info.value.__cause__, OSError)
    monkeypatch.undo()
    assert (directory / file_name_for("a")).read_bytes() == before
    assert [p.name for p in directory.iterdir() if p.name.startswith(".tmp-")] == []
    found = store.lookup_task("a")
    assert found is not None
    assert found.next_run_time == at(1)


def test_a_failed_batch_leaves_nothing_behind(
    store: FileStore, directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace
    calls = []

    def fail_third(src: str, dst: str) -> None:
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_third)
    with pytest.raises(StoreUnavailableError):
        store.add_tasks([make_task(f"t{index}") for index in range(5)])
    monkeypatch.undo()
    assert task_files(directory) == []
    assert store.get_all_tasks() == []


def test_stale_temporary_files_are_removed_on_start(directory: Path) -> None:
    directory.mkdir(mode=0o700)
    stale, fresh = directory / ".tmp-stale.task", directory / ".tmp-fresh.task"
    stale.write_bytes(b"half a task")
    fresh.write_bytes(b"being written")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    store = FileStore(directory)
    store.start("default")
    assert not stale.exists()
    assert fresh.exists()  # may belong to a writer that is still running
    store.shutdown()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"not a header\n" + data, id="garbage-header"),
        pytest.param(lambda data: data[:-5], id="truncated"),
        pytest.param(lambda data: data[:-3] + b"XYZ", id="bit-rot"),
    ],
)
def test_a_damaged_file_is_moved_aside_and_others_still_load(
    store: FileStore, directory: Path, damage: object, caplog: pytest.LogCaptureFixture
) -> None:
    store.add_tasks([make_task("good", at(-2)), make_task("bad", at(-1))])
    path = directory / file_name_for("bad")
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    reader = FileStore(directory)
    with caplog.at_level(logging.ERROR, logger="tickwork"):
        reader.start("default")
        assert [task.id for task in reader.get_due_tasks(NOW)] == ["good"]
        assert reader.lookup_task("bad") is None
    assert not path.exists()
    moved = list((directory / "corrupt").iterdir())
    assert [p.name.startswith(file_name_for("bad")) for p in moved] == [True]
    assert any("moved it to" in r.getMessage() for r in caplog.records)
    reader.shutdown()


def test_a_file_under_the_wrong_name_is_moved_aside(store: FileStore, directory: Path) -> None:
    store.add_task(make_task("a", at(-1)))
    os.rename(directory / file_name_for("a"), directory / file_name_for("b"))
    assert store.get_due_tasks(NOW) == []
    assert task_files(directory) == []
    assert len(list((directory / "corrupt").iterdir())) == 1


def test_a_file_from_a_newer_format_is_left_alone(
    store: FileStore, directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = directory / file_name_for("future")
    path.write_bytes(b'{"v": 99, "id": "future"}\nwhatever\n')
    with caplog.at_level(logging.ERROR, logger="tickwork"):
        assert store.get_all_tasks() == []
    assert path.exists()
    assert "unsupported file format 99" in caplog.text


def test_writes_by_another_store_object_are_seen(directory: Path) -> None:
    one, two = FileStore(directory), FileStore(directory)
    one.start("one")
    two.start("two")
    assert two.get_next_run_time() is None
    for index in range(20):  # many writes within one directory-timestamp tick
        one.add_task(make_task(f"t{index}", at(index)))
        assert two.get_next_run_time() == at(0)
    assert len(two.get_all_tasks()) == 20
    two.remove_task("t0")
    assert one.get_next_run_time() == at(1)
    one.shutdown()
    two.shutdown()


def test_cleanup_directory_removes_it_on_shutdown(directory: Path) -> None:
    store = FileStore(directory, cleanup_directory=True)
    store.start("default")
    store.add_task(make_task("a"))
    store.shutdown()
    assert not directory.exists()


def test_a_vanished_directory_makes_the_store_unavailable(
    store: FileStore, directory: Path
) -> None:
    store.add_task(make_task("a"))
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()
    with pytest.raises(StoreUnavailableError, match="read the directory"):
        store.get_all_tasks()


def test_pickle_serializer_can_be_chosen_by_name(directory: Path) -> None:
    store = FileStore(directory, serializer="pickle")
    store.start("default")
    store.add_task(make_task("a", kwargs={"point": complex(1, 2)}))
    assert (directory / file_name_for("a")).read_bytes().split(b"\n", 1)[1].startswith(b"\x80")
    found = store.lookup_task("a")
    assert found is not None
    assert found.kwargs == {"point": complex(1, 2)}
    store.shutdown()
