"""``tickwork tasks list|show|pause|resume|run|delete`` and ``tickwork preview``."""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tickwork._preview import mark_offset_changes
from tickwork.cli._exits import CommandFailed, ExitCode
from tickwork.cli._output import Output, human_duration, human_time, long_time
from tickwork.cli._targets import Target

if TYPE_CHECKING:
    from tickwork.runs import RunRecord

__all__ = ["preview", "task_action", "tasks_list", "tasks_show"]

#: Wider triggers are cut in the task table (``tasks show`` and ``--json`` have them whole).
_TRIGGER_WIDTH = 60


def tasks_list(target: Target, out: Output, args: argparse.Namespace) -> None:
    """Every task: id, name, trigger, next run and state."""
    infos = target.scheduler.get_task_infos()
    out.data(infos)
    rows = [
        [
            info["id"],
            info["name"],
            _cut(info["trigger"], _TRIGGER_WIDTH),
            human_time(info["next_run_time"]),
            _state(info),
        ]
        for info in infos
    ]
    out.table(["ID", "NAME", "TRIGGER", "NEXT RUN", "STATE"], rows, "no tasks")


def tasks_show(target: Target, out: Output, args: argparse.Namespace) -> None:
    """One task, every field."""
    info = _details(target, args.task_id)
    out.data(info)
    out.fields(
        [
            ("id", info["id"]),
            ("name", info["name"]),
            ("function", info["function"]),
            ("args", repr(tuple(info["args"]))),
            ("kwargs", repr(info["kwargs"])),
            ("trigger", info["trigger"]),
            ("next run", long_time(info["next_run_time"]) if info["next_run_time"] else "-"),
            ("state", _state(info)),
            ("store", info["store"]),
            ("executor", info["executor"]),
            ("coalesce", str(info["coalesce"])),
            ("max instances", str(info["max_instances"])),
            ("grace time", _seconds(info["mistrigger_grace_time"])),
            ("timeout", _seconds(info["timeout"])),
            ("retries", str(info["retries"])),
            ("leader only", str(info["leader_only"])),
        ]
    )


def task_action(target: Target, out: Output, args: argparse.Namespace) -> None:
    """``pause``, ``resume``, ``run`` or ``delete`` one task; every change goes through
    the store, so the fleet sees it at its next look."""
    task_id: str = args.task_id
    scheduler = target.scheduler
    scheduler.get_task_info(task_id)  # an unknown id fails first, by name
    target.check_reaches_fleet(task_id)
    if args.action == "pause":
        scheduler.pause_task(task_id)
        out.data(scheduler.get_task_info(task_id))
        out.line(f"paused task {task_id!r}: it runs nothing until resumed")
    elif args.action == "resume":
        if scheduler.resume_task(task_id) is None:
            out.data({"id": task_id, "deleted": True})
            out.line(f"task {task_id!r} had no run left, so resuming it deleted it")
            return
        info = scheduler.get_task_info(task_id)
        out.data(info)
        out.line(f"resumed task {task_id!r}: next run {long_time(info['next_run_time'])}")
    elif args.action == "delete":
        scheduler.delete_task(task_id)
        out.data({"id": task_id, "deleted": True})
        out.line(f"deleted task {task_id!r}")
    else:
        _request_run(target, out, task_id, args.wait)


def _request_run(target: Target, out: Output, task_id: str, wait: float | None) -> None:
    run_id = target.scheduler.request_run(task_id)
    if wait is None:
        out.data({"run_id": run_id, "task_id": task_id, "outcome": "requested"})
        out.line(
            f"asked the fleet to run task {task_id!r} now: run {run_id} (see `tickwork runs "
            f"--task {task_id}`)"
        )
        return
    record = _wait_for_end(target, task_id, run_id, wait)
    if record is None:
        out.data({"run_id": run_id, "task_id": task_id, "outcome": "unfinished"})
        raise CommandFailed(
            f"run {run_id} had not ended after {wait:g} s (no scheduler of the fleet has "
            "finished it yet; see `tickwork runs`)",
            ExitCode.RUN_UNFINISHED,
        )
    out.data(record._asdict())
    summary = f"run {run_id}: {record.outcome} in {human_duration(record.duration)}"
    if record.outcome != "success":
        detail = f": {record.error}" if record.error else ""
        raise CommandFailed(f"{summary}{detail}", ExitCode.RUN_FAILED)
    out.line(f"{summary} (by {record.scheduler})")


def _wait_for_end(target: Target, task_id: str, run_id: str, wait: float) -> RunRecord | None:
    """The run's final record, or None when it has not ended within ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        for record in target.scheduler.get_runs(task_id, limit=20):
            if record.run_id == run_id and record.finished:
                return record
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def preview(target: Target, out: Output, args: argparse.Namespace) -> None:
    """The task's next ``-n`` run times, each daylight-saving switch before one marked."""
    task_id: str = args.task_id
    info = target.scheduler.get_task_info(task_id)
    times = target.scheduler.preview_task_runs(task_id, args.count)
    print_times(out, times, f"task {task_id!r} ({info['trigger']})", args.count)


def print_times(
    out: Output, times: list[datetime], what: str, count: int, now: datetime | None = None
) -> None:
    """Upcoming times, for people and scripts, with the UTC offset changes marked (the
    first against ``now``, default the present)."""
    if times:
        now = (now or datetime.now(times[0].tzinfo)).astimezone(times[0].tzinfo)
    marked = mark_offset_changes(times, now)
    out.data([{"time": item.time, "offset_change": item.change} for item in marked])
    if not times:
        out.line(f"no upcoming runs of {what}")
        return
    out.line(f"next {len(times)} run time(s) of {what}:")
    for item in marked:
        note = f"   <- {item.change}" if item.change else ""
        out.line(f"  {long_time(item.time)}{note}")
    if len(times) < count:
        out.line(f"(no runs after these: {len(times)} of the {count} asked for)")


def _details(target: Target, task_id: str) -> dict[str, Any]:
    from tickwork.utils import obj_to_ref

    info = target.scheduler.get_task_info(task_id)
    info.update(function="-", args=[], kwargs={})
    task = target.scheduler.get_task(task_id)
    if task is not None:
        try:
            function = obj_to_ref(task.fn)
        except Exception:  # a lambda or a nested function: no importable name
            function = repr(task.fn)
        info.update(function=function, args=list(task.args), kwargs=dict(task.kwargs))
    return info


def _state(info: dict[str, Any]) -> str:
    if info.get("pending"):
        return "pending"
    return "paused" if info.get("paused") else "scheduled"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g} s"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
