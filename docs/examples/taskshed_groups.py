"""taskshed's task groups, as a tickwork program.

taskshed gives each task a ``group_id`` and acts on a whole group at once: fetch its
tasks, pause them, remove them. In tickwork a task has a set of ``tags`` and the scheduler
acts on every task with a tag, so a group is a tag (and a task may be in several groups).
Run it: ``python docs/examples/taskshed_groups.py``.
"""

from __future__ import annotations

from tickwork import BackgroundScheduler
from tickwork.events import TASK_MODIFIED, TASK_REMOVED, TaskEvent
from tickwork.exceptions import InvalidTaskError


def send_reminder(user_id: int, text: str) -> None:
    print(f"reminding user {user_id}: {text}")


scheduler = BackgroundScheduler(timezone="UTC")
changes: list[str] = []
scheduler.add_listener(
    lambda event: (
        changes.append(f"{event.code}:{event.task_id}") if isinstance(event, TaskEvent) else None
    ),
    TASK_MODIFIED | TASK_REMOVED,
)
scheduler.start()

# One group per user (taskshed's group_id), and a second tag for the kind of task.
for user_id in (1, 2):
    for hours in (1, 24):
        scheduler.add_task(
            send_reminder,
            "interval",
            hours=hours,
            args=[user_id, f"every {hours} h"],
            id=f"reminder-{user_id}-{hours}h",
            tags={f"user-{user_id}", "reminders"},
        )

# Every task of a group, in one call.
user_1 = scheduler.get_tasks(tag="user-1")
assert sorted(task.id for task in user_1) == ["reminder-1-1h", "reminder-1-24h"]
assert scheduler.get_task_info("reminder-1-1h")["tags"] == ["reminders", "user-1"]

# Pause a group while the user is on holiday, and resume it: each task gets its own
# TASK_MODIFIED event, and the calls say how many tasks they changed.
assert scheduler.pause_tasks(tag="user-1") == 2
assert all(task.paused for task in scheduler.get_tasks(tag="user-1"))
assert not any(task.paused for task in scheduler.get_tasks(tag="user-2"))
assert scheduler.resume_tasks(tag="user-1") == 2

# A task changes groups with update().
scheduler.update_task("reminder-2-24h", tags={"user-2", "digests"})
assert len(scheduler.get_tasks(tag="reminders")) == 3

# The user leaves: remove the group (one TASK_REMOVED event per task).
assert scheduler.remove_tasks(tag="user-2") == 2
assert sorted(task.id for task in scheduler.get_tasks()) == ["reminder-1-1h", "reminder-1-24h"]

# A bare string is a mistake (it would be a set of letters): refused, saying what to write.
try:
    scheduler.add_task(send_reminder, "interval", hours=1, args=[3, "hi"], tags="user-3")
except InvalidTaskError as exc:
    refused = str(exc)
else:
    raise AssertionError("a bare string was taken as tags")
assert "tags={'user-3'}" in refused

scheduler.shutdown()
print(f"{len(changes)} task events:", ", ".join(changes))
