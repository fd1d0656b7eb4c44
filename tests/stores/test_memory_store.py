"""MemoryStore internals the shared contract cannot see: claims, heap entries kept on the
task objects, and the same object offered to two stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tickwork.stores.memory import MemoryStore
from tickwork.tasks import Task
from tickwork.triggers import IntervalTrigger

T0 = datetime(2026, 3, 1, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def work() -> None:
    """A task body."""


def make(task_id: str, at: datetime) -> Task:
    return Task(
        work,
        IntervalTrigger(minutes=1, start_at=T0),
        id=task_id,
        coalesce=True,
        max_instances=1,
        mistrigger_grace_time=1,
        next_run_time=at,
    )


def started(*tasks: Task, alias: str = "default") -> MemoryStore:
    store = MemoryStore()
    store.start(alias)
    for task in tasks:
        store.add_task(task)
    return store


def test_a_claim_never_released_is_put_back_at_the_next_acquire() -> None:
    store = started(make("a", T0), make("b", T0 + timedelta(seconds=1)))
    claimed = store.acquire_due_tasks(T0 + timedelta(seconds=5), 10, "me", LEASE)
    assert [t.id for t in claimed] == ["a", "b"]
    # The pass failed before release_tasks: the tasks must not have dropped out.
    assert store.get_next_run_time() == T0
    again = store.acquire_due_tasks(T0 + timedelta(seconds=5), 10, "me", LEASE)
    assert [t.id for t in again] == ["a", "b"]


def test_release_pushes_advanced_tasks_and_returns_unmentioned_ones() -> None:
    a, b, c = make("a", T0), make("b", T0), make("c", T0)
    store = started(a, b, c)
    assert len(store.acquire_due_tasks(T0, 10, "me", LEASE)) == 3
    a.next_run_time = T0 + timedelta(minutes=1)
    store.release_tasks("me", [a], ["b"])  # c not mentioned: goes back as it was
    assert store.lookup_task("b") is None
    assert [t.id for t in store.get_due_tasks(T0)] == ["c"]
    assert [t.id for t in store.get_due_tasks(T0 + timedelta(minutes=1))] == ["c", "a"]
    assert [t.id for t in store.acquire_due_tasks(T0 + timedelta(minutes=1), 10, "me", LEASE)] == [
        "c",
        "a",
    ]


def test_each_due_task_is_acquired_once_even_after_many_updates() -> None:
    tasks = [make(f"t{i}", T0 + timedelta(seconds=i % 7)) for i in range(300)]
    store = started(*tasks)
    for round_ in range(5):  # move every task back and forth: stale entries pile up
        for task in tasks:
            task.next_run_time = T0 + timedelta(seconds=(round_ * 3 + int(task.id[1:])) % 11)
            store.update_task(task)
    got = store.acquire_due_tasks(T0 + timedelta(minutes=1), 1000, "me", LEASE)
    assert sorted(t.id for t in got) == sorted(t.id for t in tasks)
    assert len(store._heap) <= 2 * len(tasks) + 64  # compacted, not growing without bound


def test_one_task_object_in_two_stores_runs_from_both() -> None:
    task = make("shared", T0)
    first, second = started(task, alias="first"), started(task, alias="second")
    assert [t.id for t in first.acquire_due_tasks(T0, 10, "me", LEASE)] == ["shared"]
    assert [t.id for t in second.acquire_due_tasks(T0, 10, "me", LEASE)] == ["shared"]


def test_a_paused_task_resumed_with_its_old_time_is_due_again() -> None:
    task = make("p", T0)
    store = started(task)
    task.next_run_time = None
    store.update_task(task)
    assert store.get_next_run_time() is None
    assert store.get_due_tasks(T0) == []
    task.next_run_time = T0
    store.update_task(task)
    assert [t.id for t in store.acquire_due_tasks(T0, 10, "me", LEASE)] == ["p"]


def test_removed_while_claimed_stays_removed() -> None:
    task = make("r", T0)
    store = started(task)
    assert store.acquire_due_tasks(T0, 10, "me", LEASE) == [task]
    store.remove_task("r")
    task.next_run_time = T0 + timedelta(minutes=1)
    store.release_tasks("me", [task], [])
    assert store.lookup_task("r") is None
    assert store.get_next_run_time() is None


def test_a_crowded_instant_is_taken_in_batches_each_task_once() -> None:
    tasks = [make(f"t{i:04}", T0) for i in range(1000)]
    store = started(*tasks)
    later = T0 + timedelta(minutes=1)
    seen: list[str] = []
    while batch := store.acquire_due_tasks(T0, 256, "me", LEASE):
        assert len(batch) <= 256
        seen += [t.id for t in batch]
        for task in batch:
            task.next_run_time = later
        store.release_tasks("me", batch, [])
    assert sorted(seen) == [t.id for t in tasks]
    assert store.get_next_run_time() == later


def test_moved_away_and_back_is_taken_once() -> None:
    task, other = make("x", T0), make("y", T0)
    store = started(task, other)
    for when in (T0 + timedelta(seconds=5), T0, T0 + timedelta(seconds=5), T0):
        task.next_run_time = when
        store.update_task(task)  # files "x" under T0 twice and T0+5s twice
    for limit in (1, 10):
        got = store.acquire_due_tasks(T0 + timedelta(seconds=10), limit, "me", LEASE)
        assert len({t.id for t in got}) == len(got)
        store.release_tasks("me", [], [])  # put back unchanged
    got = store.acquire_due_tasks(T0 + timedelta(seconds=10), 10, "me", LEASE)
    assert sorted(t.id for t in got) == ["x", "y"]


def test_next_run_time_skips_buckets_left_with_only_stale_ids() -> None:
    first, second = make("a", T0), make("b", T0 + timedelta(seconds=30))
    store = started(first, second)
    first.next_run_time = T0 + timedelta(minutes=5)
    store.update_task(first)
    assert store.get_next_run_time() == T0 + timedelta(seconds=30)
    store.remove_task("b")
    assert store.get_next_run_time() == T0 + timedelta(minutes=5)
    assert [t.id for t in store.get_due_tasks(T0 + timedelta(hours=1))] == ["a"]


def test_a_task_rescheduled_while_claimed_is_not_lost() -> None:
    # A pass failed between acquire and release; then the task was rescheduled, and the
    # scheduler asked for the next run time (which drops buckets with nothing live).
    task = make("x", T0)
    store = started(task)
    assert store.acquire_due_tasks(T0, 10, "me", LEASE) == [task]
    task.next_run_time = T0 + timedelta(minutes=5)
    store.update_task(task)
    assert store.get_next_run_time() == T0 + timedelta(minutes=5)
    assert store.acquire_due_tasks(T0 + timedelta(minutes=1), 10, "me", LEASE) == []
    assert store.get_next_run_time() == T0 + timedelta(minutes=5)
    assert store.acquire_due_tasks(T0 + timedelta(minutes=5), 10, "me", LEASE) == [task]


def test_a_task_replaced_while_claimed_is_due_after_the_release() -> None:
    store = started(make("x", T0))
    assert len(store.acquire_due_tasks(T0, 10, "me", LEASE)) == 1
    store.update_task(make("x", T0 + timedelta(minutes=5)))
    assert store.get_next_run_time() == T0 + timedelta(minutes=5)
    store.release_tasks("me", [], [])  # the pass mentions nothing
    assert [t.id for t in store.get_due_tasks(T0 + timedelta(minutes=5))] == ["x"]


def test_a_task_removed_and_added_again_while_claimed_is_due() -> None:
    store = started(make("x", T0))
    assert len(store.acquire_due_tasks(T0, 10, "me", LEASE)) == 1
    store.remove_task("x")
    again = make("x", T0 - timedelta(minutes=1))
    store.add_task(again)
    assert store.get_due_tasks(T0) == [again]  # not hidden by the old task's claim
    assert store.get_next_run_time() == T0 - timedelta(minutes=1)
    store.release_tasks("me", [], [])
    assert store.acquire_due_tasks(T0, 10, "me", LEASE) == [again]


def test_tasks_a_dead_pass_advanced_are_refiled_under_their_new_time() -> None:
    # The pass advances tasks in place (and starts their runs) before release_tasks;
    # when it fails in between, the next acquire files them back under the new times.
    a, b, c = (
        make("a", T0),
        make("b", T0 + timedelta(seconds=1)),
        make("c", T0 + timedelta(minutes=2)),
    )
    store = started(a, b, c)
    assert store.acquire_due_tasks(T0 + timedelta(seconds=1), 10, "me", LEASE) == [a, b]
    a.next_run_time = T0 + timedelta(minutes=1)
    b.next_run_time = None  # a pass can also leave a task without a next run
    assert store.get_due_tasks(T0 + timedelta(seconds=30)) == []
    assert store.acquire_due_tasks(T0 + timedelta(seconds=30), 10, "me", LEASE) == []
    assert store.get_next_run_time() == T0 + timedelta(minutes=1)
    assert store.get_due_tasks(T0 + timedelta(minutes=5)) == [a, c]


def test_stale_ids_are_swept_while_a_claim_is_pending() -> None:
    # A pass failed and left a claim; the tasks keep being rescheduled meanwhile.
    tasks = [make(f"t{i}", T0 + timedelta(minutes=1 + i)) for i in range(10)]
    store = started(make("claimed", T0), *tasks)
    assert len(store.acquire_due_tasks(T0, 1, "me", LEASE)) == 1
    for n in range(10_000):
        task = tasks[n % 10]
        task.next_run_time = T0 + timedelta(minutes=1, seconds=n)
        store.update_task(task)
    assert store._filed <= 2 * len(store) + 65
    assert [t.id for t in store.acquire_due_tasks(T0, 10, "me", LEASE)] == ["claimed"]


def test_release_of_a_task_another_store_holds_keeps_both_stores_whole() -> None:
    first, second = started(make("t", T0), alias="first"), started(make("t", T0), alias="second")
    held = first.lookup_task("t")
    assert held is not None
    second.release_tasks("me", [held], [])  # not acquired from "second"
    assert second.lookup_task("t") is not held
    assert held.store_alias == "first"
    got = second.acquire_due_tasks(T0, 10, "me", LEASE)
    got[0].next_run_time = T0 + timedelta(minutes=1)
    second.release_tasks("me", got, [])
    assert first.get_due_tasks(T0) == [held]
    assert first.get_next_run_time() == T0


def test_get_due_tasks_with_limit_zero_returns_nothing() -> None:
    store = started(make("a", T0))
    assert store.get_due_tasks(T0, limit=0) == []
    assert store.acquire_due_tasks(T0, 0, "me", LEASE) == []
