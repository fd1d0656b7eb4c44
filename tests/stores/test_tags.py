"""Task tags kept by every store: ``BaseStore.get_tasks_by_tag``, and the scheduler's
``get_tasks(tag=)``, ``pause_tasks``, ``resume_tasks`` and ``remove_tasks`` on each."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy
from storetest_funcs import at, make_task, noop
from storetest_support import StoreMaker
from test_hostile_records import replace_stored_bytes, stored_bytes
from test_signed_records import protected

from tickwork.clock import FakeClock
from tickwork.events import TASK_MODIFIED, TASK_REMOVED, TaskEvent
from tickwork.executors import DebugExecutor
from tickwork.schedulers import BackgroundScheduler
from tickwork.serializers import JSONSerializer
from tickwork.stores import BaseStore
from tickwork.stores.redis import SCHEMA_VERSION as REDIS_VERSION
from tickwork.stores.redis import RedisStore
from tickwork.stores.sqlalchemy import SCHEMA_VERSION, SQLAlchemyStore
from tickwork.tasks import Task


def ids(tasks: list[Task]) -> list[str]:
    return [task.id for task in tasks]


def test_tags_survive_the_store(make_store: StoreMaker) -> None:
    store = make_store()
    store.add_task(make_task("a", at(5), tags={"billing", "eu"}))
    store.add_task(make_task("b", at(1), tags={"billing"}))
    store.add_task(make_task("c", at(3)))
    reopened = make_store()  # another object on the same location (memory: the same one)
    found = reopened.lookup_task("a")
    assert found is not None
    assert found.tags == frozenset({"billing", "eu"})
    untagged = reopened.lookup_task("c")
    assert untagged is not None
    assert untagged.tags == frozenset()
    # ordered as get_all_tasks: by next run time
    assert ids(reopened.get_tasks_by_tag("billing")) == ["b", "a"]
    assert ids(reopened.get_tasks_by_tag("eu")) == ["a"]
    assert reopened.get_tasks_by_tag("nope") == []


def test_an_update_moves_a_task_between_tags(store: BaseStore) -> None:
    store.add_task(make_task("a", at(5), tags={"billing"}))
    task = store.lookup_task("a")
    assert task is not None
    task._apply({"tags": {"reports"}})
    store.update_task(task)
    assert store.get_tasks_by_tag("billing") == []
    assert ids(store.get_tasks_by_tag("reports")) == ["a"]
    task._apply({"tags": set()})
    store.update_task(task)
    assert store.get_tasks_by_tag("reports") == []


def test_removed_tasks_leave_their_tags(store: BaseStore) -> None:
    store.add_tasks([make_task("a", at(5), tags={"x"}), make_task("b", at(6), tags={"x"})])
    store.remove_task("a")
    assert ids(store.get_tasks_by_tag("x")) == ["b"]
    store.remove_all_tasks()
    assert store.get_tasks_by_tag("x") == []


def _scheduler(store: BaseStore) -> BackgroundScheduler:
    return BackgroundScheduler(
        stores={"default": store},
        executors={"default": DebugExecutor()},
        timezone="UTC",
        clock=FakeClock(at(0)),
    )


def test_the_scheduler_acts_on_a_tag_with_events(make_store: StoreMaker) -> None:
    scheduler = _scheduler(make_store())
    events: list[tuple[int, Any]] = []
    scheduler.add_listener(
        lambda event: (
            events.append((event.code, event.task_id)) if isinstance(event, TaskEvent) else None
        ),
        TASK_MODIFIED | TASK_REMOVED,
    )
    scheduler.start(paused=True)
    try:
        for name in ("a", "b"):
            scheduler.add_task(noop, "interval", minutes=5, id=name, tags={"billing"})
        scheduler.add_task(noop, "interval", minutes=5, id="c", tags={"reports"})
        assert sorted(ids(scheduler.get_tasks(tag="billing"))) == ["a", "b"]
        assert scheduler.get_task_info("a")["tags"] == ["billing"]

        assert scheduler.pause_tasks("billing") == 2
        assert sorted(events) == [(TASK_MODIFIED, "a"), (TASK_MODIFIED, "b")]
        assert [scheduler.get_task(n).paused for n in "abc"] == [True, True, False]  # type: ignore[union-attr]
        assert scheduler.pause_tasks("billing") == 0  # already paused: left alone
        assert scheduler.resume_tasks("billing") == 2
        assert [scheduler.get_task(n).paused for n in "ab"] == [False, False]  # type: ignore[union-attr]

        scheduler.update_task("a", tags={"reports"})
        assert ids(scheduler.get_tasks(tag="billing")) == ["b"]
        events.clear()
        assert scheduler.remove_tasks("reports") == 2
        assert sorted(events) == [(TASK_REMOVED, "a"), (TASK_REMOVED, "c")]
        assert ids(scheduler.get_tasks()) == ["b"]
    finally:
        scheduler.shutdown(wait=False)


def test_a_version_4_sql_store_is_upgraded_in_place(make_sql_store: StoreMaker) -> None:
    # A version-4 store: the layout of this version without the tag index, with tasks in it.
    store = make_sql_store()
    assert isinstance(store, SQLAlchemyStore)
    store.add_task(make_task("old", at(5)))
    with store.engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP TABLE {store.tablename}_tags"))
        meta = sqlalchemy.Table(
            f"{store.tablename}_meta", sqlalchemy.MetaData(), autoload_with=conn
        )
        conn.execute(sqlalchemy.update(meta).values(value="4"))
    store.shutdown()

    upgraded = make_sql_store()
    assert isinstance(upgraded, SQLAlchemyStore)
    with upgraded.engine.connect() as conn:
        assert conn.execute(sqlalchemy.select(meta.c.value)).scalar_one() == str(SCHEMA_VERSION)
        assert sqlalchemy.inspect(conn).has_table(f"{upgraded.tablename}_tags")
    assert ids(upgraded.get_all_tasks()) == ["old"]  # kept, not dropped
    upgraded.add_task(make_task("new", at(1), tags={"x"}))
    assert ids(upgraded.get_tasks_by_tag("x")) == ["new"]


def test_sql_tags_are_indexed_rows(make_sql_store: StoreMaker) -> None:
    store = make_sql_store()
    assert isinstance(store, SQLAlchemyStore)
    store.add_tasks([make_task("a", at(5), tags={"x", "Y"}), make_task("b", at(6))])

    def rows() -> list[tuple[str, str]]:
        tags = sqlalchemy.Table(
            f"{store.tablename}_tags", sqlalchemy.MetaData(), autoload_with=store.engine
        )
        with store.engine.connect() as conn:
            found = conn.execute(sqlalchemy.select(tags.c.task_id, tags.c.tag)).all()
        return sorted(
            (
                bytes(i).decode() if isinstance(i, bytes | bytearray) else i,
                bytes(t).decode() if isinstance(t, bytes | bytearray) else t,
            )
            for i, t in found
        )

    assert rows() == [("a", "Y"), ("a", "x")]
    assert store.get_tasks_by_tag("y") == []  # exact: no case folding, even on MySQL
    task = store.lookup_task("a")
    assert task is not None
    task._apply({"tags": {"z"}})
    store.update_task(task)
    assert rows() == [("a", "z")]
    store.remove_task("a")
    assert rows() == []
    store.add_task(make_task("c", at(5), tags={"x"}))
    store.acquire_due_tasks(at(10), 10, "me", timedelta(seconds=30))
    store.release_tasks("me", [], ["c"])  # a finished task leaves the index too
    assert rows() == []


def test_a_version_4_redis_store_is_upgraded_in_place(make_store: StoreMaker) -> None:
    if make_store.kind != "redis":
        pytest.skip("Redis only (the SQL stores' upgrade: above)")
    store = make_store()
    assert isinstance(store, RedisStore)
    store.add_task(make_task("old", at(5)))
    store.client.hset(store.meta_key, "schema_version", "4")  # a version-4 store's keys
    store.shutdown()
    upgraded = make_store()
    assert isinstance(upgraded, RedisStore)
    assert upgraded.client.hget(upgraded.meta_key, "schema_version") == str(REDIS_VERSION).encode()
    assert ids(upgraded.get_all_tasks()) == ["old"]  # kept
    upgraded.add_task(make_task("new", at(1), tags={"x"}))
    assert ids(upgraded.get_tasks_by_tag("x")) == ["new"]


def test_redis_tags_are_an_index_kept_by_the_scripts(make_store: StoreMaker) -> None:
    if make_store.kind != "redis":
        pytest.skip("Redis only")
    store = make_store()
    assert isinstance(store, RedisStore)
    store.add_tasks([make_task("a", at(5), tags={"x", "xy"}), make_task("b", at(6))])

    def index() -> list[bytes]:
        return sorted(store.client.zrange(store.tag_index_key, 0, -1))

    assert index() == [b"x\0a", b"xy\0a"]
    assert ids(store.get_tasks_by_tag("x")) == ["a"]  # not "xy"'s: an exact range
    task = store.lookup_task("a")
    assert task is not None
    task._apply({"tags": {"z"}})
    store.update_task(task)
    assert index() == [b"z\0a"]
    store.remove_task("a")
    assert index() == []
    assert store.client.hlen(store.task_tags_key) == 0
    # A task a pass removes (RELEASE) leaves entries; the next read by tag drops them.
    store.add_task(make_task("c", at(5), tags={"x"}))
    store.acquire_due_tasks(at(10), 10, "me", timedelta(seconds=30))
    store.release_tasks("me", [], ["c"])
    assert store.get_tasks_by_tag("x") == []
    assert index() == []


# -- acting on a tag: one store operation (issue 17) -------------------------------------


def _tagged_set(store: BaseStore, count: int) -> None:
    """``count`` tasks tagged ``x`` due from at(1), one paused, and ``y`` task."""
    tasks = [make_task(f"x{i:03d}", at(1 + i), tags={"x"}) for i in range(count)]
    tasks.append(make_task("paused", None, tags={"x"}))
    tasks.append(make_task("other", at(2), tags={"y"}))
    store.add_tasks(tasks)


def test_pause_resume_remove_by_tag(make_store: StoreMaker) -> None:
    store = make_store()
    _tagged_set(store, 3)
    paused = store.pause_tasks_by_tag("x")
    assert sorted(ids(paused)) == ["x000", "x001", "x002"]  # "paused" was already
    assert all(task.next_run_time is None and task.store_alias == "default" for task in paused)
    reopened = make_store()  # what is stored, not only what was returned
    assert [t.next_run_time for t in reopened.get_tasks_by_tag("x")] == [None] * 4
    assert ids(reopened.get_due_tasks(at(100))) == ["other"]  # the next-run index follows
    assert reopened.get_next_run_time() == at(2)
    assert store.pause_tasks_by_tag("x") == []

    asked: list[str] = []

    def next_run_time(task: Task) -> Any:
        asked.append(task.id)
        return {"x000": None, "x001": False}.get(task.id, at(50))

    resumed, removed = store.resume_tasks_by_tag("x", next_run_time)
    assert sorted(asked) == ["paused", "x000", "x001", "x002"]
    assert sorted(ids(resumed)) == ["paused", "x002"]
    assert ids(removed) == ["x000"]  # its trigger is finished
    reopened = make_store()
    assert reopened.lookup_task("x000") is None
    assert reopened.lookup_task("x001").next_run_time is None  # type: ignore[union-attr]
    assert sorted(ids(reopened.get_due_tasks(at(60)))) == ["other", "paused", "x002"]
    assert ids(reopened.get_tasks_by_tag("x"))[2] == "x001"  # (still paused: last)

    assert sorted(ids(store.remove_tasks_by_tag("x"))) == ["paused", "x001", "x002"]
    reopened = make_store()
    assert reopened.get_tasks_by_tag("x") == []
    assert ids(reopened.get_all_tasks()) == ["other"]
    assert store.remove_tasks_by_tag("x") == []
    store.add_task(make_task("x001", at(1), tags={"x"}))  # the id and its index are free
    assert ids(store.get_tasks_by_tag("x")) == ["x001"]


def test_a_record_that_cannot_load_is_skipped_and_the_others_are_changed(
    make_persistent_store: StoreMaker, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_persistent_store()
    _tagged_set(store, 3)
    replace_stored_bytes(store, "x001", b"not a task")
    with caplog.at_level("ERROR"):
        assert sorted(ids(store.pause_tasks_by_tag("x"))) == ["x000", "x002"]
    assert "x001" in caplog.text  # logged, as every read of it is
    assert stored_bytes(store, "x001") == b"not a task"  # never changed
    resumed, removed = store.resume_tasks_by_tag("x", lambda task: at(50))
    assert sorted(ids(resumed)) == ["paused", "x000", "x002"]
    assert removed == []
    assert sorted(ids(store.remove_tasks_by_tag("x"))) == ["paused", "x000", "x002"]
    assert stored_bytes(store, "x001") == b"not a task"  # kept for the operator


def test_a_signed_store_signs_what_it_changes_by_tag(make_persistent_store: StoreMaker) -> None:
    refused: list[Any] = []
    store = protected(make_persistent_store(start=False), refused)
    _tagged_set(store, 2)
    store.pause_tasks_by_tag("x")
    reader = protected(make_persistent_store(start=False), refused)
    assert [t.next_run_time for t in reader.get_tasks_by_tag("x")] == [None] * 3
    store.resume_tasks_by_tag("x", lambda task: at(50))
    assert [t.next_run_time for t in reader.get_tasks_by_tag("x")] == [at(50)] * 3
    assert refused == []
    # and the records are signed: a reader without the key refuses them
    with pytest.raises(Exception, match="sign"):
        JSONSerializer().deserialize(stored_bytes(store, "x000"))


def test_a_claimed_task_is_changed_by_tag_as_update_and_remove_change_it(
    make_shared_store: StoreMaker,
) -> None:
    store = make_shared_store()
    _tagged_set(store, 2)
    claimed = store.acquire_due_tasks(at(100), 10, "member", timedelta(seconds=30))
    assert "x000" in ids(claimed)
    assert sorted(ids(store.pause_tasks_by_tag("x"))) == ["x000", "x001"]  # as update_task
    assert sorted(ids(store.remove_tasks_by_tag("x"))) == ["paused", "x000", "x001"]
    # the member's write-back finds them deleted: they stay deleted (as after remove_task)
    advanced = [t for t in claimed if t.id.startswith("x")]
    for task in advanced:
        task.next_run_time = at(200)
    store.release_tasks("member", advanced, [])
    assert ids(store.get_all_tasks()) == ["other"]
    assert store.get_tasks_by_tag("x") == []


@pytest.mark.parametrize("count", [3, 40])
def test_sql_acts_on_a_tag_with_a_bounded_number_of_statements(
    make_sql_store: StoreMaker, count: int
) -> None:
    store = make_sql_store()
    assert isinstance(store, SQLAlchemyStore)
    _tagged_set(store, count)
    statements: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.split()[0].upper())

    sqlalchemy.event.listen(store.engine, "before_cursor_execute", note)
    try:
        assert len(store.pause_tasks_by_tag("x")) == count
        paused = list(statements)
        statements.clear()
        resumed, removed = store.resume_tasks_by_tag(
            "x", lambda task: None if task.id == "x000" else at(50)
        )
        assert (len(resumed), len(removed)) == (count, 1)
        resuming = list(statements)
        statements.clear()
        assert len(store.remove_tasks_by_tag("x")) == count
        removing = list(statements)
    finally:
        sqlalchemy.event.remove(store.engine, "before_cursor_execute", note)
    # the same few statements for 3 tasks as for 40: select, then bulk writes
    # (SQLite adds its BEGIN IMMEDIATE)
    begin = ["BEGIN"] if store.engine.dialect.name == "sqlite" else []
    assert paused == [*begin, "SELECT", "UPDATE"]
    assert resuming == [*begin, "SELECT", "UPDATE", "DELETE", "DELETE"]
    assert removing == [*begin, "SELECT", "DELETE", "DELETE"]


@pytest.mark.parametrize("count", [3, 40])
def test_redis_acts_on_a_tag_with_one_read_and_one_write_script(
    make_store: StoreMaker, count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if make_store.kind != "redis":
        pytest.skip("Redis only")
    store = make_store()
    assert isinstance(store, RedisStore)
    _tagged_set(store, count)
    commands: list[str] = []
    execute = store.client.execute_command

    def counted(*args: Any, **options: Any) -> Any:
        commands.append(str(args[0]).upper())
        return execute(*args, **options)

    monkeypatch.setattr(store.client, "execute_command", counted)
    assert len(store.pause_tasks_by_tag("x")) == count
    assert commands == ["EVALSHA", "EVALSHA"]  # TAGGED, then WRITE_TAGGED
    commands.clear()
    assert len(store.remove_tasks_by_tag("x")) == count + 1
    assert commands == ["EVALSHA", "EVALSHA"]
    assert store.client.zrange(store.tag_index_key, 0, -1) == [b"y\0other"]


def test_redis_rereads_a_record_changed_between_its_read_and_write(
    make_store: StoreMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    if make_store.kind != "redis":
        pytest.skip("Redis only")
    store = make_store()
    assert isinstance(store, RedisStore)
    _tagged_set(store, 2)
    writer = make_store()
    read = store._tagged
    rounds: list[int] = []

    def read_then_change(*args: Any, **options: Any) -> Any:
        reply = read(*args, **options)
        if not rounds:  # another process rewrites x000 (new args) right after the read
            task = writer.lookup_task("x000")
            assert task is not None
            task._apply({"args": [7]})
            writer.update_task(task)
        rounds.append(1)
        return reply

    monkeypatch.setattr(store, "_tagged", read_then_change)
    assert sorted(ids(store.pause_tasks_by_tag("x"))) == ["x000", "x001"]
    assert len(rounds) == 2  # x000 was read and written again, not overwritten
    found = writer.lookup_task("x000")
    assert found is not None
    assert (found.args, found.next_run_time) == ((7,), None)


def test_a_write_back_keeps_the_tag_index_in_step_with_the_record(
    make_shared_store: StoreMaker, caplog: pytest.LogCaptureFixture
) -> None:
    # A member claims "a" (tagged x); meanwhile another process retags it y. The
    # member's write-back keeps that change (advancing the run time), and the index says
    # what the record says; the merge is not silent.
    store = make_shared_store()
    store.add_task(make_task("a", at(1), tags={"x"}))
    (claimed,) = store.acquire_due_tasks(at(10), 10, "member", timedelta(seconds=30))
    other = make_shared_store()
    retagged = other.lookup_task("a")
    assert retagged is not None
    retagged._apply({"tags": {"y"}})
    other.update_task(retagged)
    claimed.next_run_time = at(20)
    with caplog.at_level("INFO"):
        assert not store.release_tasks("member", [claimed], [])
    stored = store.lookup_task("a")
    assert stored is not None
    assert (stored.tags, stored.next_run_time) == (frozenset({"y"}), at(20))
    assert ids(store.get_tasks_by_tag("y")) == ["a"]
    assert store.get_tasks_by_tag("x") == []
    assert "'a' was changed while" in caplog.text
    # a task a pass removes leaves the index at once
    (claimed,) = store.acquire_due_tasks(at(30), 10, "member", timedelta(seconds=30))
    store.release_tasks("member", [], ["a"])
    store.add_task(make_task("b", at(1), tags={"x"}))
    assert ids(store.get_tasks_by_tag("x")) == ["b"]
