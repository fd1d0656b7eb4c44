"""The key of one run, shared by the executors that send runs elsewhere (Celery, arq)."""

from __future__ import annotations

from datetime import UTC, datetime


def run_key(task_id: str, run_time: datetime) -> str:
    """The key of one run: ``"{task_id}@{scheduled time in UTC, ISO 8601}"``, the id of its
    message or job (the same on every scheduler of a fleet)."""
    return f"{task_id}@{run_time.astimezone(UTC).isoformat()}"
