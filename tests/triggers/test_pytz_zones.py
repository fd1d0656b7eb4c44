"""pytz zones, wherever a trigger takes a zone or a datetime, mean what they say.

pytz zones give the right offset only through ``zone.localize()``; used as plain tzinfos
they give the zone's first historical offset (local mean time: Berlin +00:53, New York
-04:56). Triggers convert them to their zoneinfo equivalents.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import timezone as fixed_zone
from zoneinfo import ZoneInfo

import pytest

from tickwork.exceptions import InvalidTriggerError
from tickwork.triggers import (
    AndTrigger,
    CronTrigger,
    DateTrigger,
    IntervalTrigger,
    create_trigger,
)

pytz = pytest.importorskip("pytz")

NEW_YORK = pytz.timezone("America/New_York")
BERLIN = pytz.timezone("Europe/Berlin")
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def test_a_cron_trigger_in_a_pytz_zone_fires_at_the_wall_time_asked_for() -> None:
    trigger = CronTrigger(hour=8, timezone=NEW_YORK)
    assert trigger.timezone == ZoneInfo("America/New_York")
    fire_time = trigger.get_next_trigger_time(UTC, None, T0)
    assert fire_time is not None
    assert fire_time.isoformat() == "2026-05-01T08:00:00-04:00"  # not 08:56 (LMT)


def test_a_cron_trigger_without_a_zone_follows_a_pytz_scheduler_zone() -> None:
    fire_time = CronTrigger(hour=8).get_next_trigger_time(NEW_YORK, None, T0)
    assert fire_time is not None
    assert fire_time.isoformat() == "2026-05-01T08:00:00-04:00"


def test_a_naive_run_at_in_a_pytz_zone_is_read_as_wall_time() -> None:
    trigger = DateTrigger(datetime(2026, 5, 1, 9), timezone=BERLIN)
    assert trigger.run_at is not None
    assert trigger.run_at.isoformat() == "2026-05-01T09:00:00+02:00"  # not +00:53
    assert trigger.timezone == ZoneInfo("Europe/Berlin")


def test_a_datetime_localized_by_pytz_keeps_its_instant() -> None:
    winter = BERLIN.localize(datetime(2026, 1, 15, 9))
    summer = NEW_YORK.localize(datetime(2026, 7, 1, 9))
    for value in (winter, summer):
        run_at = DateTrigger(value).run_at
        assert run_at is not None
        assert run_at == value
        assert run_at.utcoffset() == value.utcoffset()
        assert isinstance(run_at.tzinfo, ZoneInfo)


def test_the_second_pass_of_a_repeated_hour_keeps_its_instant() -> None:
    # 01:30 EST on 2026-11-01, the second 01:30 in New York
    second = NEW_YORK.localize(datetime(2026, 11, 1, 1, 30), is_dst=False)
    run_at = DateTrigger(second).run_at
    assert run_at is not None
    assert run_at.astimezone(UTC) == second.astimezone(UTC)
    assert run_at.isoformat() == "2026-11-01T01:30:00-05:00"


def test_a_pytz_zone_given_as_tzinfo_without_localize_means_its_wall_time() -> None:
    # datetime(..., tzinfo=pytz_zone) carries local mean time (+00:53): nobody means that
    mistaken = datetime(2026, 5, 1, 9, tzinfo=BERLIN)
    assert mistaken.utcoffset() == timedelta(minutes=53)
    run_at = DateTrigger(mistaken).run_at
    assert run_at is not None
    assert run_at.isoformat() == "2026-05-01T09:00:00+02:00"


def test_interval_start_and_end_in_pytz_zones() -> None:
    start = NEW_YORK.localize(datetime(2026, 11, 1, 0, 30))
    trigger = IntervalTrigger(
        hours=1, start_at=start, end_at=start + timedelta(hours=3), timezone=NEW_YORK
    )
    assert trigger.timezone == ZoneInfo("America/New_York")
    assert trigger.start_at is not None
    assert trigger.start_at.tzinfo == ZoneInfo("America/New_York")
    times = []
    previous = None
    while (previous := trigger.get_next_trigger_time(UTC, previous, start)) is not None:
        times.append(previous.astimezone(UTC))
    # elapsed hours through the clock change, as in any zone
    assert [t - times[0] for t in times] == [timedelta(hours=h) for h in range(4)]


def test_pytz_utc_and_fixed_offsets_become_standard_zones() -> None:
    assert DateTrigger(T0, timezone=pytz.utc).timezone is UTC
    trigger = IntervalTrigger(minutes=5, timezone=pytz.FixedOffset(330))
    assert trigger.timezone == fixed_zone(timedelta(hours=5, minutes=30))
    aligned = CronTrigger(hour=9, timezone=pytz.FixedOffset(-180))
    fire_time = aligned.get_next_trigger_time(UTC, None, T0)
    assert fire_time is not None
    assert fire_time.isoformat() == "2026-05-01T09:00:00-03:00"


def test_a_pytz_zone_by_alias_and_in_a_combination() -> None:
    by_alias = create_trigger("cron", hour=8, timezone=NEW_YORK)
    combined = AndTrigger([by_alias, CronTrigger(day_of_week="fri", hour="*", timezone=NEW_YORK)])
    fire_time = combined.get_next_trigger_time(UTC, None, T0)
    assert fire_time is not None
    assert fire_time.isoformat() == "2026-05-01T08:00:00-04:00"  # a Friday


def test_a_pytz_start_at_in_a_cron_trigger_keeps_its_instant() -> None:
    start = BERLIN.localize(datetime(2026, 5, 3, 12))
    trigger = CronTrigger(hour="*/6", timezone="Europe/Berlin", start_at=start)
    fire_time = trigger.get_next_trigger_time(UTC, None, T0)
    assert fire_time is not None
    assert fire_time.isoformat() == "2026-05-03T12:00:00+02:00"


def test_a_non_datetime_start_at_is_still_refused_by_name() -> None:
    with pytest.raises(InvalidTriggerError, match=r"start_at.*1714550400"):
        IntervalTrigger(hours=1, start_at=1714550400)  # type: ignore[arg-type]
    with pytest.raises(InvalidTriggerError, match=r"end_at.*True"):
        CronTrigger(hour=1, end_at=True)  # type: ignore[arg-type]
