"""Task functions of the spacing and task-context tests (importable by name, for persistent stores)."""

from __future__ import annotations

import threading
import time
from itertools import pairwise

from tickwork import TaskContext

#: (key, start, end) per run, in monotonic seconds.
runs: list[tuple[str, float, float]] = []
_lock = threading.Lock()


def timed_run(key: str, seconds: float, fail: bool = False) -> None:
    """Take ``seconds``, recording when the run started and ended; raise if ``fail``."""
    start = time.monotonic()
    try:
        time.sleep(seconds)
        if fail:
            raise RuntimeError(f"{key}: failing on purpose")
    finally:
        with _lock:
            runs.append((key, start, time.monotonic()))


def runs_of(key: str) -> list[tuple[float, float]]:
    """The (start, end) of each run of ``key``, by start."""
    with _lock:
        return sorted((start, end) for k, start, end in runs if k == key)


def gaps(key: str) -> list[float]:
    """Seconds from each run's end to the next run's start (negative: they overlapped)."""
    spans = runs_of(key)
    return [nxt[0] - prev[1] for prev, nxt in pairwise(spans)]


#: What tasks with a context saw: (key, resource, task id, attempt, argument).
contexts: list[tuple[str, object, str, int, object]] = []


def with_context(ctx: TaskContext, key: str) -> None:
    """A task that asks for its context (first parameter) and records what it got."""
    contexts.append((key, ctx.resources.db, ctx.task_id, ctx.attempt, ctx.run_id))
