"""The lease part of the store contract: claims, run records, take-over.

Stores with ``supports_leases`` (SQL, Redis) must keep every rule below; the others
(memory, file) must keep the simple defaults, which the same tests check.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy
from storetest_funcs import NOW, at, make_task, once
from storetest_support import StoreMaker

from tickwork.stores import BaseStore
from tickwork.stores.redis import SCHEMA_VERSION as REDIS_VERSION
from tickwork.stores.redis import RedisStore
from tickwork.stores.sqlalchemy import SCHEMA_VERSION as SQL_VERSION
from tickwork.stores.sqlalchemy import SQLAlchemyStore
from tickwork.tasks import Task

LEASE = timedelta(seconds=30)


def ids(tasks: list[Task]) -> list[str]:
    return [task.id for task in tasks]


def test_lease_settings_are_declared(store: BaseStore) -> None:
    assert isinstance(store.supports_leases, bool)
    assert store.lease_time > 0
    assert store.supports_leases == isinstance(store, SQLAlchemyStore | RedisStore)


def test_a_claimed_task_is_not_handed_to_another_owner(store: BaseStore) -> None:
    store.add_task(make_task("a", at(-1)))
    store.add_task(make_task("b", at(-2)))
    assert ids(store.acquire_due_tasks(NOW, 10, "one", LEASE)) == ["b", "a"]
    second = store.acquire_due_tasks(NOW, 10, "two", LEASE)
    if not store.supports_leases:
        assert ids(second) == ["b", "a"]  # one scheduler per store: plain reads
        return
    assert second == []
    # The holder may claim its own tasks again (a write-back that failed is retried).
    assert ids(store.acquire_due_tasks(NOW, 10, "one", LEASE)) == ["b", "a"]
    # Reads ignore claims.
    assert ids(store.get_due_tasks(NOW)) == ["b", "a"]
    store.release_tasks("one", [make_task("a", at(10))], [])
    assert ids(store.acquire_due_tasks(NOW, 10, "two", LEASE)) == []  # b: still one's
    assert ids(store.acquire_due_tasks(at(1), 10, "two", LEASE)) == ["b"]  # expired


def test_the_limit_skips_claimed_tasks(store: BaseStore) -> None:
    for index in range(6):
        store.add_task(make_task(f"t{index}", at(-10 + index)))
    assert ids(store.acquire_due_tasks(NOW, 2, "one", LEASE)) == ["t0", "t1"]
    expected = ["t2", "t3"] if store.supports_leases else ["t0", "t1"]
    assert ids(store.acquire_due_tasks(NOW, 2, "two", LEASE)) == expected


def test_next_run_time_waits_for_another_owners_claim(store: BaseStore) -> None:
    store.add_task(make_task("a", at(-1)))
    store.add_task(make_task("later", at(5)))
    store.acquire_due_tasks(NOW, 10, "one", timedelta(minutes=2))
    # A task claimed by a (maybe dead) scheduler is due for the others when the claim
    # expires: they must not wake up in a loop meanwhile.
    assert store.get_next_run_time() == (at(2) if store.supports_leases else at(-1))
    store.release_tasks("one", [make_task("a", at(3))], [])
    assert store.get_next_run_time() == at(3)


def test_a_write_back_after_losing_the_claim_changes_nothing(store: BaseStore) -> None:
    store.add_task(make_task("a", at(-1)))
    store.add_task(make_task("once", at(-1), trigger=once(at(-1))))
    store.acquire_due_tasks(NOW, 10, "slow", LEASE)
    later = NOW + LEASE + timedelta(seconds=1)
    assert len(store.acquire_due_tasks(later, 10, "fast", LEASE)) == 2  # slow's expired
    skipped = store.release_tasks(
        "slow", [make_task("a", at(7))], ["once"], [(make_task("a"), at(-1))], later + LEASE
    )
    if not store.supports_leases:
        assert set(skipped) == set()
        return
    assert set(skipped) == {"a", "once"}
    found = store.lookup_task("a")
    assert found is not None
    assert found.next_run_time == at(-1)  # "fast" decides its runs now
    assert store.lookup_task("once") is not None
    assert store.count_runs(["a"]) == {}
    assert set(store.release_tasks("fast", [make_task("a", at(9))], ["once"])) == set()
    assert ids(store.get_all_tasks()) == ["a"]


def test_runs_are_recorded_counted_renewed_and_finished(store: BaseStore) -> None:
    store.add_task(make_task("a", at(-1)))
    store.add_task(make_task("b", at(-1)))
    store.acquire_due_tasks(NOW, 10, "me", LEASE)
    runs = [(make_task("a"), at(-1)), (make_task("a"), at(-2)), (make_task("b"), at(-1))]
    skipped = store.release_tasks(
        "me", [make_task("a", at(5)), make_task("b", at(5))], [], runs, NOW + LEASE
    )
    assert set(skipped) == set()
    if not store.supports_leases:
        assert store.count_runs(["a", "b"]) == {}
        assert store.renew_runs("me", [("a", at(-1))], NOW + LEASE) == 1
        store.finish_runs("me", [("a", at(-1))])
        assert store.take_over_runs(at(60), 10, "other", at(61)) == []
        return
    assert store.count_runs(["a", "b", "c"]) == {"a": 2, "b": 1}
    assert store.renew_runs("me", [("a", at(-1)), ("b", at(-1))], NOW + 2 * LEASE) == 2
    assert store.renew_runs("intruder", [("a", at(-1))], NOW + 3 * LEASE) == 0
    store.finish_runs("intruder", [("a", at(-1))])  # not theirs: left alone
    assert store.count_runs(["a"]) == {"a": 2}
    store.finish_runs("me", [("a", at(-1)), ("a", at(-2)), ("ghost", at(-1))])
    assert store.count_runs(["a", "b"]) == {"b": 1}
    # The tasks themselves were written back with the records.
    assert store.get_next_run_time() == at(5)


def test_expired_records_are_taken_over_once(store: BaseStore) -> None:
    store.add_task(make_task("a", at(-1), args=(7,)))
    store.add_task(make_task("once", at(-1), trigger=once(at(-1))))
    store.acquire_due_tasks(NOW, 10, "dead", LEASE)
    store.release_tasks(
        "dead",
        [make_task("a", at(5), args=(7,))],
        ["once"],
        [(make_task("a", args=(7,)), at(-1)), (make_task("once", trigger=once(at(-1))), at(-1))],
        NOW + LEASE,
    )
    assert store.take_over_runs(NOW + LEASE - timedelta(seconds=1), 10, "heir", at(5)) == []
    if not store.supports_leases:
        return
    store.renew_runs("dead", [("once", at(-1))], NOW + 2 * LEASE)
    taken = store.take_over_runs(NOW + LEASE + timedelta(seconds=1), 10, "heir", at(5))
    assert [(run.task.id, run.run_time, run.owner) for run in taken] == [("a", at(-1), "dead")]
    assert taken[0].task.args == (7,)
    assert taken[0].task.store_alias == "default"
    # Taken over once: the heir holds it now, nobody else gets it.
    assert store.take_over_runs(NOW + LEASE + timedelta(seconds=2), 10, "third", at(5)) == []
    assert store.renew_runs("dead", [("a", at(-1))], at(10)) == 0
    # The one-shot task is deleted, yet its run can still be taken over and run again.
    later = store.take_over_runs(NOW + 2 * LEASE + timedelta(seconds=1), 10, "heir", at(9))
    assert [(run.task.id, run.owner) for run in later] == [("once", "dead")]
    assert store.lookup_task("once") is None
    assert store.count_runs(["a", "once"]) == {"a": 1, "once": 1}
    store.finish_runs("heir", [("a", at(-1)), ("once", at(-1))])
    assert store.count_runs(["a", "once"]) == {}


def test_a_slot_already_in_progress_is_not_recorded_twice(store: BaseStore) -> None:
    store.add_task(make_task("a", at(-1)))
    store.acquire_due_tasks(NOW, 10, "me", LEASE)
    run = [(make_task("a"), at(-1))]
    assert set(store.release_tasks("me", [make_task("a", at(-1))], [], run, NOW + LEASE)) == set()
    store.acquire_due_tasks(NOW, 10, "me", LEASE)
    again = store.release_tasks("me", [make_task("a", at(4))], [], run, NOW + LEASE)
    assert set(again) == ({"a"} if store.supports_leases else set())
    found = store.lookup_task("a")
    assert found is not None
    assert found.next_run_time == at(4)  # the task still advances
    if store.supports_leases:
        assert store.count_runs(["a"]) == {"a": 1}


def test_concurrent_claims_hand_each_task_to_one_owner(make_persistent_store: StoreMaker) -> None:
    first = make_persistent_store()
    if not first.supports_leases:
        pytest.skip(f"{make_persistent_store.kind} has no leases: one scheduler per store")
    first.add_tasks([make_task(f"t{index:03d}", at(-index)) for index in range(120)])
    stores = [make_persistent_store() for _ in range(4)]
    claimed: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def claim(owner: str, store: BaseStore) -> None:
        try:
            barrier.wait()
            mine: list[str] = []
            while batch := store.acquire_due_tasks(NOW, 7, owner, LEASE):
                mine += ids(batch)
                # Written back as not due any more, as a pass would.
                store.release_tasks(owner, [make_task(t.id, at(60)) for t in batch], [])
            claimed[owner] = mine
        except BaseException as exc:  # reported in the test thread
            errors.append(exc)

    threads = [
        threading.Thread(target=claim, args=(f"owner{n}", store)) for n, store in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    everything = [task_id for mine in claimed.values() for task_id in mine]
    assert sorted(everything) == sorted(f"t{index:03d}" for index in range(120))


def _schema_version(store: BaseStore, set_to: str | None = None) -> str:
    """Read (or first overwrite) the recorded schema version of a SQL or Redis store."""
    if isinstance(store, RedisStore):
        if set_to is not None:
            store.client.hset(store.meta_key, "schema_version", set_to)
        found = store.client.hget(store.meta_key, "schema_version")
        assert isinstance(found, bytes)
        return found.decode()
    assert isinstance(store, SQLAlchemyStore)
    meta = sqlalchemy.Table(
        f"{store.tablename}_meta", sqlalchemy.MetaData(), autoload_with=store.engine
    )
    with store.engine.begin() as conn:
        if set_to is not None:
            conn.execute(sqlalchemy.update(meta).values(value=set_to))
            conn.execute(sqlalchemy.text(f"DROP TABLE {store.tablename}_runs"))
        return str(conn.execute(sqlalchemy.select(meta.c.value)).scalar_one())


def test_a_version_1_layout_is_upgraded(make_persistent_store: StoreMaker) -> None:
    store = make_persistent_store()
    if not store.supports_leases:
        pytest.skip(f"{make_persistent_store.kind} has no schema version")
    store.add_task(make_task("a", at(-1)))
    _schema_version(store, set_to="1")  # SQL: also drops the runs table, as in version 1
    upgraded = make_persistent_store()
    latest = REDIS_VERSION if isinstance(upgraded, RedisStore) else SQL_VERSION
    assert _schema_version(upgraded) == str(latest)  # (1 -> latest: runs, retries, ...)
    upgraded.acquire_due_tasks(NOW, 10, "me", LEASE)
    upgraded.release_tasks("me", [make_task("a", at(1))], [], [(make_task("a"), at(-1))])
    assert upgraded.count_runs(["a"]) == {"a": 1}
