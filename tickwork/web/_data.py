"""What the admin app shows and does, as plain data: pages of tasks, runs, the fleet,
a run by its id, and the checked form of a trigger edit. Blocking (store I/O): the app
calls these off the event loop. Nothing here unpickles or imports anything named by a
request: a trigger edit names a registered alias, with plain JSON values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tickwork._preview import mark_offset_changes
from tickwork.exceptions import TaskLookupError
from tickwork.runs import OUTCOMES, RunRecord
from tickwork.runs._records import task_of_run_id
from tickwork.triggers import trigger_registry
from tickwork.triggers.shutdown import ShutdownTrigger

if TYPE_CHECKING:
    from tickwork.admin import AdminTarget
    from tickwork.tasks import Task

__all__ = [
    "BadInput",
    "TaskPage",
    "find_run",
    "run_json",
    "task_page",
    "task_row",
    "trigger_edit",
]

#: Triggers a task can be given from the admin app (combining triggers need trigger
#: objects, and a shutdown trigger is not a schedule).
_NOT_EDITABLE = frozenset({"and", "or", "shutdown"})
MAX_PAGE = 200
MAX_PREVIEW = 100
MAX_RUNS = 1000


class BadInput(ValueError):
    """A request's value is not acceptable: answered with 422 naming ``field``."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _short(value: object, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def task_row(task: Task, last: RunRecord | None = None) -> dict[str, Any]:
    """A task as JSON-ready data (arguments as ``repr`` text, never objects)."""
    return {
        "id": task.id,
        "name": task.name,
        "trigger": str(task.trigger),
        "store": task.store_alias,
        "executor": task.executor,
        "paused": task.next_run_time is None and not isinstance(task.trigger, ShutdownTrigger),
        "next_run_time": _iso(task.next_run_time),
        "args": _short(task.args),
        "kwargs": _short(task.kwargs),
        "max_instances": task.max_instances,
        "timeout": task.timeout,
        "retries": task.retries,
        "last_outcome": last.outcome if last is not None else None,
        "last_run_time": _iso(last.scheduled_run_time) if last is not None else None,
    }


def run_json(record: RunRecord) -> dict[str, Any]:
    """A run record as JSON-ready data."""
    data = record._asdict()
    for key in ("scheduled_run_time", "started_at", "finished_at"):
        data[key] = _iso(data[key])
    return data


@dataclass(frozen=True)
class TaskPage:
    """One page of the task list: its rows, how many tasks match, where it starts."""

    rows: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


def page_bounds(offset: str | None, limit: str | None, default: int) -> tuple[int, int]:
    """``offset``/``limit`` query values, checked (limit at most :data:`MAX_PAGE`)."""
    start = _int_field("offset", offset, 0, 0, None)
    size = _int_field("limit", limit, default, 1, MAX_PAGE)
    return start, size


def _int_field(name: str, raw: str | None, default: int, low: int, high: int | None) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(name, f"{name} must be an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        bound = f" and <= {high}" if high is not None else ""
        raise BadInput(name, f"{name} must be >= {low}{bound}, got {value}")
    return value


def task_page(target: AdminTarget, search: str, state: str, offset: int, limit: int) -> TaskPage:
    """The tasks whose id contains ``search`` (case-insensitive), in ``state``
    (``"all"``, ``"paused"``, ``"active"``), from ``offset``; each with its last run.
    One page is asked of the scheduler (of the database, on a SQL store)."""
    paused = {"all": None, "paused": True, "active": False}
    if state not in paused:
        raise BadInput("state", f"state must be 'all', 'paused' or 'active', got {state!r}")
    tasks, total = target.get_task_page(search, paused[state], offset, limit)
    rows = [task_row(task, _last_run(target, task.id)) for task in tasks]
    return TaskPage(rows, total, offset, limit)


def _last_run(target: AdminTarget, task_id: str) -> RunRecord | None:
    runs = target.get_runs(task_id, limit=1)
    return runs[0] if runs else None


def get_task(target: AdminTarget, task_id: str) -> Task:
    """The task, or :class:`~tickwork.exceptions.TaskLookupError`."""
    task = target.get_task(task_id)
    if task is None:
        raise TaskLookupError(task_id)
    return task


def preview(target: AdminTarget, task_id: str, count: int) -> list[dict[str, Any]]:
    """The task's next ``count`` run times, each with a note where the UTC offset changes."""
    times = target.preview_task_runs(task_id, count)
    return [{"time": _iso(item.time), "change": item.change} for item in mark_offset_changes(times)]


def query_runs(
    target: AdminTarget,
    task_id: str | None,
    outcome: str | None,
    since: str | None,
    limit: str | None,
) -> list[RunRecord]:
    """Runs filtered by task, outcome and scheduled time (``since``: ISO 8601)."""
    if outcome is not None and outcome not in OUTCOMES:
        raise BadInput("outcome", f"unknown outcome {outcome!r}; known: {list(OUTCOMES)}")
    moment: datetime | None = None
    if since:
        try:
            moment = datetime.fromisoformat(since)
        except ValueError:
            raise BadInput("since", f"since must be an ISO 8601 time, got {since!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    count = _int_field("limit", limit, 100, 1, MAX_RUNS)
    if task_id is not None:
        get_task(target, task_id)
    return target.get_runs(task_id, outcome=outcome, since=moment, limit=count)


class RunLookupError(LookupError):
    """No run with the given id (answered with 404)."""


def find_run(target: AdminTarget, run_id: str) -> RunRecord:
    """The latest record of ``run_id``, or :class:`RunLookupError`."""
    task_id = task_of_run_id(run_id)
    if task_id is not None:
        for record in target.get_runs(task_id, limit=MAX_RUNS):
            if record.run_id == run_id:
                return record
    raise RunLookupError(f"no run with id {run_id!r}")


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def trigger_edit(trigger: object, args: object) -> tuple[str, dict[str, Any]]:
    """A checked trigger edit: a registered alias and plain keyword values (str, int,
    float, bool, None, or lists of them). Raises :class:`BadInput`."""
    editable = [alias for alias in trigger_registry.aliases() if alias not in _NOT_EDITABLE]
    if not isinstance(trigger, str) or trigger not in editable:
        raise BadInput("trigger", f"unknown trigger {trigger!r}; one of {editable}")
    if not isinstance(args, dict):
        raise BadInput("args", f"args must be an object of keyword values, got {args!r}")
    for key, value in args.items():
        if not isinstance(key, str) or not _NAME.fullmatch(key):
            raise BadInput("args", f"argument name {key!r} is not a keyword")
        if not _plain(value):
            raise BadInput(key, f"{key} must be a plain value, got {value!r}")
    return trigger, dict(args)


def _plain(value: object) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    return isinstance(value, list) and all(_plain(item) for item in value)


def parse_form_args(text: str) -> dict[str, Any]:
    """``"hours=2, minutes=30"`` (the dashboard's form) as keyword values: numbers as
    numbers, ``true``/``false`` as booleans, anything else as text."""
    args: dict[str, Any] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        key, sep, raw = part.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise BadInput("args", f"expected name=value, got {part!r}")
        if _NUMBER.fullmatch(raw):
            args[key] = float(raw) if "." in raw else int(raw)
        elif raw.lower() in ("true", "false"):
            args[key] = raw.lower() == "true"
        else:
            args[key] = raw
    return args


def field_of_error(message: str, args: dict[str, Any]) -> str:
    """The argument a trigger's error message names (else ``"trigger"``)."""
    for key in args:
        if re.search(rf"\b{re.escape(key)}\b", message):
            return key
    return "trigger"


def run_timeline(runs: list[RunRecord]) -> list[dict[str, Any]]:
    """Runs oldest first, for the task page's timeline."""
    return [
        {"run_id": r.run_id, "outcome": r.outcome, "time": _iso(r.scheduled_run_time)}
        for r in reversed(runs)
    ]
