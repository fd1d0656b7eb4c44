"""The admin app's actions, each one call of the scheduler's API (so each sends the
usual events and, on a shared store, reaches the fleet through the store)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tickwork.exceptions import TaskLookupError
from tickwork.web._data import BadInput, field_of_error, find_run, get_task, trigger_edit

if TYPE_CHECKING:
    from tickwork.admin import AdminTarget

__all__ = ["TASK_ACTIONS", "cancel", "task_action"]

TASK_ACTIONS = ("pause", "resume", "run", "delete", "reschedule")


def task_action(
    target: AdminTarget, task_id: str, action: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Do ``action`` to the task; return what happened, as JSON-ready data."""
    get_task(target, task_id)  # an unknown id is a 404 before anything else
    if action == "pause":
        target.pause_task(task_id)
    elif action == "resume":
        if target.resume_task(task_id) is None:
            return {"task_id": task_id, "action": action, "deleted": True}
    elif action == "run":
        # request_run, not run_task: the fleet runs it (an admin-only process runs
        # nothing, and an application's web workers should not run tasks either).
        return {"task_id": task_id, "action": action, "run_id": target.request_run(task_id)}
    elif action == "delete":
        target.delete_task(task_id)
    elif action == "reschedule":
        reschedule(target, task_id, body.get("trigger"), body.get("args", {}))
    else:
        raise BadInput("action", f"unknown action {action!r}; one of {list(TASK_ACTIONS)}")
    return {"task_id": task_id, "action": action}


def reschedule(target: AdminTarget, task_id: str, trigger: object, args: object) -> None:
    """Give the task a new trigger; a trigger that cannot be built is a :class:`BadInput`
    naming the argument its error names."""
    alias, options = trigger_edit(trigger, args)
    try:
        target.reschedule_task(task_id, trigger=alias, **options)
    except TaskLookupError:
        raise
    except (ValueError, TypeError) as exc:
        raise BadInput(field_of_error(str(exc), options), str(exc)) from None


def cancel(target: AdminTarget, run_id: str) -> dict[str, Any]:
    """Cancel a run (a 404 for an unknown id); ``cancelled`` says whether it was stopped."""
    find_run(target, run_id)
    return {"run_id": run_id, "action": "cancel", "cancelled": target.cancel_run(run_id)}
