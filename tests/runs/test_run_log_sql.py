"""SQLRunLog specifics, on SQLite, PostgreSQL and MariaDB: damaged rows, the schema
version and its upgrade path, one transaction per write, pruning in batches."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
import servers
from run_log_support import SQL, T0, MakeLog, record
from sqlalchemy import Column, Double, create_engine, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tickwork.runs import RunRecord
from tickwork.runs.base import RunLog
from tickwork.runs.sql import SCHEMA_VERSION, SQLRunLog

LOG_KINDS = SQL
NOW = T0 + timedelta(days=1)


def sql(log: RunLog) -> SQLRunLog:
    assert isinstance(log, SQLRunLog)
    return log


def set_column(log: SQLRunLog, run_id: str, **values: Any) -> None:
    table = log.table
    with log.engine.begin() as conn:
        conn.execute(update(table).where(table.c.run_id == run_id).values(**values))


def recorded_version(log: SQLRunLog) -> str:
    meta = log.meta
    with log.engine.connect() as conn:
        value: str = conn.execute(
            select(meta.c.value).where(meta.c.key == "schema_version")
        ).scalar_one()
    return value


def test_damaged_rows_are_skipped_and_logged_once(
    log: RunLog, caplog: pytest.LogCaptureFixture
) -> None:
    log.write([record("a", m) for m in range(6)])
    set_column(sql(log), record("a", 5).run_id, outcome="bogus")
    set_column(sql(log), record("a", 4).run_id, started_at=2**62)  # past the year 9999
    set_column(sql(log), record("a", 3).run_id, scheduled_run_time=-(2**62))
    with caplog.at_level(logging.WARNING, logger="tickwork.runs.sql"):
        # The newest rows are the damaged ones: the answer still has `limit` records.
        assert [r.scheduled_run_time.minute for r in log.query(limit=2)] == [2, 1]
        assert [r.scheduled_run_time.minute for r in log.query("a")] == [2, 1, 0]
        assert log.get(record("a", 5).run_id) is None
    warnings = [r for r in caplog.records if "damaged run record" in r.getMessage()]
    assert len(warnings) == 3
    assert "unknown outcome 'bogus'" in caplog.text
    assert "out of range" in caplog.text
    # A row with an unknown outcome is not 'running': no later write replaces it.
    log.write([record("a", 5, "error")])
    assert log.get(record("a", 5).run_id) is None
    # Retention counts damaged rows as final ones.
    assert log.prune(NOW, max_age=60, max_per_task=None) == 6


def test_create_is_idempotent_and_records_the_schema_version(make_log: MakeLog) -> None:
    log = sql(make_log())
    log.write([record()])
    log.create()
    again = sql(make_log())  # (runs create() too)
    assert again.get(record().run_id) == record()
    assert recorded_version(log) == str(SCHEMA_VERSION)
    with log.engine.connect() as conn:
        indexes = {tuple(ix["column_names"]) for ix in inspect(conn).get_indexes(log.table_name)}
    assert {("task_id", "scheduled_run_time"), ("scheduled_run_time",)} <= indexes
    assert ("outcome", "scheduled_run_time") in indexes


def test_creating_from_several_threads_at_once(make_log: MakeLog) -> None:
    first = sql(make_log())
    name = f"{first.table_name}_2"
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def create() -> None:
        try:
            barrier.wait()
            SQLRunLog(first.engine, name).create()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    log = SQLRunLog(first.engine, name)
    log.write([record()])
    assert recorded_version(log) == str(SCHEMA_VERSION)


class RunLogV2(SQLRunLog):
    """What a later tickwork's log looks like: version 2 adds a column."""

    schema_version = SCHEMA_VERSION + 1
    added_columns = {SCHEMA_VERSION + 1: [lambda: Column("host_load", Double(), nullable=True)]}


def test_an_older_table_is_upgraded_by_adding_columns(make_log: MakeLog) -> None:
    old = sql(make_log())
    old.write([record("a", 0), record("a", 1, "running")])
    new = RunLogV2(old.engine, old.table_name)
    new.create()
    with old.engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns(old.table_name)}
    assert "host_load" in columns
    assert recorded_version(old) == str(SCHEMA_VERSION + 1)
    # The rows written before are intact, for both versions.
    assert new.query() == old.query() == [record("a", 1, "running"), record("a", 0)]
    new.write([record("a", 1, "success")])
    set_column(new, record("a", 1).run_id, host_load=0.5)
    # The older version keeps working on the newer table, and never lowers its version.
    old.create()
    assert recorded_version(old) == str(SCHEMA_VERSION + 1)
    old.write([record("a", 2), record("a", 1, "error")])
    assert [r.outcome for r in old.query()] == ["success", "success", "success"]
    assert old.prune(NOW, None, 1) == 2
    assert new.query() == [record("a", 2)]


def test_a_write_is_one_transaction(log: RunLog) -> None:
    broken = RunRecord(
        run_id="b@1#1",
        task_id="b",
        task_name=None,  # type: ignore[arg-type]  # NOT NULL: the database refuses it
        scheduled_run_time=T0,
        outcome="success",
    )
    with pytest.raises(Exception, match=r"(?i)null"):
        log.write([record("a", 0), broken])
    assert log.get(record("a", 0).run_id) is None
    log.write([record("a", 0)])
    assert log.query() == [record("a", 0)]


@pytest.mark.external_service("postgresql")
def test_run_ids_order_by_code_point_under_a_language_collation() -> None:
    """On a database whose default collation follows language rules ('a' < 'B'), the
    log still orders run ids as Python does (by code point)."""
    admin = create_engine(servers.postgres_url(), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    name = f"tickwork_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(
            text(
                f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu '
                "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            )
        )
    engine = create_engine(make_url(servers.postgres_url()).set(database=name), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 'a' < 'B'")).scalar() is True
        log = SQLRunLog(engine, "runs")
        log.create()
        ids = ["a", "B", "b", "A", "_", "a b", "ab"]
        log.write([one_of_many(run_id) for run_id in ids])
        assert [r.run_id for r in log.query()] == sorted(ids, reverse=True)
        assert log.prune(NOW, None, 3) == len(ids) - 3
        assert [r.run_id for r in log.query()] == sorted(ids, reverse=True)[:3]
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def one_of_many(run_id: str) -> RunRecord:
    """A record of task ``t`` at ``T0`` under ``run_id``."""
    return RunRecord(
        run_id=run_id, task_id="t", task_name="t", scheduled_run_time=T0, outcome="success"
    )


def test_prune_deletes_in_batches(log: RunLog) -> None:
    log.write([record("a", m) for m in range(1_100)] + [record("b", m) for m in range(1_100)])
    assert log.prune(NOW + timedelta(minutes=1_100), None, 10) == 2 * 1_090
    assert [r.scheduled_run_time for r in log.query("a", limit=1)] == [
        T0 + timedelta(minutes=1_099)
    ]
    # More than a day old, a day after the last run: all but the last (exactly a day
    # old), of each task.
    assert log.prune(NOW + timedelta(minutes=1_099), 86_400, None) == 2 * 9
    assert len(log.query(limit=1_000)) == 2
