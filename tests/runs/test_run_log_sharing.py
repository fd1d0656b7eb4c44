"""Logs that outlive the process and are shared (file, SQL, Redis): records survive a
restart, every log object on one location sees the same records, two processes racing
on the same runs agree on one final outcome each, and 10,000 records stay quick."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from run_log_support import SHARED, T0, LogSpec, MakeLog, record
from run_log_writer import read_all, write_all

from tickwork.runs import RunRecord
from tickwork.runs.base import RunLog

LOG_KINDS = SHARED
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def test_records_survive_a_restart(make_log: MakeLog) -> None:
    first = make_log()
    first.write([record("a", 0), record("a", 1, "running"), record("b", 2, "error")])
    first.close()
    again = make_log()
    assert [(r.task_id, r.outcome) for r in again.query()] == [
        ("b", "error"),
        ("a", "running"),
        ("a", "success"),
    ]
    assert again.get(record("a", 0).run_id) == record("a", 0)


def test_every_log_on_a_location_sees_the_same_records_and_rule(make_log: MakeLog) -> None:
    one, two = make_log(), make_log()
    one.write([record(outcome="running")])
    assert two.get(record().run_id) == record(outcome="running")
    two.write([record(outcome="timeout")])
    one.write([record(outcome="success")])  # too late: two's outcome was first
    one.write([record(outcome="running")])
    assert one.get(record().run_id) == two.get(record().run_id) == record(outcome="timeout")


def test_records_read_back_exactly(log: RunLog) -> None:
    # Microseconds, a zone other than UTC, long texts, non-ASCII, every optional field.
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    scheduled = (T0 + timedelta(microseconds=123_457)).astimezone(berlin)
    full = RunRecord(
        run_id="billing:run@x#7",
        task_id="billing:run",
        task_name="Bücher prüfen ✓",
        scheduled_run_time=scheduled,
        outcome="error",
        started_at=scheduled + timedelta(microseconds=1),
        finished_at=scheduled + timedelta(seconds=2.5),
        duration=2.499999,
        attempt=3,
        error="KeyError: 'ß'",
        traceback="Traceback (most recent call last):\n" + "  line\n" * 5000,
        scheduler="host-1:4242",
        executor="processpool",
    )
    log.write([full])
    got = log.get(full.run_id)
    assert got == full
    assert got is not None
    assert got.scheduled_run_time.utcoffset() == timedelta(0)  # read back in UTC
    assert log.query("billing:run") == [full]
    assert log.query(outcome="error", since=scheduled) == [full]
    assert log.query(since=scheduled + timedelta(microseconds=1)) == []


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_two_processes_racing_on_the_same_runs_agree(log_spec: LogSpec, make_log: MakeLog) -> None:
    count = 600
    log = make_log()  # (creates the table before the writer starts)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    with subprocess.Popen(
        [sys.executable, str(HERE / "run_log_writer.py"), log_spec.to_json(), "error", str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    ) as writer:
        assert writer.stdin is not None
        assert writer.stdout is not None
        try:
            assert writer.stdout.readline().strip() == "ready"
            writer.stdin.write("go\n")
            writer.stdin.flush()
            started = time.perf_counter()
            write_all(log, "success", count)
            assert writer.stdout.readline().strip() == "written"
            elapsed = time.perf_counter() - started
            writer.stdin.write("read\n")
            writer.stdin.flush()
            theirs = json.loads(writer.stdout.readline())
            assert writer.wait(timeout=30) == 0
        finally:
            if writer.poll() is None:
                writer.kill()
    ours = read_all(log, count)
    assert ours == theirs
    assert set(ours.values()) <= {"success", "error"}
    won = collections.Counter(ours.values())
    print(
        f"\n[{log_spec.kind}] two processes racing on {count} runs ({elapsed:.2f} s): "
        f"first final outcomes: {dict(won)}"
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ten_thousand_records(
    log: RunLog, log_spec: LogSpec, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks, per_task = 20, 500
    records = [
        record(
            f"task-{t:02d}",
            m,
            "running" if m == per_task - 1 else ("error" if m % 100 == 7 else "success"),
        )
        for m in range(per_task)
        for t in range(tasks)
    ]
    timings: dict[str, float] = {}

    def timed(name: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = call()
        timings[name] = time.perf_counter() - started
        return result

    def write_all_batches() -> None:
        for start in range(0, len(records), 500):
            log.write(records[start : start + 500])

    timed("write 10,000 (batches of 500)", write_all_batches)
    newest = timed("query() newest 100", lambda: log.query(limit=100))
    assert [r.scheduled_run_time for r in newest[:tasks]] == [T0 + timedelta(minutes=499)] * tasks
    assert len(newest) == 100
    one_task = timed("query(task) newest 100", lambda: log.query("task-07", limit=100))
    assert [r.scheduled_run_time.minute for r in one_task[:2]] == [(499 % 60), (498 % 60)]
    errors = timed("query(outcome='error')", lambda: log.query(outcome="error", limit=1000))
    assert len(errors) == tasks * 5
    since = timed("query(since=last 10 min)", lambda: log.query(since=T0 + timedelta(minutes=490)))
    assert len(since) == 100
    timed("get x100", lambda: [log.get(r.run_id) for r in records[:100]])
    now = T0 + timedelta(minutes=per_task)
    pruned = timed("prune(max_per_task=100)", lambda: log.prune(now, None, 100))
    assert pruned == tasks * (per_task - 1 - 100)
    # Older than an hour: scheduled before minute 440, so minutes 399 to 439 of each task.
    pruned = timed("prune(max_age=60 min)", lambda: log.prune(now, 3600, None))
    assert pruned == tasks * 41
    assert timed("prune() again (nothing to do)", lambda: log.prune(now, 3600, 100)) == 0
    assert len(log.query(limit=10_000)) == tasks * 60  # 59 final + the running one each
    with capsys.disabled():
        print(f"\n[{log_spec.kind}] 10,000 run records, 20 tasks:")
        for name, seconds in timings.items():
            print(f"    {name:<32} {seconds * 1000:9.1f} ms")
