"""The ``leader_only`` task option: checked at add_task naming the value, filled from
task_defaults, changed with update, kept by every serializer, and refused by name for
a store that cannot elect a leader (NoElectionError)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from tickwork import BackgroundScheduler
from tickwork.exceptions import ConfigurationError, InvalidTaskError, NoElectionError
from tickwork.serializers import JSONSerializer, PickleSerializer
from tickwork.stores import FileStore, MemoryStore, SQLAlchemyStore
from tickwork.tasks import Task


def job() -> None:
    """A task function with an importable reference."""


def sql(tmp_path: Path) -> SQLAlchemyStore:
    return SQLAlchemyStore(f"sqlite:///{tmp_path / 'tasks.sqlite'}")


@pytest.mark.parametrize("value", ["yes", 1, 0, None])
def test_anything_but_a_bool_is_refused_by_name(tmp_path: Path, value: object) -> None:
    scheduler = BackgroundScheduler(stores={"default": sql(tmp_path)})
    with pytest.raises(InvalidTaskError, match=rf"leader_only must be True .* got {value!r}"):
        scheduler.add_task(job, "interval", seconds=5, leader_only=value)


def test_it_is_a_task_attribute_filled_from_task_defaults(tmp_path: Path) -> None:
    plain = BackgroundScheduler(stores={"default": sql(tmp_path)})
    assert plain.add_task(job, "interval", seconds=5).leader_only is False
    assert plain.add_task(job, "interval", seconds=5, leader_only=True).leader_only is True
    leading = BackgroundScheduler(
        stores={"default": sql(tmp_path)}, task_defaults={"leader_only": True}
    )
    assert leading.add_task(job, "interval", seconds=5).leader_only is True
    assert leading.add_task(job, "interval", seconds=5, leader_only=False).leader_only is False
    with pytest.raises(ConfigurationError, match="leader_only"):
        BackgroundScheduler(task_defaults={"leader_only": "always"})


def test_update_changes_it_and_a_stored_task_keeps_it(tmp_path: Path) -> None:
    scheduler = BackgroundScheduler(stores={"default": sql(tmp_path)}, timezone="UTC")
    with scheduler:
        scheduler.add_task(job, "interval", seconds=60, id="t")
        scheduler.update_task("t", leader_only=True)
        stored = scheduler.get_task("t")
        assert stored is not None
        assert stored.leader_only is True
        with pytest.raises(InvalidTaskError, match="leader_only"):
            scheduler.update_task("t", leader_only="no")
    again = BackgroundScheduler(stores={"default": sql(tmp_path)}, timezone="UTC")
    with again:
        found = again.get_task("t")
        assert found is not None
        assert found.leader_only is True


@pytest.mark.parametrize("serializer", [JSONSerializer(), PickleSerializer()])
def test_serializers_keep_it(serializer: JSONSerializer | PickleSerializer, tmp_path: Path) -> None:
    scheduler = BackgroundScheduler(lock_path=str(tmp_path / "{store}.lock"))
    task = scheduler.add_task(job, "interval", seconds=5, id="t", leader_only=True)
    task.next_run_time = None
    copy = serializer.deserialize(serializer.serialize(task))
    assert copy.leader_only is True
    plain = Task(job, trigger=task.trigger, id="p", next_run_time=None)
    state = plain.__getstate__()
    assert "leader_only" not in state  # the default is not written
    assert Task.from_state({**state, "leader_only": True}).leader_only is True
    with pytest.raises(InvalidTaskError, match="leader_only"):
        Task.from_state({**state, "leader_only": "yes"})
    assert pickle.loads(pickle.dumps(task)).leader_only is True


def test_a_memory_store_without_lock_path_cannot_elect() -> None:
    scheduler = BackgroundScheduler(timezone="UTC")
    # Before start the default store does not exist yet: start() refuses the task.
    scheduler.add_task(job, "interval", seconds=5, id="early", leader_only=True)
    with pytest.raises(NoElectionError, match="'early'") as raised:
        scheduler.start()
    message = str(raised.value)
    assert "store 'default' (MemoryStore) cannot elect a leader" in message
    assert "SQLAlchemyStore, RedisStore" in message
    assert "lock_path" in message
    assert not scheduler.running
    running = BackgroundScheduler(stores={"default": MemoryStore()})
    with running:
        with pytest.raises(NoElectionError, match="leader_only=True for task 'late'"):
            running.add_task(job, "interval", seconds=5, id="late", leader_only=True)
        running.add_task(job, "interval", seconds=5, id="plain")
        with pytest.raises(NoElectionError, match="'plain'"):
            running.update_task("plain", leader_only=True)
        stored = running.get_task("plain")
        assert stored is not None


def test_a_file_store_without_lock_path_cannot_elect(tmp_path: Path) -> None:
    scheduler = BackgroundScheduler(stores={"files": FileStore(tmp_path / "tasks")})
    with pytest.raises(NoElectionError, match=r"store 'files' \(FileStore\)"):
        scheduler.add_task(job, "interval", seconds=5, store="files", leader_only=True)


def test_lock_path_lets_memory_and_file_stores_elect(tmp_path: Path) -> None:
    scheduler = BackgroundScheduler(
        stores={"files": FileStore(tmp_path / "tasks")},
        lock_path=str(tmp_path / "tickwork-{store}.lock"),
    )
    scheduler.add_task(job, "interval", seconds=5, leader_only=True)
    scheduler.add_task(job, "interval", seconds=5, store="files", leader_only=True)
    with scheduler:
        pass


def test_the_error_is_a_configuration_error_and_pickles() -> None:
    error = NoElectionError("t", "default", "MemoryStore")
    assert isinstance(error, ConfigurationError)
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)
    assert copy.task_id == "t"
