"""``tickwork runs`` (the fleet's run history), ``runs show RUN_ID`` and
``runs cancel RUN_ID``."""

from __future__ import annotations

import argparse
from datetime import UTC

from tickwork.cli._exits import CommandFailed, RunNotFound
from tickwork.cli._output import Output, human_duration, human_time
from tickwork.cli._targets import Target
from tickwork.exceptions import ConfigurationError
from tickwork.runs import RunRecord, parse_run_id

__all__ = ["find_run", "runs_cancel", "runs_list", "runs_show"]

#: How far back ``runs show`` / ``runs cancel`` look among the task's newer runs (the
#: default retention keeps 100 per task).
_LOOK_BACK = 1000


def runs_list(target: Target, out: Output, args: argparse.Namespace) -> None:
    """Run records, newest first, filtered by task, outcome and time."""
    since = args.since
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # (as the run ids are written)
    records = target.scheduler.get_runs(
        args.task, outcome=args.outcome, since=since, limit=args.limit
    )
    out.data([record._asdict() for record in records])
    rows = [
        [
            record.run_id,
            record.outcome,
            human_duration(record.duration),
            record.scheduler or "-",
            record.error or "",
        ]
        for record in records
    ]
    out.table(["RUN ID", "OUTCOME", "DURATION", "SCHEDULER", "ERROR"], rows, "no runs")


def runs_show(target: Target, out: Output, args: argparse.Namespace) -> None:
    """One run record, with its traceback."""
    record = find_run(target, args.run_id)
    out.data(record._asdict())
    out.fields(
        [
            ("run id", record.run_id),
            ("task", f"{record.task_id} ({record.task_name})"),
            ("outcome", record.outcome),
            ("attempt", str(record.attempt)),
            ("scheduled", human_time(record.scheduled_run_time)),
            ("started", human_time(record.started_at)),
            ("finished", human_time(record.finished_at)),
            ("duration", human_duration(record.duration)),
            ("scheduler", record.scheduler or "-"),
            ("executor", record.executor or "-"),
            ("error", record.error or "-"),
        ]
    )
    if record.traceback:
        out.line()
        out.line(record.traceback.rstrip())


def runs_cancel(target: Target, out: Output, args: argparse.Namespace) -> None:
    """Cancel a run in progress, wherever in the fleet it runs."""
    record = find_run(target, args.run_id)
    if record.finished:
        raise CommandFailed(f"run {record.run_id} has already ended ({record.outcome})")
    if not target.scheduler.cancel_run(record.run_id):
        raise CommandFailed(
            f"run {record.run_id} could not be cancelled (a run in a thread cannot be "
            "stopped; the log of the scheduler running it says more)"
        )
    out.data({"run_id": record.run_id, "cancelled": True})
    out.line(
        f"asked for run {record.run_id} to be cancelled: the scheduler running it "
        "stops it within its lease-renewal interval"
    )


def find_run(target: Target, run_id: str) -> RunRecord:
    """The record of ``run_id``; :class:`RunNotFound` when there is none."""
    try:
        task_id, scheduled, _ = parse_run_id(run_id)
    except ConfigurationError:
        raise ConfigurationError(
            f"{run_id!r} is not a run id (they look like 'TASK@2026-12-04T09:00:00Z#1'; "
            "see `tickwork runs`)"
        ) from None
    records = target.scheduler.get_runs(task_id, since=scheduled, limit=_LOOK_BACK)
    for record in records:
        if record.run_id == run_id:
            return record
    raise RunNotFound(run_id)
