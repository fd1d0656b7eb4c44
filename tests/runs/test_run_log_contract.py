"""The run-log contract (tickwork/runs/base.py), for every backend.

A new backend is one more entry in ``LOGS`` (tests/runs/conftest.py), whose ``log``
fixture gives each test a log of every backend on a fresh location.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from zoneinfo import ZoneInfo

from run_log_support import T0, record

from tickwork.runs import FINAL_OUTCOMES, OUTCOMES, RunRecord, make_run_id
from tickwork.runs.base import RunLog


def test_a_record_is_kept_and_read_back(log: RunLog) -> None:
    written = record()
    log.write([written])
    assert log.get(written.run_id) == written
    assert log.get("nobody@2026#1") is None


def test_a_final_record_replaces_a_running_one(log: RunLog) -> None:
    log.write([record(outcome="running")])
    log.write([record(outcome="error")])
    assert log.get(record().run_id).outcome == "error"  # type: ignore[union-attr]


def test_a_running_record_replaces_a_running_one(log: RunLog) -> None:
    # base.py: "a record replaces a running one with the same id".
    log.write([record(outcome="running")])
    again = record(outcome="running")._replace(scheduler="host-2")
    log.write([again])
    assert log.get(again.run_id) == again
    log.write([record(outcome="running"), again])  # in one batch, the same
    assert log.get(again.run_id) == again


def test_the_first_final_outcome_wins(log: RunLog) -> None:
    log.write([record(outcome="success")])
    log.write([record(outcome="error")])  # (an abandoned-run check that came too late)
    log.write([record(outcome="running")])  # (a start written after the end)
    assert log.get(record().run_id).outcome == "success"  # type: ignore[union-attr]


def test_a_start_and_its_end_in_one_batch(log: RunLog) -> None:
    log.write([record(outcome="running"), record(outcome="success")])
    assert log.get(record().run_id).outcome == "success"  # type: ignore[union-attr]
    log.write([record("u", outcome="success"), record("u", outcome="running")])
    assert log.get(record("u").run_id).outcome == "success"  # type: ignore[union-attr]


def test_query_is_newest_first_and_filters(log: RunLog) -> None:
    log.write(
        [
            record("a", 0),
            record("a", 2, "error"),
            record("b", 1),
            record("a", 3, "running"),
            record("b", 4, "missed"),
        ]
    )
    assert [(r.task_id, r.scheduled_run_time.minute) for r in log.query()] == [
        ("b", 4),
        ("a", 3),
        ("a", 2),
        ("b", 1),
        ("a", 0),
    ]
    assert [r.scheduled_run_time.minute for r in log.query("a")] == [3, 2, 0]
    assert [r.task_id for r in log.query(outcome="error")] == ["a"]
    assert [r.scheduled_run_time.minute for r in log.query(since=T0 + timedelta(minutes=2))] == [
        4,
        3,
        2,
    ]
    assert len(log.query(limit=2)) == 2
    assert log.query("nobody") == []


def test_runs_of_one_time_order_by_run_id(log: RunLog) -> None:
    # Code point order, as Python sorts: not a language's ('a' < 'B') nor by case.
    ids = ["a", "B", "b", "A", "é", "_", "a b", "ab", "a@x#1", "Z" * 300]
    log.write(
        [
            RunRecord(
                run_id=run_id,
                task_id="t",
                task_name="t",
                scheduled_run_time=T0,
                outcome="success",
            )
            for run_id in ids
        ]
    )
    assert [r.run_id for r in log.query()] == sorted(ids, reverse=True)
    assert [r.run_id for r in log.query(limit=4)] == sorted(ids, reverse=True)[:4]
    assert log.prune(T0, None, 3) == len(ids) - 3
    assert [r.run_id for r in log.query()] == sorted(ids, reverse=True)[:3]


def test_prune_by_age_and_per_task_keeps_running_records(log: RunLog) -> None:
    log.write([record("a", m) for m in range(6)] + [record("a", 6, "running")])
    log.write([record("b", m) for m in range(3)])
    now = T0 + timedelta(minutes=10)
    assert log.prune(now, max_age=None, max_per_task=2) == 4 + 1
    assert [r.scheduled_run_time.minute for r in log.query("a")] == [6, 5, 4]
    assert [r.scheduled_run_time.minute for r in log.query("b")] == [2, 1]
    # Older than 5.5 minutes: a's 4 goes, b's all go; a's running record stays.
    assert log.prune(now, max_age=330, max_per_task=None) == 3
    assert [r.scheduled_run_time.minute for r in log.query("a")] == [6, 5]
    assert log.query("b") == []


def test_writers_racing_on_one_run_agree(log: RunLog) -> None:
    outcomes = ["success", "error", "timeout", "cancelled"] * 5
    barrier = threading.Barrier(len(outcomes))

    def write(outcome: str) -> None:
        barrier.wait()
        log.write([record(outcome=outcome)])

    threads = [threading.Thread(target=write, args=(o,)) for o in outcomes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = log.get(record().run_id)
    assert final is not None
    assert final.outcome in FINAL_OUTCOMES


def test_run_ids_name_the_run_whatever_the_zone() -> None:
    berlin = T0.astimezone(ZoneInfo("Europe/Berlin"))
    assert make_run_id("t", T0) == make_run_id("t", berlin) == "t@2026-03-01T12:00:00.000000Z#1"
    assert make_run_id("t", T0, 2).endswith("#2")
    assert set(OUTCOMES) - FINAL_OUTCOMES == {"running"}
