"""``tickwork tasks …`` against every kind of store, with a fleet member (a scheduler in
the test process) running on it: what the command lists is the fleet's, and what it
changes reaches the fleet."""

from __future__ import annotations

import uuid
from datetime import datetime

import cli_helpers
from cli_helpers import CALLS, tickwork, wait_for
from cli_stores import StoreLocation

from tickwork.schedulers import AsyncIOScheduler
from tickwork.stores import store_from_url


def test_tasks_commands_drive_a_running_fleet(location: StoreLocation) -> None:
    tag = uuid.uuid4().hex
    worker = location.worker()
    worker.add_task("cli_helpers:record_call", "interval", hours=1, args=[tag], id="hourly")
    worker.add_task(
        "cli_helpers:record_call", "cron", hour=9, timezone="Europe/Berlin", args=["x"], id="daily"
    )
    worker.start()
    try:
        listed = tickwork("tasks", "list", *location.args)
        assert listed.code == 0, listed
        header, *rows = listed.out.splitlines()
        assert header.split() == ["ID", "NAME", "TRIGGER", "NEXT", "RUN", "STATE"]
        assert sorted(row.split()[0] for row in rows) == ["daily", "hourly"]
        assert all(row.endswith("scheduled") for row in rows)
        (daily_row,) = [row for row in rows if row.startswith("daily")]
        assert " CET " in daily_row or " CEST " in daily_row  # in the trigger's zone

        as_json = tickwork("tasks", "list", *location.args, "--json")
        assert as_json.code == 0, as_json
        infos = {info["id"]: info for info in as_json.json()}
        assert set(infos) == {"daily", "hourly"}
        next_daily = datetime.fromisoformat(infos["daily"]["next_run_time"])
        assert (next_daily.hour, next_daily.minute) == (9, 0)
        assert next_daily == worker.get_task("daily").next_run_time  # type: ignore[union-attr]
        assert "CronTrigger" in infos["daily"]["trigger"]

        # The command asks the fleet for a run; the worker here makes it, once.
        ran = tickwork("tasks", "run", "hourly", *location.args, "--wait", "30", "--json")
        assert ran.code == 0, ran
        record = ran.json()
        assert (record["outcome"], record["scheduler"], record["attempt"]) == (
            "success",
            "cli-worker",
            1,
        )
        assert CALLS.count(tag) == 1

        paused = tickwork("tasks", "pause", "daily", *location.args)
        assert (paused.code, paused.out.strip()) == (
            0,
            "paused task 'daily': it runs nothing until resumed",
        ), paused
        wait_for(lambda: worker.get_task("daily").next_run_time is None)  # type: ignore[union-attr]

        runs = tickwork("runs", "--task", "hourly", *location.args, "--json")
        assert runs.code == 0, runs
        assert [(r["run_id"], r["outcome"]) for r in runs.json()] == [(record["run_id"], "success")]

        unknown = tickwork("tasks", "show", "nope", *location.args)
        assert (unknown.code, unknown.out) == (3, ""), unknown
        assert unknown.error_line() == "tickwork: error: no task with id 'nope'"

        deleted = tickwork("tasks", "delete", "daily", *location.args, "--json")
        assert (deleted.code, deleted.json()) == (0, {"id": "daily", "deleted": True}), deleted
        assert worker.get_task("daily") is None
        assert worker.get_task("hourly") is not None
    finally:
        worker.shutdown()


def test_show_resume_preview_and_a_failed_run(sqlite_location: StoreLocation) -> None:
    location = sqlite_location
    worker = location.worker()
    worker.add_task("cli_helpers:fail", "interval", hours=1, args=["f"], id="fails")
    # The first of each month at 09:00 in Berlin: twelve of them cross both DST changes.
    worker.add_task(
        cli_helpers.record_call,
        "cron",
        day=1,
        hour=9,
        timezone="Europe/Berlin",
        args=["m"],
        id="monthly",
    )
    worker.start()
    try:
        failed = tickwork("tasks", "run", "fails", *location.args, "--wait", "30")
        assert (failed.code, failed.out) == (5, ""), failed
        line = failed.error_line()
        assert line.startswith("tickwork: error: run fails@")
        assert ": error in " in line
        assert "ValueError: failed on purpose (f)" in line

        (record,) = worker.get_runs("fails")
        errors = tickwork("runs", "--outcome", "error", *location.args)
        assert errors.code == 0, errors
        assert errors.out.splitlines()[0].split() == [
            "RUN", "ID", "OUTCOME", "DURATION", "SCHEDULER", "ERROR"
        ]  # fmt: skip
        (row,) = errors.out.splitlines()[1:]
        assert row.split()[:2] == [record.run_id, "error"]
        assert row.endswith("cli-worker  ValueError: failed on purpose (f)")
        shown = tickwork("runs", "show", record.run_id, *location.args)
        assert shown.code == 0, shown
        assert f"run id:    {record.run_id}" in shown.out
        assert "outcome:   error" in shown.out
        assert "scheduler: cli-worker" in shown.out
        assert 'raise ValueError(f"failed on purpose ({tag})")' in shown.out  # the traceback

        finished = tickwork("runs", "cancel", record.run_id, *location.args)
        assert finished.code == 1, finished
        assert finished.error_line().endswith("has already ended (error)")

        worker.pause_task("monthly")
        resumed = tickwork("tasks", "resume", "monthly", *location.args)
        assert resumed.code == 0, resumed
        assert resumed.out.startswith("resumed task 'monthly': next run ")
        wait_for(lambda: worker.get_task("monthly").next_run_time is not None)  # type: ignore[union-attr]

        preview = tickwork("preview", "monthly", "-n", "12", *location.args, "--json")
        assert preview.code == 0, preview
        times = [datetime.fromisoformat(item["time"]) for item in preview.json()]
        assert times == worker.preview_task_runs("monthly", 12)
        changes = [item["offset_change"] for item in preview.json() if item["offset_change"]]
        assert sorted(changes) == [
            "UTC offset +01:00 → +02:00 (daylight saving time starts)",
            "UTC offset +02:00 → +01:00 (daylight saving time ends)",
        ]

        show = tickwork("tasks", "show", "monthly", *location.args)
        assert show.code == 0, show
        fields = dict(line.split(":", 1) for line in show.out.splitlines())
        assert fields["function"].strip() == "cli_helpers:record_call"
        assert fields["args"].strip() == "('m',)"
        assert fields["state"].strip() == "scheduled"
        assert fields["next run"].strip().endswith(("(UTC+01:00)", "(UTC+02:00)"))
    finally:
        worker.shutdown()


def test_a_run_no_scheduler_makes_is_reported_unfinished(sqlite_location: StoreLocation) -> None:
    seed = sqlite_location.worker()
    seed.add_task("cli_helpers:record_call", "interval", hours=1, args=["u"], id="orphan")
    seed.start(paused=True)  # writes the task; then no scheduler runs the store
    seed.shutdown()
    result = tickwork("tasks", "run", "orphan", *sqlite_location.args, "--wait", "0.5")
    assert (result.code, result.out) == (6, ""), result
    assert "had not ended after 0.5 s" in result.error_line()


def test_cancel_a_run_in_progress_on_a_fleet_member(sqlite_location: StoreLocation) -> None:
    worker = AsyncIOScheduler(
        stores={"default": store_from_url(sqlite_location.url)}, identity="cli-async-worker"
    )
    worker.add_task("cli_helpers:sleep_long", "interval", hours=1, id="slow")
    worker.start()  # (on a loop of its own, in a thread)
    try:
        asked = tickwork("tasks", "run", "slow", *sqlite_location.args, "--json")
        assert asked.code == 0, asked
        run_id = asked.json()["run_id"]
        wait_for(lambda: [r.outcome for r in worker.get_runs("slow")] == ["running"], 30)

        listed = tickwork("runs", "--outcome", "running", *sqlite_location.args)
        assert listed.out.splitlines()[1].split()[:2] == [run_id, "running"], listed

        cancelled = tickwork("runs", "cancel", run_id, *sqlite_location.args)
        assert cancelled.code == 0, cancelled
        assert cancelled.out.startswith(f"asked for run {run_id} to be cancelled")
        wait_for(lambda: [r.outcome for r in worker.get_runs("slow")] == ["cancelled"], 30)
    finally:
        worker.shutdown()
