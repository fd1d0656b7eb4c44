"""Task functions for the fleet tests: module-level, so stored tasks name them as
``"fleet_tasks:<name>"`` and every worker process can import them."""

from __future__ import annotations

import asyncio
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
