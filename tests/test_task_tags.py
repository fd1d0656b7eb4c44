"""Task tags at the API: ``add_task(tags=)``, ``Task.tags``, ``update(tags=)``, the
refusals, routers, tasks added before start, the saved state and the async twins. (Each
store keeping tags: tests/stores/test_tags.py.)"""

from __future__ import annotations

import asyncio
import pickle
from datetime import UTC, datetime
from typing import Any

import pytest

from tickwork import AsyncIOScheduler, BackgroundScheduler, TaskRouter
from tickwork.clock import FakeClock
from tickwork.events import TASK_MODIFIED, TASK_REMOVED, TaskEvent
from tickwork.exceptions import InvalidTaskError
from tickwork.executors import DebugExecutor
from tickwork.serializers import JSONSerializer
from tickwork.stores import BaseStore, MemoryStore
from tickwork.tasks import Task


def noop() -> None:
    pass


@pytest.fixture
def scheduler() -> BackgroundScheduler:
    return BackgroundScheduler(timezone="UTC")


def ids(tasks: list[Task]) -> list[str]:
    return sorted(task.id for task in tasks)


def test_tags_are_a_frozenset_shared_when_empty(scheduler: BackgroundScheduler) -> None:
    tagged = scheduler.add_task(noop, "interval", seconds=5, tags=["billing", "eu", "billing"])
    plain = scheduler.add_task(noop, "interval", seconds=5, next_run_time=None)
    assert tagged.tags == frozenset({"billing", "eu"})
    assert type(tagged.tags) is frozenset
    assert plain.tags is Task(noop, "interval", seconds=5).tags  # one shared empty set


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ("billing", r"bare string 'billing'; write tags=\{'billing'\}"),
        ({1}, "a tag must be a string, got 1"),
        ({""}, "must not be the empty string"),
        (5, "tags must be a set of strings, got 5"),
        ({"a": 1}, "got the mapping"),
        ({f"t{i}" for i in range(33)}, "at most 32 tags, got 33"),
        ({"x" * 192}, "192 characters long; at most 191"),
    ],
)
def test_bad_tags_are_refused_naming_the_value(
    scheduler: BackgroundScheduler, tags: Any, message: str
) -> None:
    with pytest.raises(InvalidTaskError, match=message):
        scheduler.add_task(noop, "interval", seconds=5, tags=tags)
    task = scheduler.add_task(noop, "interval", seconds=5, id="t", tags={"ok"})
    with pytest.raises(InvalidTaskError, match=message):
        task.update(tags=tags)
    assert task.tags == frozenset({"ok"})  # a refused update changes nothing
    with pytest.raises(InvalidTaskError, match=message):
        Task(noop, "interval", seconds=5, tags=tags)


@pytest.mark.parametrize("tag", [None, 3, ""])
def test_acting_on_a_bad_tag_is_refused(scheduler: BackgroundScheduler, tag: Any) -> None:
    for call in (scheduler.pause_tasks, scheduler.resume_tasks, scheduler.remove_tasks):
        with pytest.raises(InvalidTaskError, match="tag must"):
            call(tag)
    if tag is not None:  # (None: no filter)
        with pytest.raises(InvalidTaskError, match="tag must"):
            scheduler.get_tasks(tag=tag)


def test_tasks_added_before_start_are_found_and_acted_on(
    scheduler: BackgroundScheduler,
) -> None:
    scheduler.add_task(noop, "interval", seconds=5, id="a", tags={"x"})
    scheduler.add_task(noop, "interval", seconds=5, id="b")
    assert ids(scheduler.get_tasks(tag="x")) == ["a"]
    assert scheduler.pause_tasks("x") == 1
    scheduler.start(paused=True)
    try:
        task = scheduler.get_task("a")
        assert task is not None
        assert task.paused
        assert task.tags == frozenset({"x"})
        assert scheduler.resume_tasks("x") == 1
        assert scheduler.remove_tasks("x") == 1
        assert ids(scheduler.get_tasks()) == ["b"]
    finally:
        scheduler.shutdown(wait=False)


def test_the_decorator_and_prepared_tasks_take_tags(scheduler: BackgroundScheduler) -> None:
    @scheduler.add_task(trigger="interval", seconds=5, id="dec", tags={"x"})
    def decorated() -> None:
        pass

    prepared = Task(noop, "interval", seconds=5, id="prep")
    scheduler.add_task(prepared, tags={"x", "y"})
    assert ids(scheduler.get_tasks(tag="x")) == ["dec", "prep"]
    assert ids(scheduler.get_tasks(tag="y")) == ["prep"]


def test_a_router_passes_tags_through(scheduler: BackgroundScheduler) -> None:
    router = TaskRouter()
    router.add_task(noop, "interval", seconds=5, id="r1", tags={"billing"})

    @router.interval(seconds=5, tags={"billing", "eu"})
    def refresh() -> None:
        pass

    with pytest.raises(InvalidTaskError, match="bare string"):
        router.add_task(noop, "interval", seconds=5, id="r3", tags="billing")
    scheduler.include_router(router)
    assert len(scheduler.get_tasks(tag="billing")) == 2
    assert len(scheduler.get_tasks(tag="eu")) == 1


def test_tags_survive_the_saved_state(scheduler: BackgroundScheduler) -> None:
    task = scheduler.add_task(
        noop, "interval", seconds=5, id="s", tags={"b", "a"}, next_run_time=None
    )
    state = task.__getstate__()
    assert state["tags"] == ["a", "b"]  # sorted: a stable record
    assert Task.from_state(state).tags == frozenset({"a", "b"})
    assert pickle.loads(pickle.dumps(task)).tags == frozenset({"a", "b"})
    serializer = JSONSerializer()
    assert serializer.deserialize(serializer.serialize(task)).tags == frozenset({"a", "b"})
    # an untagged task's record has no tags entry (as records written before tags)
    plain = scheduler.add_task(noop, "interval", seconds=5, next_run_time=None)
    assert "tags" not in plain.__getstate__()


@pytest.mark.parametrize("bad", ["a", [1], [""], {"a": 1}])
def test_a_stored_record_with_bad_tags_is_refused(scheduler: BackgroundScheduler, bad: Any) -> None:
    state = scheduler.add_task(noop, "interval", seconds=5, id="s", next_run_time=None)
    state = state.__getstate__()
    with pytest.raises(InvalidTaskError, match="field 'tags'"):
        Task.from_state({**state, "tags": bad})


def test_the_async_twins() -> None:
    async def main() -> None:
        scheduler = AsyncIOScheduler(timezone="UTC")
        async with scheduler:
            for name in ("a", "b"):
                await scheduler.add_task_async(noop, "interval", seconds=5, id=name, tags={"x"})
            assert ids(await scheduler.get_tasks_async(tag="x")) == ["a", "b"]
            assert await scheduler.pause_tasks_async("x") == 2
            assert await scheduler.resume_tasks_async("x") == 2
            assert await scheduler.remove_tasks_async("x") == 2
            assert await scheduler.get_tasks_async() == []

    asyncio.run(main())


class CountingStore(MemoryStore):
    """A memory store that counts the calls the scheduler makes of it (only from the
    outside: the store's own methods calling each other are not counted)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self._inside = False

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if name.endswith(("_task", "_tasks", "_by_tag")) and callable(value):
            calls = super().__getattribute__("calls")

            def counted(*args: Any, **kwargs: Any) -> Any:
                if self._inside:
                    return value(*args, **kwargs)
                calls.append(name)
                self._inside = True
                try:
                    return value(*args, **kwargs)
                finally:
                    self._inside = False

            return counted
        return value


class LegacyStore(MemoryStore):
    """A store written before the tag operations: BaseStore's defaults do them."""

    pause_tasks_by_tag = BaseStore.pause_tasks_by_tag
    resume_tasks_by_tag = BaseStore.resume_tasks_by_tag
    remove_tasks_by_tag = BaseStore.remove_tasks_by_tag


def _watched(store: MemoryStore) -> tuple[BackgroundScheduler, list[tuple[int, str | None]]]:
    scheduler = BackgroundScheduler(
        stores={"default": store},
        executors={"default": DebugExecutor()},
        timezone="UTC",
        clock=FakeClock(datetime(2030, 1, 1, tzinfo=UTC)),
    )
    events: list[tuple[int, str | None]] = []
    scheduler.add_listener(
        lambda e: events.append((e.code, e.task_id)) if isinstance(e, TaskEvent) else None,
        TASK_MODIFIED | TASK_REMOVED,
    )
    return scheduler, events


@pytest.mark.parametrize("store_class", [CountingStore, LegacyStore])
def test_one_store_call_and_one_event_per_task(store_class: type[MemoryStore]) -> None:
    store = store_class()
    scheduler, events = _watched(store)
    scheduler.start(paused=True)
    try:
        for n in range(5):
            scheduler.add_task(noop, "interval", minutes=5, id=f"t{n}", tags={"x"})
        # a finished trigger (it ended before now): resuming removes it
        scheduler.add_task(
            noop,
            "interval",
            minutes=5,
            id="ended",
            tags={"x"},
            next_run_time=None,
            end_date=datetime(2029, 1, 1, tzinfo=UTC),
        )
        scheduler.add_task(noop, "shutdown", id="at-exit", tags={"x"})  # never paused
        scheduler.add_task(noop, "interval", minutes=5, id="other", tags={"y"})
        if isinstance(store, CountingStore):
            store.calls.clear()
        events.clear()

        assert scheduler.pause_tasks("x") == 5
        assert sorted(events) == [(TASK_MODIFIED, f"t{n}") for n in range(5)]
        if isinstance(store, CountingStore):
            assert store.calls == ["pause_tasks_by_tag"]  # not a write per task
            store.calls.clear()
        events.clear()

        assert scheduler.resume_tasks("x") == 6
        if isinstance(store, CountingStore):
            assert store.calls == ["resume_tasks_by_tag"]
        resumed_events = [(TASK_MODIFIED, f"t{n}") for n in range(5)]
        assert sorted(events) == sorted([*resumed_events, (TASK_REMOVED, "ended")])
        assert scheduler.get_task("ended") is None
        assert scheduler.get_task("at-exit") is not None  # left as it is
        resumed = scheduler.get_task("t0")
        assert resumed is not None
        assert resumed.next_run_time == datetime(2030, 1, 1, 0, 5, tzinfo=UTC)
        events.clear()
        if isinstance(store, CountingStore):
            store.calls.clear()

        assert scheduler.remove_tasks("x") == 6
        assert sorted(events, key=str) == sorted(
            [(TASK_REMOVED, f"t{n}") for n in range(5)] + [(TASK_REMOVED, "at-exit")], key=str
        )
        if isinstance(store, CountingStore):
            assert store.calls == ["remove_tasks_by_tag"]
        assert [task.id for task in scheduler.get_tasks()] == ["other"]
    finally:
        scheduler.shutdown(wait=False)


def test_tag_operations_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    scheduler, _ = _watched(MemoryStore())
    scheduler.start(paused=True)
    try:
        scheduler.add_task(noop, "interval", minutes=5, id="a", tags={"x"})
        with caplog.at_level("INFO", logger="tickwork"):
            scheduler.pause_tasks("x")
            scheduler.remove_tasks("x")
        assert "1 task(s) paused by tag 'x' in store 'default'" in caplog.text
        assert "1 task(s) removed by tag 'x' in store 'default'" in caplog.text
    finally:
        scheduler.shutdown(wait=False)
