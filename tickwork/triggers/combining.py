"""Triggers made of triggers: :class:`AndTrigger` fires when all members agree,
:class:`OrTrigger` whenever any member fires. Both nest.

Members are asked for "your first fire time at or after this instant", rather than "your
next fire time after my previous one": the previous fire time of a combination may belong
to another member, and a member that fires once (a :class:`DateTrigger`) would read it as
its own and never fire. So a member is asked with ``previous_time=None, now=instant`` and,
if it answers with a time before ``instant`` (a date trigger whose day has passed), once
more with ``previous_time`` just before ``instant``.

Members whose fire times count from when they are first asked (an interval without
``start_at``) are anchored once, at the combination's first question
(:meth:`~tickwork.triggers.base.BaseTrigger.anchored`): asked about many instants, they
must answer on one grid.

Give jitter to the combination, not to its members: members of an :class:`AndTrigger`
with jitter would practically never agree on an instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, ClassVar

from tickwork.exceptions import InvalidTriggerError
from tickwork.triggers.base import BaseTrigger

__all__ = ["AndTrigger", "OrTrigger"]

_TICK = timedelta(microseconds=1)


class _CombiningTrigger(BaseTrigger):
    """Shared construction, state and repr of :class:`AndTrigger` and :class:`OrTrigger`."""

    __slots__ = ("jitter", "triggers")

    triggers: list[BaseTrigger]
    jitter: timedelta | None

    def __init__(
        self, triggers: Sequence[BaseTrigger], jitter: float | timedelta | None = None
    ) -> None:
        name = type(self).__name__
        if isinstance(triggers, str | bytes) or not isinstance(triggers, Sequence) or not triggers:
            raise InvalidTriggerError(
                f"{name} needs a non-empty list of triggers, got {triggers!r}"
            )
        for member in triggers:
            if not isinstance(member, BaseTrigger):
                raise InvalidTriggerError(f"{name} members must be triggers, got {member!r}")
        self.triggers = list(triggers)
        self.jitter = self._resolve_jitter(jitter)

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "triggers": list(self.triggers), "jitter": self.jitter}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._check_state_version(state)
        self.triggers = list(state["triggers"])
        self.jitter = state["jitter"]

    def __repr__(self) -> str:
        members = ", ".join(repr(member) for member in self.triggers)
        jitter = f", jitter={self.jitter.total_seconds()}" if self.jitter else ""
        return f"{type(self).__name__}([{members}]{jitter})"

    def latest_fire_time(self, timezone: tzinfo, due: datetime, now: datetime) -> datetime | None:
        """Always ``None``: the scheduler walks a combination from ``due``.

        A member's latest fire time is not the combination's: an :class:`AndTrigger`
        fires only where all members agree, which only the forward search finds, and an
        :class:`OrTrigger` asks its members "first fire time at or after" rather than
        "next after your previous", which a member's own answer need not match (see the
        module docstring)."""
        return None

    def _anchor_members(self, now: datetime | None) -> None:
        # A combination belongs to one task (it is not shareable), so it may keep the
        # anchored copies.
        if now is not None:
            self.triggers = [member.anchored(now) for member in self.triggers]

    def _jittered(self, fire_time: datetime) -> datetime:
        # In UTC: adding to a zoned datetime would move its wall clock, maybe into a gap.
        zone = fire_time.tzinfo
        return self._apply_jitter(fire_time.astimezone(UTC), self.jitter).astimezone(zone)


def _first_at_or_after(member: BaseTrigger, timezone: tzinfo, instant: datetime) -> datetime | None:
    """The member's first fire time at or after ``instant`` (see the module docstring)."""
    fire_time = member.get_next_trigger_time(timezone, None, instant)
    if fire_time is not None and fire_time < instant:
        fire_time = member.get_next_trigger_time(timezone, instant - _TICK, instant)
    return fire_time


class AndTrigger(_CombiningTrigger):
    """Fire only at instants at which *every* member would fire.

    The search takes the latest of the members' next fire times and asks every member
    again from that instant, until all agree. It gives up — returns ``None``, which ends
    the task — when a member will never fire again, or after :attr:`max_rounds` rounds
    without agreement (members that can never coincide, such as an hourly cron and an
    hourly interval anchored at :17).
    """

    __slots__ = ()
    alias = "and"
    #: Rounds of "ask every member" before concluding the members never agree.
    max_rounds: ClassVar[int] = 1000

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        """Return the first instant after ``previous_time`` at which all members fire."""
        self._anchor_members(now)
        if previous_time is None:
            # The first question goes to the members as is, so an AndTrigger of triggers
            # that are all due in the past is due now, as each of them would be.
            answers = [
                member.get_next_trigger_time(timezone, None, now) for member in self.triggers
            ]
        else:
            instant = previous_time.astimezone(UTC) + _TICK
            answers = [_first_at_or_after(member, timezone, instant) for member in self.triggers]
        for _ in range(self.max_rounds):
            if any(answer is None for answer in answers):
                return None
            fire_times = [answer.astimezone(UTC) for answer in answers if answer is not None]
            latest = max(fire_times)
            if all(fire_time == latest for fire_time in fire_times):
                return self._jittered(answers[0])  # type: ignore[arg-type]  # checked above
            # Every answer is at or after the instant asked about and they differ, so
            # ``latest`` moves forward each round.
            answers = [_first_at_or_after(member, timezone, latest) for member in self.triggers]
        return None


class OrTrigger(_CombiningTrigger):
    """Fire whenever any member fires: at the earliest of their next fire times.

    Members firing at the same instant give one run. The trigger ends (``None``) when no
    member will fire again.
    """

    __slots__ = ()
    alias = "or"

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        """Return the earliest member fire time strictly after ``previous_time``."""
        self._anchor_members(now)
        if previous_time is None:
            answers = [
                member.get_next_trigger_time(timezone, None, now) for member in self.triggers
            ]
        else:
            instant = previous_time.astimezone(UTC) + _TICK
            answers = [_first_at_or_after(member, timezone, instant) for member in self.triggers]
        candidates = [answer for answer in answers if answer is not None]
        if not candidates:
            return None
        # min() over UTC: same-zone datetimes compare by wall time, ignoring fold.
        earliest = min(candidates, key=lambda answer: answer.astimezone(UTC))
        return self._jittered(earliest)
