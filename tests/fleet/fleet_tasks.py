"""Task functions for the fleet tests: module-level, so stored tasks name them as
``"fleet_tasks:<name>"`` and every worker process can import them."""

from __future__ import annotations

import asyncio
import os
import threading
from datetime import UTC, datetime

#: Interval tasks start here, so every process computes the same slots (whole seconds).
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


async def tick() -> None:
    """A quick task."""
    await asyncio.sleep(0.01)


async def slow(seconds: float) -> None:
    """A task that is still running when a test kills its process."""
    await asyncio.sleep(seconds)


#: Opened by the in-process tests to let :func:`blocker` runs end.
GATE = threading.Event()


def blocker() -> None:
    """A run that lasts until the test opens :data:`GATE` (at most 10 s)."""
    GATE.wait(10)


def quick() -> None:
    """A run that ends at once."""


async def flaky(path: str, failures: int, seconds: float) -> str:
    """An attempt of a run that fails while fewer than ``failures`` attempts started
    before it (counted across processes in the file ``path``), after ``seconds``; each
    attempt appends ``start <pid>`` when it starts and ``fail <pid>`` / ``ok <pid>``
    when it ends, so a test sees every attempt, who made it, and when to kill whom."""
    before = _note(path, "start")
    await asyncio.sleep(seconds)
    _note(path, "fail" if before < failures else "ok")
    if before < failures:
        raise ConnectionError(f"attempt {before + 1} fails on purpose")
    return "ok"


def _note(path: str, word: str) -> int:
    """Append ``<word> <pid>`` to ``path``; return how many attempts had started."""
    with open(path, "a+") as lines:
        lines.seek(0)
        started = sum(line.startswith("start") for line in lines)
        lines.write(f"{word} {os.getpid()}\n")
    return started
