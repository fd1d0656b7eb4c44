"""Task tags at the API: ``add_task(tags=)``, ``Task.tags``, ``update(tags=)``, the
refusals, routers, tasks added before start, the saved state and the async twins. (Each
store keeping tags: tests/stores/test_tags.py.)"""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest

from tickwork import AsyncIOScheduler, BackgroundScheduler, TaskRouter
from tickwork.exceptions import InvalidTaskError
from tickwork.serializers import JSONSerializer
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
