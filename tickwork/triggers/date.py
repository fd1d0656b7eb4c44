"""A trigger that fires once."""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from typing import Any

from tickwork.triggers.base import BaseTrigger, synonym
from tickwork.utils import ClassSignature

__all__ = ["DateTrigger"]


class DateTrigger(BaseTrigger):
    """Fire once, at ``run_at``.

    ``run_at`` may be an aware datetime, a naive one or an ISO string (read as wall time
    in ``timezone``, or the local zone), or a date (its midnight). Left out, the trigger
    fires as soon as the task is scheduled ("now" by the scheduler's clock). ``run_date``
    is accepted as a synonym, for code written against APScheduler (not both). A pytz
    zone, and a ``run_at`` in one, are converted to their zoneinfo equivalents.
    """

    __slots__ = ("run_at", "timezone")
    alias = "date"
    __signature__ = ClassSignature()  # add_task asks for it on every call

    def __init__(
        self,
        run_at: datetime | date | str | None = None,
        timezone: str | tzinfo | None = None,
        *,
        run_date: datetime | date | str | None = None,
    ) -> None:
        if run_date is not None:
            run_at = synonym(run_at, "run_at", run_date, "run_date")
        self.timezone = self._resolve_timezone(timezone)
        self.run_at = self._resolve_datetime(run_at, self.timezone, "run_at")

    @property
    def shareable(self) -> bool:
        """True when ``run_at`` is given (without it the trigger anchors "now" on first use)."""
        return self.run_at is not None

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        """Return ``run_at`` the first time, then ``None``."""
        if previous_time is not None:
            return None
        if self.run_at is None:
            # Anchor "now" on first use, so later questions get the same answer.
            self.run_at = now
        return self.run_at

    def latest_fire_time(self, timezone: tzinfo, due: datetime, now: datetime) -> datetime | None:
        """``run_at``, the only fire time, when it lies in ``[due, now]``; else ``None``
        (see :meth:`~tickwork.triggers.base.BaseTrigger.latest_fire_time`)."""
        run_at = self.run_at
        # In UTC: datetimes of one DST zone compare by wall time, ignoring fold.
        if run_at is not None and due.astimezone(UTC) <= run_at.astimezone(UTC) <= now:
            return run_at
        return None

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "run_at": self.run_at, "timezone": self.timezone}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._check_state_version(state)
        self.run_at = state["run_at"]
        self.timezone = state["timezone"]

    def __repr__(self) -> str:
        when = self.run_at.isoformat() if self.run_at else "now"
        return f"DateTrigger(run_at={when})"
