"""Run records in the scheduler's process: a bounded structure per task."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime

from tickwork.runs import RunRecord
from tickwork.runs.base import RunLog, newest_first

__all__ = ["MemoryRunLog"]


class MemoryRunLog(RunLog):
    """Records by run id, and each task's run ids in the order they were first written.

    ``max_records`` bounds the whole log even when retention never runs: past it, the
    oldest final records are dropped first (a burst of a million runs must not fill the
    memory of a process whose store holds nothing else)."""

    def __init__(self, max_records: int = 100_000) -> None:
        self.max_records = max_records
        self._records: dict[str, RunRecord] = {}
        self._lock = threading.Lock()

    def write(self, records: Iterable[RunRecord]) -> None:
        """See :meth:`RunLog.write`."""
        with self._lock:
            stored = self._records
            for record in records:
                old = stored.get(record.run_id)
                if old is None or not old.finished:
                    stored[record.run_id] = record
            if len(stored) > self.max_records:
                self._drop_oldest(len(stored) - self.max_records)

    def get(self, run_id: str) -> RunRecord | None:
        """See :meth:`RunLog.get`."""
        with self._lock:
            return self._records.get(run_id)

    def query(
        self,
        task_id: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        """See :meth:`RunLog.query`."""
        with self._lock:
            found = [
                record
                for record in self._records.values()
                if (task_id is None or record.task_id == task_id)
                and (outcome is None or record.outcome == outcome)
                and (since is None or record.scheduled_run_time >= since)
            ]
        found.sort(key=newest_first, reverse=True)
        return found[:limit]

    def prune(self, now: datetime, max_age: float | None, max_per_task: int | None) -> int:
        """See :meth:`RunLog.prune`."""
        with self._lock:
            doomed: set[str] = set()
            by_task: dict[str, list[RunRecord]] = {}
            for record in self._records.values():
                if not record.finished:
                    continue
                if (
                    max_age is not None
                    and (now - record.scheduled_run_time).total_seconds() > max_age
                ):
                    doomed.add(record.run_id)
                else:
                    by_task.setdefault(record.task_id, []).append(record)
            if max_per_task is not None:
                for records in by_task.values():
                    if len(records) > max_per_task:
                        records.sort(key=newest_first, reverse=True)
                        doomed.update(r.run_id for r in records[max_per_task:])
            for run_id in doomed:
                del self._records[run_id]
            return len(doomed)

    def _drop_oldest(self, count: int) -> None:
        finals = sorted((r for r in self._records.values() if r.finished), key=newest_first)
        for record in finals[:count]:
            del self._records[record.run_id]
