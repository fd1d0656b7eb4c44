"""What a :class:`~tickwork.tasks.Task` may ask of the scheduler it belongs to.

A task's own methods (``task.pause()``, ``task.update(...)``) act through the scheduler
it was added to, and ``Task(..., scheduler=s)`` adds itself. They need these few
methods, not the scheduler class: tasks know nothing else of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tickwork.tasks import Task

__all__ = ["TaskOwner"]


class TaskOwner(Protocol):
    """The scheduler methods a task calls on itself (see the module docstring)."""

    def add_task(self, fn_or_task: Task, /) -> Task:
        """Schedule a prepared task."""
        ...

    def update_task(self, task_id: str, store: str | None = None, **changes: Any) -> Task:
        """Change fields of a stored task."""
        ...

    def reschedule_task(
        self, task_id: str, store: str | None = None, trigger: Any = None, **trigger_args: Any
    ) -> Task:
        """Give a task a new trigger."""
        ...

    def pause_task(self, task_id: str, store: str | None = None) -> Task:
        """Stop a task from running."""
        ...

    def resume_task(self, task_id: str, store: str | None = None) -> Task | None:
        """Resume a paused task."""
        ...

    def delete_task(self, task_id: str, store: str | None = None) -> None:
        """Remove a task."""
        ...
