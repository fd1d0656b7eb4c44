"""A trigger that fires on a cron schedule, in any time zone, through every DST change.

The schedule is matched against the *wall clock* of the trigger's zone. Wall time and real
time part ways twice a year, and these rules decide what happens then (``docs/triggers.md``
has a runnable example of each):

* **Gap** (clocks spring forward, e.g. 02:00 → 03:00): a matching wall time that does not
  exist that day fires once, at the first instant after the gap (03:00) — a daily 02:30
  job still runs that day. Several matches inside one gap fire once.
* **Repeated hour** (clocks fall back, e.g. 02:00 → 01:00): a matching wall time that
  occurs twice fires at its first occurrence only — a daily 01:30 job runs once.
* **Wildcard hour**: when the hour field matches all 24 hours (``0 * * * *``,
  ``*/15 * * * *``) the schedule follows real time instead. It fires at every instant whose
  wall clock matches, so both passes through the repeated hour, and nothing inside a gap
  (no wall clock shows those times; the next match after the gap comes at its usual time).

Every returned time is aware (in the trigger's zone), strictly after ``previous_time``,
never before ``start_at`` and never after ``end_at``. Comparisons are made in UTC: Python
compares two datetimes of the *same* zone by wall time, ignoring ``fold``, which would
call 01:30 EST earlier than 01:45 EDT.

The next fire time is computed, not searched for: the field-by-field wall-clock search of
:mod:`tickwork.triggers._cron_fields`, then at most a few offset look-ups.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import timezone as fixed_zone
from typing import Any, Never

from tickwork._spelling import unknown_names_message
from tickwork.exceptions import InvalidTriggerError
from tickwork.triggers._cron_fields import FIELD_NAMES, parse_crontab, parse_fields, with_defaults
from tickwork.triggers._cron_spec import CronSpec
from tickwork.triggers._wall_time import instant as _instant
from tickwork.triggers._wall_time import offset as _offset
from tickwork.triggers._wall_time import offsets as _offsets
from tickwork.triggers._wall_time import transition as _transition
from tickwork.triggers._wall_time import wall as _wall
from tickwork.triggers.base import BaseTrigger, synonym
from tickwork.utils import local_timezone, same_instant, to_timezone

__all__ = ["CronTrigger"]

#: ``_last`` before the first answer: (previous time, scheduler zone, the answer).
_NOTHING_YET: tuple[Any, Any, datetime | None] = (None, None, None)

_TICK = timedelta(microseconds=1)
_SECOND = timedelta(seconds=1)
# How far ahead to look for a clock set back. Only a set-back closer than its own size
# matters; the largest in tz data since 1970 is 7 hours (Antarctica/Vostok, 1994).
_PROBE = timedelta(hours=12)
# Each step of the DST loops below moves past a gap or a repeated hour; real zones need
# one or two. The bound only guards against a pathological tzinfo.
_MAX_STEPS = 16
# Marks naive start_at/end_at while the trigger has no zone of its own.
_FLOATING = fixed_zone(timedelta(0), "floating")
# Where the jitter check looks for fire times when there is no start_at, and how many.
_JITTER_REFERENCE = datetime(2026, 1, 1, tzinfo=UTC)
_JITTER_SAMPLES = 5
# (expression, zone, first instant) -> the closest two fire times sampled, or None.
_SHORTEST_GAPS: dict[tuple[Any, ...], tuple[datetime, datetime] | None] = {}
_UNKNOWN: Any = object()


class CronTrigger(BaseTrigger):
    """Fire when the wall clock matches every field, like cron.

    Fields (ints or strings): ``year`` (1970-9999), ``month`` (1-12 or ``jan``-``dec``),
    ``day`` (1-31), ``week`` (ISO week, 1-53), ``day_of_week`` (**0 is Monday**, 6 is
    Sunday, or ``mon``-``sun``), ``hour`` (0-23), ``minute`` and ``second`` (0-59). Each is
    an expression: ``*``, ``*/n``, ``a``, ``a-b``, ``a-b/n``, ``a/n`` (a to the maximum)
    or a comma list of these. ``day`` (and ``day_of_week``) also take ``last`` (the last
    day of the month; ``day`` only), ``last fri`` and ``1st mon`` ... ``5th sun``. All
    fields must match. Fields left out follow APScheduler 3: those more significant than
    the least significant one given are ``*``, the others their minimum, so ``hour=3``
    fires daily at 03:00:00 and ``day_of_week="mon"`` on Mondays at midnight.

    :meth:`from_crontab` reads a crontab line instead (Sunday is 0 or 7 there, as in cron).

    ``timezone`` is the zone whose wall clock is matched. Left out, the trigger has no
    zone of its own and follows the scheduler's (the ``timezone`` passed to
    :meth:`get_next_trigger_time`); a naive ``start_at``/``end_at`` is then read in that
    zone too. A pytz zone is converted to its zoneinfo equivalent. ``start_date`` and
    ``end_date`` (APScheduler 3's names) are accepted for ``start_at`` and ``end_at``.

    ``jitter`` delays each run by a random amount up to that many seconds, never past
    ``end_at``. It must be finite, not negative, and shorter than the time between two
    fire times (checked on the first few).

    The DST rules are in the module docstring and in ``docs/triggers.md``. A schedule that
    can never fire (``day=30, month=2``) is refused with
    :class:`~tickwork.exceptions.InvalidTriggerError`, like any bad field.
    """

    __slots__ = ("_last", "_spec", "crontab", "end_at", "fields", "jitter", "start_at", "timezone")
    alias = "cron"

    _spec: CronSpec
    #: The eight field expressions (None when built from a crontab).
    fields: dict[str, str] | None
    #: The crontab line this trigger was built from, if any.
    crontab: str | None
    timezone: tzinfo | None
    start_at: datetime | None
    end_at: datetime | None
    jitter: timedelta | None

    def __init__(
        self,
        year: int | str | None = None,
        month: int | str | None = None,
        day: int | str | None = None,
        week: int | str | None = None,
        day_of_week: int | str | None = None,
        hour: int | str | None = None,
        minute: int | str | None = None,
        second: int | str | None = None,
        start_at: datetime | date | str | None = None,
        end_at: datetime | date | str | None = None,
        timezone: str | tzinfo | None = None,
        jitter: float | timedelta | None = None,
        *,
        start_date: datetime | date | str | None = None,
        end_date: datetime | date | str | None = None,
        # Never: a type checker flags CronTrigger(minutes=5); at run time the error below
        # names the keyword and the field that was probably meant.
        **unknown: Never,
    ) -> None:
        if unknown:
            known = [*FIELD_NAMES, "start_at", "end_at", "timezone", "jitter"]
            raise InvalidTriggerError(unknown_names_message("CronTrigger", unknown, known))
        if start_date is not None:
            start_at = synonym(start_at, "start_at", start_date, "start_date")
        if end_date is not None:
            end_at = synonym(end_at, "end_at", end_date, "end_date")
        given = dict(
            zip(
                FIELD_NAMES,
                (year, month, day, week, day_of_week, hour, minute, second),
                strict=True,
            )
        )
        self.fields = with_defaults(given)
        self.crontab = None
        self._spec = parse_fields(self.fields)
        self._configure(timezone, start_at, end_at, jitter)

    @classmethod
    def from_crontab(
        cls,
        expression: str,
        timezone: str | tzinfo | None = None,
        *,
        start_at: datetime | date | str | None = None,
        end_at: datetime | date | str | None = None,
        jitter: float | timedelta | None = None,
    ) -> CronTrigger:
        """Build a trigger from a crontab line.

        Accepted: ``"minute hour day month day_of_week"``; six fields with the **seconds
        first** (``"30 */5 * * * *"`` is second 30 of every fifth minute, as in Quartz and
        Spring); and ``@hourly``, ``@daily``, ``@midnight``, ``@weekly``, ``@monthly``,
        ``@yearly``, ``@annually``. Day of week is cron's: 0 and 7 are Sunday, names
        ``sun``-``sat``. croniter validates and expands the fields, so its extensions work
        too: ``L`` (last day of the month) in the day field, ``5#3`` (third Friday) and
        ``L5`` (last Friday) in the day-of-week field. Not supported: ``W``, ``H``, a year
        field, ``@reboot``; backward ranges such as ``5-1`` are errors.

        When both the day and the day-of-week fields are restricted (neither starts with
        ``*``), a day matching *either* fires, as in standard (Vixie) cron:
        ``0 0 13 * fri`` runs on every 13th and on every Friday.
        """
        trigger = cls.__new__(cls)
        trigger.fields = None
        trigger.crontab = expression
        trigger._spec = parse_crontab(expression)
        trigger._configure(timezone, start_at, end_at, jitter)
        return trigger

    def _configure(
        self,
        timezone: str | tzinfo | None,
        start_at: datetime | date | str | None,
        end_at: datetime | date | str | None,
        jitter: float | timedelta | None,
    ) -> None:
        try:
            self.timezone = to_timezone(timezone)
        except ValueError as exc:
            raise InvalidTriggerError(str(exc)) from None
        self.start_at = self._bound(start_at, "start_at")
        self.end_at = self._bound(end_at, "end_at")
        start, end = self.start_at, self.end_at
        if start is not None and end is not None and (start.tzinfo is None) == (end.tzinfo is None):
            self._check_bounds(start, end)
        self.jitter = self._resolve_jitter(jitter)
        if self.jitter is not None:
            self._check_jitter(jitter)
        self._last = _NOTHING_YET

    def _check_jitter(self, given: object) -> None:
        """Refuse a jitter that is not shorter than the time between two consecutive fire
        times: the delayed run would land after the next fire time, and that one would be
        skipped (the next fire time is counted from the delayed run).

        The gaps are measured between the first few fire times from ``start_at`` (or from
        the start of 2026) in the trigger's zone (or UTC): not every gap of every schedule,
        but the common mistakes (``minute="*"`` with a jitter of minutes) are found once,
        here, where the trigger is built. A schedule that fires less than twice from
        there is not checked.
        """
        jitter = self.jitter
        assert jitter is not None  # (only called with one)
        zone = self.timezone or UTC
        earliest = _as_utc(self.start_at, zone) or _JITTER_REFERENCE
        expression = self.crontab if self.fields is None else tuple(self.fields.values())
        key = (expression, zone, earliest)
        try:
            shortest = _SHORTEST_GAPS.get(key, _UNKNOWN)
            hashable = True
        except TypeError:  # an unhashable custom tzinfo
            shortest, hashable = _UNKNOWN, False
        if shortest is _UNKNOWN:
            # A few searches (about 10 µs each): kept per schedule, for code that builds an
            # equal trigger for every task.
            shortest = self._shortest_gap(zone, earliest)
            if hashable:
                if len(_SHORTEST_GAPS) >= 256:
                    _SHORTEST_GAPS.clear()
                _SHORTEST_GAPS[key] = shortest
        if shortest is not None and shortest[1] - shortest[0] <= jitter:
            before, after = shortest
            raise InvalidTriggerError(
                f"jitter must be shorter than the time between two fire times "
                f"({after - before}, from {before.astimezone(zone).isoformat()} "
                f"to {after.astimezone(zone).isoformat()}), got {given!r}"
            )

    def _shortest_gap(self, zone: tzinfo, earliest: datetime) -> tuple[datetime, datetime] | None:
        """The two consecutive fire times closest together among the first few from
        ``earliest``; None when there are fewer than two."""
        shortest: tuple[datetime, datetime] | None = None
        previous: datetime | None = None
        for _ in range(_JITTER_SAMPLES):
            try:
                fire_time = self._next_fire(zone, earliest)
            except OverflowError:
                break
            if fire_time is None:
                break
            if previous is not None and (
                shortest is None or fire_time - previous < shortest[1] - shortest[0]
            ):
                shortest = (previous, fire_time)
            previous = fire_time
            earliest = fire_time + _TICK
        return shortest

    def _bound(self, value: datetime | date | str | None, name: str) -> datetime | None:
        bound = self._resolve_datetime(value, self.timezone or _FLOATING, name)
        if bound is not None and bound.tzinfo is _FLOATING:
            bound = bound.replace(tzinfo=None)  # read in the scheduler's zone, when asked
        return bound

    @property
    def shareable(self) -> bool:
        """Always True: a cron trigger never changes once built."""
        return True

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        """Return the first fire time strictly after ``previous_time`` (at or after ``now``
        when there is none), never before ``start_at``; ``None`` past ``end_at``."""
        if previous_time is None or self.jitter is not None:
            return self._next(timezone, previous_time, now)
        # Tasks sharing this trigger and due at the same instant (a thousand tasks on one
        # cron minute) ask about the same time: the search runs once, and they share its
        # answer, so next time they ask about the very same object.
        last = self._last
        if last[1] is timezone and same_instant(last[0], previous_time):
            return last[2]
        fire_time = self._next(timezone, previous_time, now)
        self._last = (previous_time, timezone, fire_time)
        return fire_time

    def _next(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None
    ) -> datetime | None:
        # (The scheduler's zone is a standard one already; to_timezone only converts a
        # pytz zone given by code that calls the trigger itself.)
        zone = self.timezone or to_timezone(timezone) or local_timezone()
        start = _as_utc(self.start_at, zone)
        end = _as_utc(self.end_at, zone)
        if previous_time is not None:
            earliest = previous_time.astimezone(UTC) + _TICK
        elif now is not None:
            earliest = now.astimezone(UTC)
        elif start is not None:
            earliest = start
        else:
            raise InvalidTriggerError("CronTrigger needs 'now' to find its first fire time")
        if start is not None and start > earliest:
            earliest = start
        try:
            fire_time = self._next_fire(zone, earliest)
            if fire_time is None or (end is not None and fire_time > end):
                return None
            # Jitter in UTC: adding a timedelta to a zoned datetime moves its wall clock,
            # which could land in a gap. Never past end_at (rule 5 of docs/triggers.md).
            return self._apply_jitter(fire_time, self.jitter, end).astimezone(zone)
        except OverflowError:  # the search (or the jitter) ran past year 9999
            return None

    def latest_fire_time(self, timezone: tzinfo, due: datetime, now: datetime) -> datetime | None:
        """The latest fire time in ``[due, now]`` (within ``end_at``), searched backwards
        from ``now`` field by field under the same DST rules as the forward search; see
        :meth:`~tickwork.triggers.base.BaseTrigger.latest_fire_time`.

        ``None`` with jitter (jittered fire times are random: each walk draws new ones).
        The candidate is checked with the forward search (a fire time is the first fire
        time at or after itself) before it is returned, so a DST case the backward
        search got wrong costs a walk, never a run at a time the trigger would not have
        given."""
        if self.jitter is not None:
            return None
        zone = self.timezone or to_timezone(timezone) or local_timezone()
        bound = now.astimezone(UTC)
        end = _as_utc(self.end_at, zone)
        if end is not None and end < bound:
            bound = end  # the walk stops at end_at: nothing after it is a fire time
        due_utc = due.astimezone(UTC)
        if bound <= due_utc:
            return due
        spec = self._spec
        try:
            if spec.every_hour:
                candidate = _latest_by_real_time(spec, zone, bound)
            else:
                candidate = _latest_by_wall_time(spec, zone, bound)
            if candidate == due_utc:
                return due
            if (
                candidate is None
                or not due_utc < candidate <= bound
                or self._next_fire(zone, candidate) != candidate
            ):
                return None
        except OverflowError:
            return None
        start = _as_utc(self.start_at, zone)
        if start is not None and candidate < start:  # (only with a due before start_at)
            return None
        return candidate.astimezone(zone)

    def _next_fire(self, zone: tzinfo, earliest: datetime) -> datetime | None:
        if self._spec.every_hour:
            return _next_by_real_time(self._spec, zone, earliest)
        return _next_by_wall_time(self._spec, zone, earliest)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "version": 1,
            "fields": dict(self.fields) if self.fields is not None else None,
            "crontab": self.crontab,
            "start_at": self.start_at,
            "end_at": self.end_at,
            "timezone": self.timezone,
            "jitter": self.jitter,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._check_state_version(state)
        self.fields = state["fields"]
        self.crontab = state["crontab"]
        if self.crontab is not None:
            self._spec = parse_crontab(self.crontab)
        else:
            self._spec = parse_fields(state["fields"])
        self.start_at = state["start_at"]
        self.end_at = state["end_at"]
        self.timezone = state["timezone"]
        self.jitter = state["jitter"]
        self._last = _NOTHING_YET

    def __repr__(self) -> str:
        extras = []
        if self.timezone is not None:
            extras.append(f"timezone={str(self.timezone)!r}")
        if self.start_at is not None:
            extras.append(f"start_at={self.start_at.isoformat()!r}")
        if self.end_at is not None:
            extras.append(f"end_at={self.end_at.isoformat()!r}")
        if self.jitter:
            extras.append(f"jitter={self.jitter.total_seconds()}")
        if self.crontab is not None:
            return f"CronTrigger.from_crontab({', '.join([repr(self.crontab), *extras])})"
        fields = self.fields or {}
        parts = [f"{name}={value!r}" for name, value in fields.items() if value != "*"]
        return f"CronTrigger({', '.join(parts + extras)})"


# ---------------------------------------------------------------------------------------
# Wall time ↔ real time (tickwork.triggers._wall_time). Instants are aware UTC datetimes,
# wall times naive ones.


def _as_utc(value: datetime | None, zone: tzinfo) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _next_by_wall_time(spec: CronSpec, zone: tzinfo, earliest: datetime) -> datetime | None:
    """Fixed-hour schedules: each matching wall time fires once (gap: at its end; repeated
    hour: the first pass). That mapping never goes backwards in wall time, so the answer
    is the first matching wall time whose instant is not before ``earliest``."""
    # From the wall time just before ``earliest``: when ``earliest`` is the end of a gap,
    # the skipped wall times map to it and must be found.
    wall: datetime | None = spec.next_wall(_wall(zone, earliest - _TICK) + _TICK)
    for _ in range(_MAX_STEPS):
        if wall is None:
            return None
        before, after = _offsets(zone, wall)
        if before < after:
            fire_time = _transition(zone, _instant(wall, after), _instant(wall, before))
        else:
            fire_time = _instant(wall, before)
        if fire_time >= earliest:
            return fire_time
        if before > after:
            # ``earliest`` is in the second pass of a repeated hour, whose wall times all
            # fired in the first pass: go on after the repeated hour.
            change = _transition(zone, _instant(wall, before), _instant(wall, after))
            wall = spec.next_wall(change.replace(tzinfo=None) + before)
        else:
            wall = spec.next_wall(wall + _SECOND)
    return None


def _next_by_real_time(spec: CronSpec, zone: tzinfo, earliest: datetime) -> datetime | None:
    """Wildcard-hour schedules: the first instant at or after ``earliest`` whose wall clock
    matches; both passes of a repeated hour count, wall times in a gap never happen."""
    best: datetime | None = None
    wall = spec.next_wall(_wall(zone, earliest))
    for _ in range(_MAX_STEPS):
        if wall is None:
            break
        before, after = _offsets(zone, wall)
        if before < after:  # in a gap: go on from the gap's end
            change = _transition(zone, _instant(wall, after), _instant(wall, before))
            wall = spec.next_wall(change.replace(tzinfo=None) + after)
            continue
        for offset in (before, after):  # the first pass, else the second
            if (candidate := _instant(wall, offset)) >= earliest:
                best = candidate
                break
        if best is not None:
            break
        wall = spec.next_wall(wall + _SECOND)
    # A clock set back shortly after ``earliest`` replays wall times *earlier* than
    # ``earliest``'s own, and the search above started at that wall time.
    offset_now = _offset(earliest.astimezone(zone))
    probe = earliest + _PROBE
    offset_later = _offset(probe.astimezone(zone))
    if offset_later < offset_now:
        change = _transition(zone, earliest, probe).replace(tzinfo=None)
        replayed = spec.next_wall(change + offset_later)
        if replayed is not None and replayed < change + offset_now:
            candidate = _instant(replayed, offset_later)
            if best is None or candidate < best:
                best = candidate
    return best


# ---------------------------------------------------------------------------------------
# Backwards: the latest fire time at or before an instant (a coalesced task's catch-up).


def _second_pass_end(zone: tzinfo, bound: datetime) -> datetime | None:
    """When ``bound`` lies in the second pass of a repeated hour, the wall time at which
    that repeated stretch ends (exclusive); otherwise ``None``.

    In the second pass, every wall time of the repeated stretch has already been shown
    once, before ``bound``, including those still ahead on the wall clock."""
    wall = _wall(zone, bound).replace(fold=0)  # (a second-pass wall keeps fold=1)
    before, after = _offsets(zone, wall)
    if before <= after or _offset(bound.astimezone(zone)) != after:
        return None
    change = _transition(zone, _instant(wall, before), bound)
    return change.replace(tzinfo=None) + before


def _latest_by_wall_time(spec: CronSpec, zone: tzinfo, bound: datetime) -> datetime | None:
    """Fixed-hour schedules: the fire time of the last matching wall time whose fire time
    is not after ``bound``.

    A matching wall time fires at its instant (a repeated one at its first pass, one in a
    gap at the gap's end), and that mapping never goes backwards in wall time: the
    answer belongs to the last matching wall time up to ``bound``'s own, or, in the second
    pass of a repeated hour, up to the end of the repeated stretch (all of it has fired
    by then)."""
    stretch_end = _second_pass_end(zone, bound)
    limit = _wall(zone, bound) if stretch_end is None else stretch_end - _TICK
    wall = spec.prev_wall(limit)
    if wall is None:
        return None
    before, after = _offsets(zone, wall)
    if before < after:
        return _transition(zone, _instant(wall, after), _instant(wall, before))
    return _instant(wall, before)


def _latest_by_real_time(spec: CronSpec, zone: tzinfo, bound: datetime) -> datetime | None:
    """Wildcard-hour schedules: the last instant at or before ``bound`` whose wall clock
    matches; both passes of a repeated hour count, wall times in a gap never happen."""
    best: datetime | None = None
    limit = _wall(zone, bound)
    for _ in range(_MAX_STEPS):
        wall = spec.prev_wall(limit)
        if wall is None:
            break
        before, after = _offsets(zone, wall)
        if before < after:  # in a gap: no clock showed it; go on from before the gap
            change = _transition(zone, _instant(wall, after), _instant(wall, before))
            limit = change.replace(tzinfo=None) + before - _TICK
            continue
        # The second pass first: it is the later instant (equal offsets: one instant).
        for offset in (after, before):
            if (candidate := _instant(wall, offset)) <= bound:
                best = candidate
                break
        if best is not None:
            break
        limit = wall - _SECOND
    # In the second pass of a repeated hour, wall times still ahead of ``bound``'s own
    # were shown in the first pass, before ``bound``: the last of them may be later than
    # anything found above (which then lies before the repeated stretch).
    stretch_end = _second_pass_end(zone, bound)
    if stretch_end is not None:
        wall = spec.prev_wall(stretch_end - _TICK)
        if wall is not None and wall > _wall(zone, bound):
            candidate = _instant(wall, _offsets(zone, wall)[0])
            if best is None or candidate > best:
                best = candidate
    return best
