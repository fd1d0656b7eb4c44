"""Bookkeeping for stored tasks that fail to load, shared by the persistent stores.

The store contract says such a task is logged and skipped, never deleted. Two details
make that work in practice:

* A due task that cannot load stays due forever. Were it retried and logged on every
  processing pass, the log would fill with one line per pass, and a store reporting its
  next run time (in the past) would wake the scheduler in a busy loop. So each failure is
  remembered with a fingerprint of the stored bytes: it is logged once, left out of
  next-run-time answers, and tried again only when its stored data changes.
* A store that writes or deletes the task forgets the failure: the new data gets a fresh
  try.
"""

from __future__ import annotations

import logging
import threading
import zlib

from tickwork.exceptions import SerializationError
from tickwork.serializers.base import BaseSerializer, cannot_load
from tickwork.tasks import Task

__all__ = ["BrokenTasks"]


class BrokenTasks:
    """The ids of stored tasks that failed to load, each with a fingerprint of its data."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._fingerprints: dict[str, int] = {}
        self._lock = threading.Lock()

    def load(self, serializer: BaseSerializer, task_id: str, data: bytes) -> Task | None:
        """Deserialize the data stored under ``task_id``; log and return ``None`` on failure.

        Data already known to fail (same fingerprint) returns ``None`` without a new log line.
        """
        fingerprint = zlib.crc32(data) ^ (len(data) << 32)
        with self._lock:
            known = self._fingerprints.get(task_id)
        if known == fingerprint:
            return None
        try:
            task = serializer.deserialize(data)
            if task.id != task_id:
                raise cannot_load(task_id, f"the data stored under this id holds task {task.id!r}")
        except SerializationError as exc:
            with self._lock:
                self._fingerprints[task_id] = fingerprint
            self._logger.error("skipping stored task %r: %s", task_id, exc)
            return None
        if known is not None:
            self.forget(task_id)
        return task

    def is_known(self, task_id: str) -> bool:
        """True when ``task_id`` failed to load and has not been rewritten since."""
        with self._lock:
            return task_id in self._fingerprints

    def ids(self) -> list[str]:
        """The ids currently known not to load."""
        with self._lock:
            return list(self._fingerprints)

    def forget(self, task_id: str) -> None:
        """Drop ``task_id`` (the store wrote or deleted it)."""
        with self._lock:
            self._fingerprints.pop(task_id, None)

    def clear(self) -> None:
        """Forget every failure (the store was emptied or restarted)."""
        with self._lock:
            self._fingerprints.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._fingerprints)
