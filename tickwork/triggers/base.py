"""The trigger contract: what every trigger must do, and the helpers they share."""

from __future__ import annotations

import os
import random
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, ClassVar

from tickwork.exceptions import InvalidTriggerError
from tickwork.utils import local_timezone, to_datetime, to_timedelta, to_timezone

#: Jitter's own generator, not the ``random`` module's shared one: a scheduler drawing
#: from that would change the random sequence of the application it runs in (and make
#: seeded programs and property tests behave differently with a scheduler running).
#: Reseeded in forked children, so two workers do not jitter in step.
_jitter_random = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_jitter_random.seed)

__all__ = ["BaseTrigger"]

_UTC = UTC


def synonym(value: Any, name: str, alias_value: Any, alias: str) -> Any:
    """The value of ``alias`` (APScheduler 3's name for the keyword ``name``), refused
    when ``name`` was given too."""
    if value is not None:
        raise InvalidTriggerError(
            f"give {name} or {alias} (APScheduler 3's name for it), not both: "
            f"got {name}={value!r} and {alias}={alias_value!r}"
        )
    return alias_value


class BaseTrigger(ABC):
    """Decides *when* a task runs.

    The contract of :meth:`get_next_trigger_time`:

    * it returns a timezone-aware datetime, or ``None`` when the trigger will never
      fire again (the task is then removed);
    * the result is strictly later than ``previous_time`` when that is given;
    * with ``previous_time=None`` it returns the first fire time, which is never earlier
      than the trigger's ``start_at`` and may equal ``now`` (a first fire time equal to
      "now" counts as due);
    * ``timezone`` is the scheduler's zone, used by triggers that have none of their own;
    * it never reads the system clock: ``now`` is the scheduler's clock reading, so
      tests can drive time. It must answer without stepping through time (compute the
      answer, do not search minute by minute) and terminate even for schedules that can
      never fire.

    State: ``__getstate__`` returns a plain dict with a ``"version"`` key holding only
    JSON-friendly values plus datetimes, timedeltas, tzinfos and nested triggers, so the
    JSON serializer of persistent stores can encode it; ``__setstate__`` accepts every
    version this class ever wrote. Two triggers are equal when their types and states are.
    """

    __slots__ = ()

    #: The name ``add_task(trigger=...)`` accepts for this trigger.
    alias: ClassVar[str]
    #: The current version of this trigger's ``__getstate__`` format.
    state_version: ClassVar[int] = 1
    #: Seconds the next run must keep from the *end* of the previous one (``None``: the
    #: trigger's fire times alone decide). A fixed-delay trigger sets it; the scheduler
    #: then moves the task's next run time to at least the end of each run plus this,
    #: and holds the task while a run of it is in progress (see
    #: :mod:`tickwork.schedulers._spacing`).
    spacing: float | None = None

    @abstractmethod
    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        """Return the next fire time after ``previous_time`` (see the class docstring)."""

    @abstractmethod
    def __getstate__(self) -> dict[str, Any]:
        """Return the trigger's state as a versioned, serializer-friendly dict."""

    @abstractmethod
    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the trigger from a dict written by any version of ``__getstate__``."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__getstate__() == other.__getstate__()

    __hash__ = None  # type: ignore[assignment]  # some triggers anchor themselves on first use

    @property
    def shareable(self) -> bool:
        """True when this trigger never changes once built, so one instance can serve any
        number of tasks: :func:`~tickwork.triggers.create_trigger` then hands out one
        instance per alias and keywords (a million tasks every five minutes share one
        trigger). False for triggers that anchor themselves the first time they are asked
        (a ``date`` trigger without ``run_at``), and for every trigger that doesn't say
        otherwise."""
        return False

    def anchored(self, now: datetime) -> BaseTrigger:
        """This trigger with its fire times fixed as if first asked at ``now``.

        A trigger whose first fire time counts from when it is asked (an ``interval``
        without ``start_at``) returns a copy whose grid starts there; every other trigger
        returns itself. Combinations anchor their members once, because they ask them
        "your first fire time at or after X" for many X.
        """
        return self

    def latest_fire_time(self, timezone: tzinfo, due: datetime, now: datetime) -> datetime | None:
        """The latest fire time in ``[due, now]``, found without stepping through the
        fire times in between; ``None`` when this trigger cannot tell cheaply (the
        default).

        A coalesced task that is many fire times behind runs once, at its latest overdue
        fire time. To find it, the scheduler asks this first, then walks forward from
        the answer with :meth:`get_next_trigger_time` until the next time is after
        ``now``. Without an answer it walks from ``due``: one call per fire time, 86,400
        for a 1-second interval a day behind.

        The contract:

        * ``due`` is a fire time of this trigger (one :meth:`get_next_trigger_time`
          returned) and is not after ``now``; ``timezone`` is the scheduler's zone, as
          for :meth:`get_next_trigger_time`;
        * the answer must be a time :meth:`get_next_trigger_time` returns when walked
          from ``due``, not before ``due`` and not after ``now``;
        * an answer *earlier* than the latest such time is still correct (the walk goes
          on from it, only slower), so when in doubt (jitter, a DST change nearby) answer
          an earlier fire time, ``due`` itself, or ``None``; an answer *later* than the
          latest fire time, or one that is not a fire time, is a bug: the task would run
          at a time its trigger never gave;
        * like :meth:`get_next_trigger_time`, it never reads the system clock and must
          not step through time.
        """
        return None

    # -- helpers shared by the concrete triggers ------------------------------------------

    def _check_state_version(self, state: dict[str, Any]) -> None:
        version = state.get("version")
        if not isinstance(version, int) or version > self.state_version:
            raise InvalidTriggerError(
                f"{type(self).__name__} cannot read state version {version!r} "
                f"(this tickwork writes version {self.state_version}); upgrade tickwork"
            )

    @staticmethod
    def _resolve_timezone(timezone: str | tzinfo | None) -> tzinfo:
        try:
            zone = to_timezone(timezone)
        except ValueError as exc:
            raise InvalidTriggerError(str(exc)) from None
        return zone if zone is not None else local_timezone()

    @staticmethod
    def _resolve_datetime(value: Any, zone: tzinfo, name: str) -> datetime | None:
        try:
            return to_datetime(value, zone, name)
        except ValueError as exc:
            raise InvalidTriggerError(str(exc)) from None

    @staticmethod
    def _resolve_jitter(jitter: float | timedelta | None) -> timedelta | None:
        """A jitter of finite, non-negative seconds (or a timedelta); 0 means none."""
        try:
            value = to_timedelta(jitter, "jitter")
        except ValueError as exc:
            raise InvalidTriggerError(str(exc)) from None
        if value is not None and value < timedelta(0):
            raise InvalidTriggerError(f"jitter must not be negative, got {jitter!r}")
        return value or None

    @staticmethod
    def _check_bounds(start_at: datetime | None, end_at: datetime | None) -> None:
        if start_at is None or end_at is None:
            return
        if start_at.tzinfo is not None and end_at.tzinfo is not None:
            # In UTC: two datetimes of one DST zone compare by wall time, ignoring fold,
            # so 02:59 (first pass) would count as after 02:00 (second pass).
            after = start_at.astimezone(_UTC) > end_at.astimezone(_UTC)
        else:
            after = start_at > end_at  # (both naive: a cron trigger without a zone)
        if after:
            raise InvalidTriggerError(
                f"start_at ({start_at.isoformat()}) is after end_at ({end_at.isoformat()})"
            )

    @staticmethod
    def _apply_jitter(
        fire_time: datetime, jitter: timedelta | None, end: datetime | None = None
    ) -> datetime:
        """Delay ``fire_time`` by a random amount in ``[0, jitter]``, but not past ``end``
        (the trigger's ``end_at``).

        Jitter only ever delays: an early run could land before ``start_at`` or before the
        previous run. Keep it smaller than the gap between fire times. A fire time within
        ``end_at`` is the schedule's, so it still runs when jitter would take it past
        ``end_at``: at ``end_at`` (rule 5 of docs/triggers.md: never after ``end_at``).
        """
        if not jitter:
            return fire_time
        # Added in UTC: adding to a local time would be wall-clock arithmetic and could
        # land in a DST gap.
        delay = timedelta(seconds=_jitter_random.uniform(0, jitter.total_seconds()))
        jittered = fire_time.astimezone(_UTC) + delay
        if end is not None and jittered > end:
            jittered = end
        return jittered.astimezone(fire_time.tzinfo)
