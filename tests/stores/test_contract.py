"""The store contract (:class:`tickwork.stores.base.BaseStore`), checked on every backend."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from storetest_funcs import NOW, at, make_task, noop, other
from storetest_support import StoreMaker

from tickwork.exceptions import ConflictIdError, SerializationError, TaskLookupError
from tickwork.serializers import JSONSerializer
from tickwork.stores import BaseStore
from tickwork.tasks import Task


def ids(tasks: list[Task]) -> list[str]:
    return [task.id for task in tasks]


# -- add and look up ----------------------------------------------------------------------


def test_add_then_lookup_returns_an_equal_task(store: BaseStore) -> None:
    task = make_task("a", at(5), kwargs={"when": NOW, "zone": ZoneInfo("Europe/Paris")})
    store.add_task(task)
    found = store.lookup_task("a")
    assert found is not None
    assert (found.id, found.name, found.fn, found.args, found.kwargs) == (
        "a",
        task.name,
        noop,
        (1, "two"),
        {"when": NOW, "zone": ZoneInfo("Europe/Paris")},
    )
    assert found.trigger == task.trigger
    assert found.next_run_time == at(5)
    assert (found.coalesce, found.max_instances, found.mistrigger_grace_time) == (True, 1, 30.0)
    assert (found.executor, found.store_alias) == ("default", "default")


def test_lookup_of_an_unknown_id_returns_none(store: BaseStore) -> None:
    assert store.lookup_task("nope") is None


def test_adding_a_taken_id_raises_conflict_and_keeps_the_first(store: BaseStore) -> None:
    store.add_task(make_task("a", at(5)))
    with pytest.raises(ConflictIdError, match="'a'"):
        store.add_task(make_task("a", at(9), fn=other))
    found = store.lookup_task("a")
    assert found is not None
    assert (found.fn, found.next_run_time) == (noop, at(5))


def test_ids_are_kept_exactly(store: BaseStore) -> None:
    # Case, trailing spaces, path separators, dots and non-ASCII must not collide.
    odd = ["a", "A", "a ", "a/b", "../up", ".hidden", "a%2Fb", "ü-ñ ✓", "x" * 150]
    for index, task_id in enumerate(odd):
        store.add_task(make_task(task_id, at(index)))
    for index, task_id in enumerate(odd):
        found = store.lookup_task(task_id)
        assert found is not None, task_id
        assert found.next_run_time == at(index), task_id
    assert ids(store.get_all_tasks()) == odd


# -- listing ------------------------------------------------------------------------------


def test_all_tasks_come_ordered_by_next_run_time_paused_last(store: BaseStore) -> None:
    store.add_task(make_task("paused", None))
    store.add_task(make_task("late", at(30)))
    store.add_task(make_task("early", at(-30)))
    store.add_task(make_task("middle", at(1)))
    tasks = store.get_all_tasks()
    assert ids(tasks) == ["early", "middle", "late", "paused"]
    assert {task.store_alias for task in tasks} == {"default"}


def test_an_empty_store_lists_nothing(store: BaseStore) -> None:
    assert store.get_all_tasks() == []
    assert store.get_due_tasks(NOW) == []
    assert store.get_next_run_time() is None


# -- update and remove ----------------------------------------------------------------------


def test_update_replaces_the_stored_task(store: BaseStore) -> None:
    store.add_task(make_task("a", at(5)))
    store.add_task(make_task("b", at(10)))
    store.update_task(make_task("a", at(20), fn=other, args=(3,), kwargs={}))
    found = store.lookup_task("a")
    assert found is not None
    assert (found.fn, found.args, found.kwargs, found.next_run_time) == (other, (3,), {}, at(20))
    assert ids(store.get_all_tasks()) == ["b", "a"]
    assert store.get_next_run_time() == at(10)


def test_update_can_pause_and_resume(store: BaseStore) -> None:
    store.add_task(make_task("a", at(-1)))
    store.update_task(make_task("a", None))
    assert store.get_due_tasks(NOW) == []
    assert store.get_next_run_time() is None
    store.update_task(make_task("a", at(-2)))
    assert ids(store.get_due_tasks(NOW)) == ["a"]


def test_update_of_an_unknown_id_raises_lookup_error(store: BaseStore) -> None:
    with pytest.raises(TaskLookupError, match="'ghost'"):
        store.update_task(make_task("ghost"))
    assert store.lookup_task("ghost") is None


def test_remove_deletes_the_task(store: BaseStore) -> None:
    store.add_task(make_task("a", at(-1)))
    store.add_task(make_task("b", at(1)))
    store.remove_task("a")
    assert store.lookup_task("a") is None
    assert ids(store.get_all_tasks()) == ["b"]
    assert store.get_due_tasks(NOW) == []
    assert store.get_next_run_time() == at(1)


def test_remove_of_an_unknown_id_raises_lookup_error(store: BaseStore) -> None:
    with pytest.raises(TaskLookupError, match="'ghost'"):
        store.remove_task("ghost")


def test_remove_all_empties_the_store(store: BaseStore) -> None:
    for index in range(5):
        store.add_task(make_task(f"t{index}", at(index - 2) if index else None))
    store.remove_all_tasks()
    assert store.get_all_tasks() == []
    assert store.get_next_run_time() is None
    store.add_task(make_task("again", at(1)))  # still usable afterwards
    assert ids(store.get_all_tasks()) == ["again"]


# -- what is due ------------------------------------------------------------------------------


def test_due_tasks_are_earliest_first_and_include_now(store: BaseStore) -> None:
    store.add_task(make_task("future", at(1)))
    store.add_task(make_task("now", NOW))
    store.add_task(make_task("paused", None))
    store.add_task(make_task("past", at(-10)))
    store.add_task(make_task("just-past", at(-0.001)))
    due = store.get_due_tasks(NOW)
    assert ids(due) == ["past", "just-past", "now"]
    assert {task.store_alias for task in due} == {"default"}


def test_due_tasks_respect_the_limit(store: BaseStore) -> None:
    for index in range(10):
        store.add_task(make_task(f"t{index}", at(-index)))
    assert ids(store.get_due_tasks(NOW, limit=3)) == ["t9", "t8", "t7"]
    assert len(store.get_due_tasks(NOW)) == 10


def test_due_compares_instants_across_time_zones(store: BaseStore) -> None:
    paris = ZoneInfo("Europe/Paris")
    store.add_task(make_task("a", at(-1).astimezone(paris)))
    store.add_task(make_task("b", at(1).astimezone(ZoneInfo("America/New_York"))))
    assert ids(store.get_due_tasks(NOW.astimezone(ZoneInfo("Asia/Tokyo")))) == ["a"]
    found = store.lookup_task("a")
    assert found is not None
    assert found.next_run_time is not None
    assert found.next_run_time.tzinfo == paris  # the zone comes back, not only the instant


def test_next_run_time_is_the_earliest_unpaused(store: BaseStore) -> None:
    store.add_task(make_task("paused", None))
    assert store.get_next_run_time() is None
    store.add_task(make_task("b", at(7)))
    store.add_task(make_task("a", at(3)))
    assert store.get_next_run_time() == at(3)


# -- batches and the processing pass ---------------------------------------------------------------


def test_add_tasks_adds_a_batch(store: BaseStore) -> None:
    batch = [make_task(f"t{index}", at(index)) for index in range(20)]
    store.add_tasks(batch)
    assert ids(store.get_all_tasks()) == [f"t{index}" for index in range(20)]
    assert {task.store_alias for task in batch} == {"default"}


def test_add_tasks_with_a_stored_id_adds_none(store: BaseStore) -> None:
    store.add_task(make_task("taken", at(1)))
    with pytest.raises(ConflictIdError, match="'taken'"):
        store.add_tasks([make_task("new1"), make_task("taken"), make_task("new2")])
    assert ids(store.get_all_tasks()) == ["taken"]


def test_add_tasks_with_a_duplicate_in_the_batch_adds_none(store: BaseStore) -> None:
    with pytest.raises(ConflictIdError, match="'twice'"):
        store.add_tasks([make_task("twice"), make_task("other"), make_task("twice")])
    assert store.get_all_tasks() == []


def test_acquire_and_release_by_default(store: BaseStore) -> None:
    for name, minutes in [("a", -3), ("b", -2), ("c", -1), ("later", 5)]:
        store.add_task(make_task(name, at(minutes)))
    lease = timedelta(seconds=30)
    acquired = store.acquire_due_tasks(NOW, 2, "me", lease)
    assert ids(acquired) == ["a", "b"]
    assert {task.store_alias for task in acquired} == {"default"}
    # b is deleted by someone else while "me" works on it: it must stay deleted.
    store.remove_task("b")
    advanced_a = make_task("a", at(10))
    advanced_b = make_task("b", at(11))
    store.release_tasks("me", [advanced_a, advanced_b], ["c"])
    assert ids(store.get_all_tasks()) == ["later", "a"]
    found = store.lookup_task("a")
    assert found is not None
    assert found.next_run_time == at(10)
    assert store.get_due_tasks(NOW) == []


def test_release_tolerates_unknown_ids(store: BaseStore) -> None:
    store.release_tasks("me", [make_task("ghost", at(1))], ["ghost2"])
    assert store.get_all_tasks() == []


def test_concurrent_adds_from_threads_all_land(store: BaseStore) -> None:
    errors: list[BaseException] = []

    def add_many(offset: int) -> None:
        try:
            for index in range(10):
                store.add_task(make_task(f"t{offset + index:03d}", at(offset + index)))
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=add_many, args=(offset,)) for offset in (0, 10, 20, 30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ids(store.get_all_tasks()) == [f"t{index:03d}" for index in range(40)]


# -- persistent stores only ------------------------------------------------------------------------


def test_tasks_survive_a_new_store_object(make_persistent_store: StoreMaker) -> None:
    first = make_persistent_store()
    first.add_tasks([make_task("a", at(5)), make_task("p", None), make_task("b", at(-5))])
    first.shutdown()
    second = make_persistent_store(alias="again")
    tasks = second.get_all_tasks()
    assert ids(tasks) == ["b", "a", "p"]
    assert {task.store_alias for task in tasks} == {"again"}
    assert tasks[1].trigger == make_task("a").trigger
    assert tasks[1].kwargs == make_task("a").kwargs
    assert second.get_next_run_time() == at(-5)
    assert ids(second.get_due_tasks(NOW)) == ["b"]


def test_a_second_store_object_sees_the_first_ones_writes(
    make_persistent_store: StoreMaker,
) -> None:
    writer, reader = make_persistent_store(), make_persistent_store()
    assert reader.get_next_run_time() is None
    writer.add_task(make_task("a", at(-1)))
    assert ids(reader.get_due_tasks(NOW)) == ["a"]
    writer.update_task(make_task("a", at(3)))
    assert reader.get_next_run_time() == at(3)
    writer.remove_task("a")
    assert reader.get_all_tasks() == []


def test_stored_tasks_are_copies(make_persistent_store: StoreMaker) -> None:
    store = make_persistent_store()
    task = make_task("a", at(1), kwargs={"items": [1, 2]})
    store.add_task(task)
    task.kwargs["items"].append(3)
    found = store.lookup_task("a")
    assert found is not None
    assert found.kwargs == {"items": [1, 2]}


def test_unserializable_task_is_refused_before_anything_is_written(
    make_persistent_store: StoreMaker,
) -> None:
    store = make_persistent_store()
    with pytest.raises(SerializationError, match=r"task 'lam'.*module-level function"):
        store.add_task(make_task("lam", fn=lambda *args, **kwargs: None))
    with pytest.raises(SerializationError, match=r"kwargs\['lock'\]"):
        store.add_tasks([make_task("ok"), make_task("bad", kwargs={"lock": threading.Lock()})])
    assert store.get_all_tasks() == []
    store.add_task(make_task("a", at(1)))
    with pytest.raises(SerializationError, match=r"task 'a'.*args\[0\]"):
        store.update_task(make_task("a", at(2), args=(threading.Lock(),)))
    found = store.lookup_task("a")
    assert found is not None
    assert found.next_run_time == at(1)


class ForgetfulSerializer(JSONSerializer):
    """Reads tasks as if their function had been removed from the code base."""

    def deserialize(self, data: bytes) -> Task:
        return super().deserialize(data.replace(b"storetest_funcs:noop", b"storetest_funcs:gone"))


def test_a_task_that_cannot_load_is_logged_skipped_and_kept(
    make_persistent_store: StoreMaker, caplog: pytest.LogCaptureFixture
) -> None:
    writer = make_persistent_store()
    writer.add_task(make_task("broken", at(-5)))
    writer.add_task(make_task("fine", at(-1), fn=other))
    writer.add_task(make_task("later", at(5), fn=other))
    reader = make_persistent_store(alias="reader", serializer=ForgetfulSerializer())
    with caplog.at_level(logging.ERROR, logger="tickwork"):
        assert ids(reader.get_due_tasks(NOW, limit=1)) == ["fine"]
        assert ids(reader.get_due_tasks(NOW)) == ["fine"]
        assert ids(reader.get_all_tasks()) == ["fine", "later"]
        assert reader.lookup_task("broken") is None
        # A due task that cannot run must not keep the scheduler awake.
        reader.remove_task("fine")
        assert reader.get_next_run_time() == at(5)
    messages = [r.getMessage() for r in caplog.records if "'broken'" in r.getMessage()]
    assert len(messages) == 1, messages  # logged once, not on every query
    assert "storetest_funcs:gone" in messages[0]
    # Never deleted: the writer (which can load it) still has it.
    assert ids(writer.get_all_tasks()) == ["broken", "later"]
    # Rewriting it gives it a fresh try.
    reader.update_task(make_task("broken", at(-5), fn=other))
    assert ids(reader.get_due_tasks(NOW)) == ["broken"]
