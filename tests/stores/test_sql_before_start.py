"""A SQL store that has not been started on a fresh database (no table yet): reading it
finds no tasks instead of failing with "no such table", so a scheduler lists its pending
tasks before start(). After start() the table exists and reads are as always; a table
that is missing after start() is still an error."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy

from tickwork.exceptions import StoreUnavailableError
from tickwork.executors import DebugExecutor
from tickwork.schedulers import BackgroundScheduler
from tickwork.stores.sqlalchemy import SQLAlchemyStore

KINDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.external_service("postgresql")),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.external_service("mariadb")),
]


def job() -> None:
    """The task."""


@pytest.fixture(params=KINDS)
def fresh_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], SQLAlchemyStore]]:
    """Makes stores (not started) on a table nobody has created yet."""
    kind: str = request.param
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    else:
        fixture = "postgres_database" if kind == "postgresql" else "mariadb_database"
        url = request.getfixturevalue(fixture)
    table = f"fresh_{uuid.uuid4().hex[:10]}"
    made: list[SQLAlchemyStore] = []

    def make() -> SQLAlchemyStore:
        store = SQLAlchemyStore(url, tablename=table)
        made.append(store)
        return store

    yield make
    for store in made:
        store.engine.dispose()


def test_an_unstarted_store_without_its_table_has_no_tasks(
    fresh_store: Callable[[], SQLAlchemyStore],
) -> None:
    store = fresh_store()
    assert store.get_all_tasks() == []
    assert store.lookup_task("anything") is None
    assert not sqlalchemy.inspect(store.engine).has_table(store.tablename)  # nothing created


def test_a_scheduler_lists_its_pending_tasks_before_start(
    fresh_store: Callable[[], SQLAlchemyStore],
) -> None:
    scheduler = BackgroundScheduler(
        stores={"default": fresh_store()}, executors={"default": DebugExecutor()}
    )
    scheduler.add_task(job, "interval", hours=1, id="pending")
    assert [task.id for task in scheduler.get_tasks()] == ["pending"]
    assert scheduler.get_task("pending") is not None
    assert scheduler.get_task("other") is None
    scheduler.start()
    try:
        assert [task.id for task in scheduler.get_tasks()] == ["pending"]  # now stored
    finally:
        scheduler.shutdown()


def test_a_table_dropped_after_start_is_still_an_error(
    fresh_store: Callable[[], SQLAlchemyStore],
) -> None:
    store = fresh_store()
    store.start("default")
    store.get_all_tasks()
    for name in (f"{store.tablename}_runs", f"{store.tablename}_meta", store.tablename):
        with store.engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP TABLE {name}"))
    with pytest.raises((StoreUnavailableError, sqlalchemy.exc.ProgrammingError)):
        store.get_all_tasks()
