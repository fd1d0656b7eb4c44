"""The run-log contract: where a store keeps its :class:`~tickwork.runs.RunRecord` s.

Every backend (memory, file, SQL, Redis) passes the same contract suite
(``tests/runs/test_run_log_contract.py``). The docstrings below are the contract.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import datetime

from tickwork.runs import RunRecord

__all__ = ["RunLog", "newest_first"]


class RunLog(ABC):
    """Keeps run records. Safe to call from several threads (and, for shared backends,
    from several processes) at once."""

    @abstractmethod
    def write(self, records: Iterable[RunRecord]) -> None:
        """Store ``records``, each under its ``run_id``, by the rule of
        :mod:`tickwork.runs`: a record replaces a ``running`` one with the same id (or
        is added); a final record already stored is never replaced. Writes are batched
        by the caller: one call may hold many records, also two for one run (its start,
        then its end)."""

    @abstractmethod
    def get(self, run_id: str) -> RunRecord | None:
        """The record with this id, or ``None``."""

    @abstractmethod
    def query(
        self,
        task_id: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        """Records newest first (by ``scheduled_run_time``, then ``run_id``), filtered
        by task, outcome and ``scheduled_run_time >= since``, at most ``limit``."""

    @abstractmethod
    def prune(self, now: datetime, max_age: float | None, max_per_task: int | None) -> int:
        """Delete final records whose ``scheduled_run_time`` is more than ``max_age``
        seconds before ``now``, and all but the ``max_per_task`` newest final records of
        each task; ``running`` records are kept whatever their age. Returns how many
        were deleted."""

    def close(self) -> None:
        """Release what the log holds (connections, files); records stay stored."""


def newest_first(record: RunRecord) -> tuple[float, str]:
    """The sort key of :meth:`RunLog.query`'s order (use with ``reverse=True``)."""
    return record.scheduled_run_time.timestamp(), record.run_id
