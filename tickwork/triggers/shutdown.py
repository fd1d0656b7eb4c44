"""A trigger that fires when the scheduler shuts down."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from tickwork.triggers.base import BaseTrigger

__all__ = ["ShutdownTrigger"]


class ShutdownTrigger(BaseTrigger):
    """Fire once, during ``scheduler.shutdown()``, before the executors stop.

    It never fires on the clock, so :meth:`get_next_trigger_time` is always ``None``; the
    scheduler runs these tasks itself. Typical use: the cleanup half of a lifecycle task
    (``make_function(gen.send)`` with ``args=[False]``).
    """

    __slots__ = ()
    alias = "shutdown"

    @property
    def shareable(self) -> bool:
        """Always True: the trigger has no state."""
        return True

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        """Always ``None``: this trigger fires on shutdown, not at a time."""
        return None

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._check_state_version(state)

    def __repr__(self) -> str:
        return "ShutdownTrigger()"
