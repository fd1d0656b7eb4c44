"""A stored record that parses but holds wrong types stops nothing but itself.

Each test writes good tasks through a persistent store, then rewrites one task's record
directly in the backend (the file, an SQL ``UPDATE`` of the ``state`` column, an
``HSET`` in Redis) with JSON that still parses but holds a value a task cannot run with:
``"trigger": 5``, a ``next_run_time`` that is a string, ``max_instances: "x"`` ... Such a
record used to load, then fail inside the processing pass and stop every other task of
its store. Now every query skips it (logged once), never deletes or rewrites it, and
keeps returning the good task; a real scheduler keeps running its good tasks next to it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from storetest_funcs import NOW, at, make_task, noop, other
from storetest_support import StoreMaker

from tickwork.events import TASK_EXECUTED
from tickwork.executors import DebugExecutor
from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import BaseStore
from tickwork.stores._task_file import encode, parse
from tickwork.stores.file import FileStore, file_name_for
from tickwork.stores.redis import RedisStore
from tickwork.stores.sqlalchemy import SQLAlchemyStore
from tickwork.tasks import Task

# -- reading and writing a record behind the store's back ------------------------------------


def stored_bytes(store: BaseStore, task_id: str) -> bytes:
    """The serializer's bytes the backend holds for ``task_id``."""
    if isinstance(store, FileStore):
        name = file_name_for(task_id)
        return parse((store.directory / name).read_bytes(), name)[2]
    if isinstance(store, SQLAlchemyStore):
        with store.engine.connect() as conn:
            return bytes(
                conn.execute(_sql(store, "SELECT state FROM {}"), {"id": task_id}).one()[0]
            )
    assert isinstance(store, RedisStore)
    data = store.client.hget(store.tasks_key, task_id)
    assert isinstance(data, bytes)
    return data


def replace_stored_bytes(store: BaseStore, task_id: str, data: bytes) -> None:
    """Overwrite the record of ``task_id`` in the backend with ``data``, as a hand edit or
    another program would: the store is not asked."""
    if isinstance(store, FileStore):
        # A well-formed task file (header and checksum right) holding the new payload,
        # swapped in whole as tickwork writes its files.
        path = store.directory / file_name_for(task_id)
        _, when, _ = parse(path.read_bytes(), path.name)
        temporary = path.with_name(".tmp-hostile.task")
        temporary.write_bytes(encode(task_id, when, data))
        os.replace(temporary, path)
    elif isinstance(store, SQLAlchemyStore):
        with store.engine.begin() as conn:
            statement = _sql(store, "UPDATE {} SET state = :state")
            conn.execute(statement, {"id": task_id, "state": data})
    else:
        assert isinstance(store, RedisStore)
        store.client.hset(store.tasks_key, task_id, data)


def _sql(store: SQLAlchemyStore, action: str) -> sqlalchemy.TextClause:
    table = store.engine.dialect.identifier_preparer.quote(store.tablename)
    return sqlalchemy.text(action.format(table) + " WHERE id = :id")


# -- the damage ---------------------------------------------------------------------------

#: id -> (how the parsed task object of the JSON document is changed, what the log names).
DAMAGE: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "trigger=5": (lambda task: task.update(trigger=5), "'trigger'"),
    "next_run_time is a string": (
        lambda task: task.update(next_run_time="2026-01-01T11:55:00+00:00"),
        "'next_run_time'",
    ),
    "max_instances='x'": (lambda task: task.update(max_instances="x"), "'max_instances'"),
    "args not a list": (lambda task: task.update(args=5), "'args'"),
    "coalesce='yes'": (lambda task: task.update(coalesce="yes"), "'coalesce'"),
    "mistrigger_grace_time=-3": (
        lambda task: task.update(mistrigger_grace_time=-3),
        "'mistrigger_grace_time'",
    ),
    "mistrigger_grace_time=NaN": (
        lambda task: task.update(mistrigger_grace_time={"__tw__": "float", "v": "nan"}),
        "'mistrigger_grace_time'",
    ),
    "id not a string": (lambda task: task.update(id=5), "'id'"),
    "trigger interval a string": (
        lambda task: task["trigger"]["state"].update(interval="PT5M"),
        "trigger.interval",
    ),
    "trigger timezone a number": (
        lambda task: task["trigger"]["state"].update(timezone=5),
        "trigger.timezone",
    ),
    "interval of 3,000,000 days": (
        lambda task: task["trigger"]["state"].update(
            interval={"__tw__": "timedelta", "v": [3_000_000, 0, 0]}
        ),
        "trigger.interval",
    ),
}


def damaged(data: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """``data`` (a JSON task document) with ``change`` applied to its task object, written
    compactly like tickwork writes it."""
    document = json.loads(data)
    change(document["task"])
    return json.dumps(document, separators=(",", ":")).encode()


def ids(tasks: list[Task]) -> list[str]:
    return [task.id for task in tasks]


def assert_logged_once(caplog: pytest.LogCaptureFixture, field: str) -> None:
    """One store object logged the bad record once (not once per query), naming the
    field."""
    logged = [r.getMessage() for r in caplog.records if "'bad'" in r.getMessage()]
    assert len(logged) == 1, logged
    assert field in logged[0], logged[0]


# -- every query skips the record, and keeps it ---------------------------------------------


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_queries_skip_a_record_of_wrong_types_and_keep_it(
    make_persistent_store: StoreMaker,
    caplog: pytest.LogCaptureFixture,
    damage: tuple[Callable[[dict[str, Any]], None], str],
) -> None:
    change, field = damage
    writer = make_persistent_store(alias="writer")
    writer.add_task(make_task("bad", at(-5)))
    writer.add_task(make_task("good", at(-1), fn=other))
    bad = damaged(stored_bytes(writer, "bad"), change)
    replace_stored_bytes(writer, "bad", bad)

    due_first = make_persistent_store(alias="due-first")
    with caplog.at_level(logging.ERROR, logger="tickwork"):
        assert ids(due_first.get_due_tasks(NOW, limit=1)) == ["good"]
        assert ids(due_first.get_due_tasks(NOW)) == ["good"]
        assert ids(due_first.get_all_tasks()) == ["good"]
        assert due_first.lookup_task("bad") is None
        # Known not to load, it no longer counts as due: no busy wake-ups for it.
        assert due_first.get_next_run_time() == at(-1)
    assert_logged_once(caplog, field)
    caplog.clear()
    listing_first = make_persistent_store(alias="listing-first")
    with caplog.at_level(logging.ERROR, logger="tickwork"):
        assert ids(listing_first.get_all_tasks()) == ["good"]
        assert listing_first.lookup_task("bad") is None
        assert ids(listing_first.get_due_tasks(NOW)) == ["good"]
        assert listing_first.get_next_run_time() == at(-1)
    assert_logged_once(caplog, field)
    # Never deleted, never rewritten: the record is as it was damaged, for a human to fix.
    assert stored_bytes(writer, "bad") == bad


def test_a_rewritten_record_gets_a_fresh_try(make_persistent_store: StoreMaker) -> None:
    store = make_persistent_store()
    store.add_task(make_task("bad", at(-5)))
    good_data = stored_bytes(store, "bad")
    replace_stored_bytes(store, "bad", damaged(good_data, lambda task: task.update(trigger=5)))
    assert store.get_due_tasks(NOW) == []
    replace_stored_bytes(store, "bad", good_data)  # fixed by hand
    assert ids(store.get_due_tasks(NOW)) == ["bad"]


# -- the file store's own header ------------------------------------------------------------


@pytest.mark.parametrize("when", [1e300, -1e300, math.inf, math.nan, 253402300800], ids=repr)
def test_a_task_file_whose_header_time_is_out_of_range_is_moved_aside(
    tmp_path: Path, when: float
) -> None:
    # The header's next run time feeds get_next_run_time, whose datetime.fromtimestamp
    # raised for these: the store failed as a whole, every pass.
    writer = FileStore(tmp_path / "tasks")
    writer.start("writer")
    writer.add_task(make_task("bad", at(-5)))
    writer.add_task(make_task("good", at(-1), fn=other))
    path = writer.directory / file_name_for("bad")
    payload = parse(path.read_bytes(), path.name)[2]
    path.write_bytes(encode("bad", when, payload))
    reader = FileStore(tmp_path / "tasks")
    reader.start("reader")
    try:
        assert reader.get_next_run_time() == at(-1)
        assert ids(reader.get_due_tasks(NOW)) == ["good"]
        assert ids(reader.get_all_tasks()) == ["good"]
    finally:
        reader.shutdown()
        writer.shutdown()
    # Moved aside whole, as any file with a damaged header is: the data is kept.
    (moved,) = (tmp_path / "tasks" / "corrupt").iterdir()
    assert moved.read_bytes().endswith(payload)


# -- a running scheduler --------------------------------------------------------------------


def test_a_scheduler_keeps_running_good_tasks_next_to_records_of_wrong_types(
    make_persistent_store: StoreMaker,
) -> None:
    writer = make_persistent_store(alias="writer")
    due = datetime.now(UTC) - timedelta(seconds=1)
    damage = {
        "bad-trigger": "trigger=5",
        "bad-time": "next_run_time is a string",
        "bad-count": "max_instances='x'",
        "bad-interval": "interval of 3,000,000 days",
    }
    for task_id, kind in damage.items():
        writer.add_task(make_task(task_id, due))
        change = DAMAGE[kind][0]
        replace_stored_bytes(writer, task_id, damaged(stored_bytes(writer, task_id), change))
    kept = {task_id: stored_bytes(writer, task_id) for task_id in damage}

    runs: list[str] = []
    scheduler = BackgroundScheduler(
        stores={"default": make_persistent_store(start=False)},
        executors={"default": DebugExecutor()},
        timezone="UTC",
    )
    scheduler.add_listener(lambda event: runs.append(event.task_id), TASK_EXECUTED)
    scheduler.start()
    try:
        scheduler.add_task(noop, "interval", seconds=0.2, id="good")
        time.sleep(1.5)
    finally:
        scheduler.shutdown()
    assert runs.count("good") > 3, runs
    assert set(runs) == {"good"}
    assert {task_id: stored_bytes(writer, task_id) for task_id in damage} == kept


@pytest.mark.parametrize("value", [-1e300, 1e300])
def test_an_out_of_range_next_run_time_column_does_not_stop_the_sql_store(
    make_sql_store: StoreMaker, value: float
) -> None:
    store = make_sql_store()
    assert isinstance(store, SQLAlchemyStore)
    store.add_task(make_task("good", at(60)))
    with store.engine.begin() as conn:
        conn.execute(
            sqlalchemy.text(f"UPDATE {store.tablename} SET next_run_time = :v WHERE id = 'good'"),
            {"v": value},
        )
    when = store.get_next_run_time()  # a -1e300 row made this raise OverflowError
    assert when is not None
    assert when.year == (1 if value < 0 else 9999)
