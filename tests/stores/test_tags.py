"""Task tags kept by every store: ``BaseStore.get_tasks_by_tag``, and the scheduler's
``get_tasks(tag=)``, ``pause_tasks``, ``resume_tasks`` and ``remove_tasks`` on each."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy
from storetest_funcs import at, make_task, noop
from storetest_support import StoreMaker

from tickwork.clock import FakeClock
from tickwork.events import TASK_MODIFIED, TASK_REMOVED, TaskEvent
from tickwork.executors import DebugExecutor
from tickwork.schedulers import BackgroundScheduler
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
