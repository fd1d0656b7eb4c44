"""The store contract for pending retries and cancel requests, over every store.

Stores with leases (SQL, Redis) turn a run's record into its pending retry and keep
cancel marks on records; the others (memory, file) keep pending retries of their own
(the file store on disk) and have no records to mark.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy
from storetest_funcs import NOW, at, make_task
from storetest_support import StoreMaker

from tickwork.exceptions import SerializationError
from tickwork.stores import BaseStore
from tickwork.stores._sql_schema import MAX_ID_LENGTH, MYSQL, TaskId
from tickwork.stores._task_file import encode
from tickwork.stores.base import InProgressRun, PendingRetry
from tickwork.stores.file import FileStore
from tickwork.stores.redis import RedisStore
from tickwork.stores.sqlalchemy import SCHEMA_VERSION, SQLAlchemyStore

LEASE = timedelta(seconds=30)


def record(
    store: BaseStore, owner: str, task_id: str, *run_times: float, args: tuple[object, ...] = ()
) -> None:
    """Hand over runs of a task as a pass does: the task is claimed, written back and
    its runs recorded for ``owner`` (stores without leases record nothing)."""
    if store.lookup_task(task_id) is None:
        store.add_task(make_task(task_id, at(-1), args=args))
    store.acquire_due_tasks(NOW, 100, owner, LEASE)
    runs = [(make_task(task_id, args=args), at(when)) for when in run_times]
    assert (
        set(
            store.release_tasks(
                owner, [make_task(task_id, at(60), args=args)], [], runs, NOW + LEASE
            )
        )
        == set()
    )


def retry(
    task_id: str, run_time: float, attempt: int, due: float, args: tuple[object, ...] = ()
) -> PendingRetry:
    return PendingRetry(make_task(task_id, args=args), at(run_time), attempt, at(due))


def shape(runs: list[InProgressRun]) -> list[tuple[str, object, str, int, object]]:
    return [(run.task.id, run.run_time, run.owner, run.attempt, run.due) for run in runs]


def test_a_retry_is_handed_out_once_when_due(store: BaseStore) -> None:
    record(store, "me", "a", -1, args=(7,))
    store.retry_runs("me", [retry("a", -1, 2, 3, args=(7,))])
    assert store.count_runs(["a"]) == {}  # a pending retry is no run in progress
    assert store.take_over_runs(at(2), 10, "heir", at(4)) == []
    taken = store.take_over_runs(at(3), 10, "heir", at(4))
    assert shape(taken) == [("a", at(-1), "", 2, at(3))]
    assert taken[0].is_retry
    assert taken[0].task.args == (7,)
    if store.supports_leases or isinstance(store, FileStore):  # (the memory store hands
        # back the very task it was given)
        assert taken[0].task.store_alias == "default"
    assert store.take_over_runs(at(3), 10, "third", at(5)) == []
    if store.supports_leases:
        # The heir's run in progress now: counted, renewed, finished like any other.
        assert store.count_runs(["a"]) == {"a": 1}
        assert store.renew_runs("heir", [("a", at(-1))], at(6)) == 1
        store.finish_runs("heir", [("a", at(-1))])
        assert store.count_runs(["a"]) == {}
    assert store.take_over_runs(at(30), 10, "third", at(31)) == []


def test_a_run_without_a_record_still_gets_its_retry(store: BaseStore) -> None:
    store.retry_runs("me", [retry("ghost", -5, 3, 1), retry("b", -2, 2, 2)])
    assert store.count_runs(["ghost", "b"]) == {}
    assert shape(store.take_over_runs(at(5), 10, "heir", at(6))) == [
        ("ghost", at(-5), "", 3, at(1)),
        ("b", at(-2), "", 2, at(2)),
    ]


def test_the_limit_takes_the_earliest_retries_first(store: BaseStore) -> None:
    store.retry_runs("me", [retry(f"t{n}", -1, 2, 5 - n) for n in range(5)])
    first = store.take_over_runs(at(10), 2, "heir", at(11))
    assert [run.task.id for run in first] == ["t4", "t3"]
    rest = store.take_over_runs(at(10), 10, "heir", at(11))
    assert sorted(run.task.id for run in rest) == ["t0", "t1", "t2"]


def test_a_record_taken_over_is_not_turned_into_a_retry(store: BaseStore) -> None:
    if not store.supports_leases:
        pytest.skip("no records of runs in progress")
    record(store, "slow", "a", -1)
    later = NOW + LEASE + timedelta(seconds=1)
    assert shape(store.take_over_runs(later, 10, "heir", later + LEASE)) == [
        ("a", at(-1), "slow", 2, None)
    ]
    store.retry_runs("slow", [retry("a", -1, 2, 0.5)])  # too late: the heir runs it
    assert store.count_runs(["a"]) == {"a": 1}
    assert store.take_over_runs(at(0.9), 10, "third", at(4)) == []  # (the heir's till 1.01)
    assert store.next_retry_time() is None
    assert store.renew_runs("heir", [("a", at(-1))], at(10)) == 1


def test_abandoned_attempts_count_on(store: BaseStore) -> None:
    if not store.supports_leases:
        pytest.skip("no records of runs in progress")
    record(store, "one", "a", -1)
    first = store.take_over_runs(NOW + LEASE + timedelta(seconds=1), 10, "two", at(2))
    assert shape(first) == [("a", at(-1), "one", 2, None)]
    assert not first[0].is_retry
    second = store.take_over_runs(at(3), 10, "three", at(4))
    assert shape(second) == [("a", at(-1), "two", 3, None)]
    # The third attempt fails and is retried: the fourth, made by whoever takes it.
    store.retry_runs("three", [retry("a", -1, 4, 6)])
    assert store.count_runs(["a"]) == {}
    assert shape(store.take_over_runs(at(6), 10, "four", at(7))) == [("a", at(-1), "", 4, at(6))]
    # Abandoned once more: counted on from the retry's attempt.
    assert shape(store.take_over_runs(at(8), 10, "five", at(9))) == [("a", at(-1), "four", 5, None)]


def test_next_retry_time(store: BaseStore) -> None:
    assert store.next_retry_time() is None
    record(store, "me", "a", -1, -2)
    store.retry_runs("me", [retry("a", -1, 2, 5), retry("a", -2, 2, 3)])
    found = store.next_retry_time()
    assert found == at(3)
    assert found is not None
    assert found.tzinfo is not None
    assert len(store.take_over_runs(at(3), 10, "heir", at(4))) == 1
    assert store.next_retry_time() == at(5)


def test_cancel_deletes_retries_and_marks_records(store: BaseStore) -> None:
    record(store, "me", "a", -1, -2)
    record(store, "me", "b", -1)
    store.retry_runs("me", [retry("a", -3, 2, 0.2), retry("b", -4, 2, 0.2)])  # no records
    if not store.supports_leases:
        assert store.cancel_runs("a", at(-1)) == 0
        assert store.cancel_runs("a") == 1
        assert store.cancel_requests("me") == []
        assert shape(store.take_over_runs(at(0.2), 10, "me", at(6))) == [
            ("b", at(-4), "", 2, at(0.2))
        ]
        return
    assert store.cancel_runs("a", at(-1)) == 1
    assert store.cancel_requests("me") == [("a", at(-1))]
    assert store.cancel_requests("other") == []
    # Every run of the task: a@-2 marked, the retry a@-3 deleted; a@-1 was marked already.
    assert store.cancel_runs("a") == 2
    assert sorted(store.cancel_requests("me")) == [("a", at(-2)), ("a", at(-1))]
    assert all(when.tzinfo is not None for _, when in store.cancel_requests("me"))
    assert store.cancel_runs("nothing") == 0
    # A marked record stays its owner's run in progress until it finishes.
    assert store.count_runs(["a", "b"]) == {"a": 2, "b": 1}
    assert store.renew_runs("me", [("a", at(-1))], at(10)) == 1
    store.finish_runs("me", [("a", at(-1))])
    assert store.cancel_requests("me") == [("a", at(-2))]
    # The cancelled retry is gone; the other task's is not (the records are alive till
    # NOW + 30 s).
    assert shape(store.take_over_runs(at(0.2), 10, "heir", at(6))) == [
        ("b", at(-4), "", 2, at(0.2))
    ]


def test_a_marked_run_that_fails_is_not_retried(
    store: BaseStore, caplog: pytest.LogCaptureFixture
) -> None:
    if not store.supports_leases:
        pytest.skip("no records to mark")
    record(store, "me", "a", -1)
    assert store.cancel_runs("a") == 1
    with caplog.at_level(logging.WARNING):
        store.retry_runs("me", [retry("a", -1, 2, 2)])
    assert "cancellation was requested" in caplog.text
    assert store.count_runs(["a"]) == {}
    assert store.cancel_requests("me") == []
    assert store.take_over_runs(at(60), 10, "heir", at(61)) == []


def test_a_cancel_mark_follows_a_taken_over_record(store: BaseStore) -> None:
    if not store.supports_leases:
        pytest.skip("no records to mark")
    record(store, "dead", "a", -1)
    assert store.cancel_runs("a", at(-1)) == 1
    later = NOW + LEASE + timedelta(seconds=1)
    assert len(store.take_over_runs(later, 10, "heir", later + LEASE)) == 1
    assert store.cancel_requests("dead") == []
    assert store.cancel_requests("heir") == [("a", at(-1))]


def test_retries_survive_a_new_store_object(make_persistent_store: StoreMaker) -> None:
    first = make_persistent_store()
    record(first, "me", "a", -1)
    first.retry_runs("me", [retry("a", -1, 2, 3), retry("z", -9, 4, 4)])
    first.shutdown()
    second = make_persistent_store()
    assert second.next_retry_time() == at(3)
    assert shape(second.take_over_runs(at(5), 10, "heir", at(6))) == [
        ("a", at(-1), "", 2, at(3)),
        ("z", at(-9), "", 4, at(4)),
    ]


def test_two_takers_share_due_retries_exactly_once(make_persistent_store: StoreMaker) -> None:
    first = make_persistent_store()
    count = 60
    first.retry_runs("me", [retry(f"t{n:02d}", -1, 2, -(n % 7)) for n in range(count)])
    stores = [make_persistent_store() for _ in range(2)]
    taken: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def take(owner: str, store: BaseStore) -> None:
        try:
            barrier.wait()
            mine: list[str] = []
            for _ in range(200):
                batch = store.take_over_runs(NOW, 4, owner, NOW + LEASE)
                mine += [run.task.id for run in batch]
                if not batch and store.next_retry_time() is None:
                    break
            taken[owner] = mine
        except BaseException as exc:  # reported in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(f"o{n}", s)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    everything = [task_id for mine in taken.values() for task_id in mine]
    assert sorted(everything) == [f"t{n:02d}" for n in range(count)]


# -- the file store -----------------------------------------------------------------------


def test_file_retries_are_private_files_and_damaged_ones_are_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileStore(tmp_path / "tasks")
    store.start("default")
    store.retry_runs("me", [retry("a", -1, 2, 1), retry("b", -1, 2, 1)])
    files = sorted((tmp_path / "tasks" / "retries").iterdir())
    assert len(files) == 2
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in files)
    damaged = next(path for path in files if b"|b" in path.read_bytes().split(b"\n", 1)[0])
    damaged.write_bytes(damaged.read_bytes()[:-3])  # torn: the checksum no longer matches
    with caplog.at_level(logging.ERROR):
        taken = store.take_over_runs(at(5), 10, "me", at(6))
    assert [run.task.id for run in taken] == ["a"]
    assert "is unreadable (truncated" in caplog.text
    assert not damaged.exists()
    moved = list((tmp_path / "tasks" / "corrupt").iterdir())
    assert [path.name.startswith("retry-") for path in moved] == [True]
    assert store.next_retry_time() is None


def test_a_file_retry_whose_task_cannot_load_is_logged_and_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileStore(tmp_path / "tasks")
    store.start("default")
    store.retry_runs("me", [retry("a", -1, 2, 1)])
    (path,) = (tmp_path / "tasks" / "retries").iterdir()
    # Rewrite it whole, well-formed, with a task whose function no longer exists.
    header, payload = path.read_bytes().split(b"\n", 1)
    inner, task_bytes = payload.split(b"\n", 1)
    broken = inner + b"\n" + task_bytes.replace(b"storetest_funcs:noop", b"storetest_funcs:gone")
    key = json.loads(header)
    blob = encode(key["id"], key["next"], broken)
    path.write_bytes(blob)
    with caplog.at_level(logging.ERROR):
        assert store.take_over_runs(at(5), 10, "me", at(6)) == []
        assert store.take_over_runs(at(5), 10, "me", at(6)) == []
    assert caplog.text.count("cannot make the pending retry of task 'a'") == 1
    assert path.exists()
    assert store.next_retry_time() == at(1)
    assert store.cancel_runs("a") == 1
    assert not path.exists()


# -- SQL: the schema upgrade ----------------------------------------------------------------


def _version_2_tables(store: SQLAlchemyStore) -> None:
    """The tables of schema version 2, created as that version did (no attempt or
    cancel columns), with a task, a run record and the recorded version."""
    metadata = sqlalchemy.MetaData()
    blob = sqlalchemy.LargeBinary().with_variant(sqlalchemy.dialects.mysql.LONGBLOB(), *MYSQL)
    name = store.tablename
    tasks = sqlalchemy.Table(
        name,
        metadata,
        sqlalchemy.Column("id", TaskId(), primary_key=True),
        sqlalchemy.Column("next_run_time", sqlalchemy.Double(), nullable=True),
        sqlalchemy.Column("state", blob, nullable=False),
        sqlalchemy.Column("lease_owner", sqlalchemy.String(MAX_ID_LENGTH), nullable=True),
        sqlalchemy.Column("lease_expires", sqlalchemy.Double(), nullable=True),
        sqlalchemy.Index(f"ix_{name}_next_run_time", "next_run_time"),
        mysql_engine="InnoDB",
    )
    runs = sqlalchemy.Table(
        f"{name}_runs",
        metadata,
        sqlalchemy.Column("task_id", TaskId(), primary_key=True),
        sqlalchemy.Column("run_time", sqlalchemy.Double(), primary_key=True, autoincrement=False),
        sqlalchemy.Column("owner", sqlalchemy.String(MAX_ID_LENGTH), nullable=False),
        sqlalchemy.Column("lease_expires", sqlalchemy.Double(), nullable=False),
        sqlalchemy.Column("state", blob, nullable=False),
        sqlalchemy.Index(f"ix_{name}_runs_lease_expires", "lease_expires"),
        mysql_engine="InnoDB",
    )
    meta = sqlalchemy.Table(
        f"{name}_meta",
        metadata,
        sqlalchemy.Column("key", sqlalchemy.String(64), primary_key=True),
        sqlalchemy.Column("value", sqlalchemy.String(255), nullable=False),
        mysql_engine="InnoDB",
    )
    metadata.create_all(store.engine)
    task = make_task("a", at(60))
    state = store.serializer.serialize(task)
    with store.engine.begin() as conn:
        conn.execute(
            sqlalchemy.insert(tasks).values(id="a", next_run_time=at(60).timestamp(), state=state)
        )
        conn.execute(
            sqlalchemy.insert(runs).values(
                task_id="a",
                run_time=at(-1).timestamp(),
                owner="old",
                lease_expires=(NOW + LEASE).timestamp(),
                state=state,
            )
        )
        conn.execute(sqlalchemy.insert(meta).values(key="schema_version", value="2"))


def test_a_version_2_table_is_upgraded(make_sql_store: StoreMaker) -> None:
    store = make_sql_store(start=False)
    assert isinstance(store, SQLAlchemyStore)
    _version_2_tables(store)
    store.start("default")
    assert SCHEMA_VERSION == 5
    with store.engine.connect() as conn:
        meta = sqlalchemy.Table(
            f"{store.tablename}_meta", sqlalchemy.MetaData(), autoload_with=conn
        )
        assert conn.execute(sqlalchemy.select(meta.c.value)).scalar_one() == "5"
        columns = {
            c["name"] for c in sqlalchemy.inspect(conn).get_columns(f"{store.tablename}_runs")
        }
        task_columns = {c["name"] for c in sqlalchemy.inspect(conn).get_columns(store.tablename)}
    assert {"attempt", "cancel"} <= columns
    assert "leader_only" in task_columns  # (4: leadership)
    # The old record is kept, as a first attempt, not cancelled.
    assert store.count_runs(["a"]) == {"a": 1}
    assert store.cancel_requests("old") == []
    assert [t.id for t in store.get_all_tasks()] == ["a"]
    later = NOW + LEASE + timedelta(seconds=1)
    assert shape(store.take_over_runs(later, 10, "heir", later + LEASE)) == [
        ("a", at(-1), "old", 2, None)
    ]
    store.retry_runs("heir", [retry("a", -1, 3, 5)])
    assert shape(store.take_over_runs(at(5), 10, "next", at(6))) == [("a", at(-1), "", 3, at(5))]
    assert store.cancel_runs("a") == 1
    assert store.cancel_requests("next") == [("a", at(-1))]
    # A second start (another process) finds it upgraded already.
    again = make_sql_store()
    assert again.count_runs(["a"]) == {"a": 1}


def test_run_times_come_back_in_the_trigger_zone(make_persistent_store: StoreMaker) -> None:
    store = make_persistent_store()
    store.retry_runs("me", [retry("a", -1, 2, 1)])
    (run,) = store.take_over_runs(at(2), 10, "me", at(3))
    assert run.run_time == at(-1)
    assert str(run.run_time.tzinfo) == "Europe/Paris"  # the trigger's zone


def test_a_retry_whose_task_cannot_load_stays_a_retry(
    store: BaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not store.supports_leases:
        pytest.skip("the file store's case is tested on its files below")
    record(store, "me", "a", -1)
    record(store, "me", "b", -1)
    store.retry_runs("me", [retry("a", -1, 2, 0.1)])
    expires = NOW + timedelta(seconds=20)
    serializer = store.serializer  # type: ignore[attr-defined]
    with monkeypatch.context() as patch:
        patch.setattr(
            serializer,
            "deserialize",
            lambda data: (_ for _ in ()).throw(SerializationError("gone")),
        )
        assert store.take_over_runs(at(0.1), 10, "heir", expires) == []
    # Neither run nor counted: still a pending retry of the same attempt, due again when
    # the take-over's lease would have ended.
    assert store.count_runs(["a", "b"]) == {"b": 1}
    assert store.next_retry_time() == expires
    assert shape(store.take_over_runs(expires, 10, "heir", at(1))) == [
        ("a", at(-1), "", 2, expires)
    ]
    # An abandoned record that cannot load keeps its attempt too.
    later = NOW + LEASE + timedelta(seconds=1)
    with monkeypatch.context() as patch:
        patch.setattr(
            serializer,
            "deserialize",
            lambda data: (_ for _ in ()).throw(SerializationError("gone")),
        )
        assert store.take_over_runs(later, 10, "heir", at(0.9)) == []
    assert shape(store.take_over_runs(at(0.95), 10, "third", at(2))) == [
        ("b", at(-1), "heir", 2, None)
    ]


# -- Redis: records of schema version 2, bad attempts ------------------------------------------


@pytest.mark.external_service("redis")
def test_redis_records_without_an_attempt_are_first_attempts(
    make_persistent_store: StoreMaker, caplog: pytest.LogCaptureFixture
) -> None:
    if make_persistent_store.kind != "redis":
        pytest.skip("Redis only")
    store = make_persistent_store()
    assert isinstance(store, RedisStore)
    record(store, "old", "a", -1, -2)
    # As version 2 left them: no attempts key; the prefix records version 2.
    store.client.delete(f"{store.prefix}:run_attempts")
    store.client.hset(store.meta_key, "schema_version", "2")
    upgraded = make_persistent_store()
    assert isinstance(upgraded, RedisStore)
    assert upgraded.client.hget(upgraded.meta_key, "schema_version") == b"5"
    upgraded.client.hset(f"{store.prefix}:run_attempts", f"{at(-2).timestamp()!r}|a", "x")
    later = NOW + LEASE + timedelta(seconds=1)
    with caplog.at_level(logging.WARNING):
        taken = upgraded.take_over_runs(later, 10, "heir", later + LEASE)
    assert sorted(shape(taken)) == [("a", at(-2), "old", 2, None), ("a", at(-1), "old", 2, None)]
    assert "is not a positive integer ('x'); read as 1" in caplog.text
