"""The DST contract: the documented examples run, plus the corners around them."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tickwork.triggers import BaseTrigger, CronTrigger, IntervalTrigger

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "dst_rules.py"
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
SANTIAGO = ZoneInfo("America/Santiago")


def load_rules() -> list[Callable[[], None]]:
    spec = importlib.util.spec_from_file_location("dst_rules", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rules: list[Callable[[], None]] = module.RULES
    return rules


@pytest.mark.parametrize("rule", load_rules(), ids=lambda rule: rule.__name__)
def test_documented_rule(rule: Callable[[], None]) -> None:
    rule()


def test_the_docs_show_the_example_file_as_it_is() -> None:
    page = (ROOT / "docs" / "triggers.md").read_text(encoding="utf-8")
    assert f"```python\n{EXAMPLE.read_text(encoding='utf-8')}```" in page


def walls(trigger: BaseTrigger, now: datetime, count: int, zone: ZoneInfo) -> list[str]:
    """Fire times as "YYYY-MM-DD HH:MM±offset" in ``zone``, checking the contract on the way."""
    shown: list[str] = []
    previous: datetime | None = None
    for _ in range(count):
        fire = trigger.get_next_trigger_time(UTC, previous, now)
        assert fire is not None
        assert fire.tzinfo is not None
        assert previous is None or fire.astimezone(UTC) > previous.astimezone(UTC)
        shown.append(fire.astimezone(zone).strftime("%m-%d %H:%M%z"))
        previous = fire
    return shown


# -- gaps ------------------------------------------------------------------------------


def test_several_times_inside_one_gap_fire_once() -> None:
    trigger = CronTrigger(hour=2, minute="*/15", timezone=BERLIN)
    assert walls(trigger, datetime(2026, 3, 28, 3, tzinfo=BERLIN), 3, BERLIN) == [
        "03-29 03:00+0200",
        "03-30 02:00+0200",
        "03-30 02:15+0200",
    ]


def test_asking_exactly_at_the_end_of_the_gap_still_finds_the_skipped_run() -> None:
    change = datetime(2026, 3, 29, 1, tzinfo=UTC)  # 02:00 CET becomes 03:00 CEST
    trigger = CronTrigger(hour=2, minute=30, timezone=BERLIN)
    assert trigger.get_next_trigger_time(UTC, None, change) == change
    # ... but not a moment later
    later = trigger.get_next_trigger_time(UTC, None, change + timedelta(seconds=1))
    assert later == datetime(2026, 3, 30, 2, 30, tzinfo=BERLIN)


def test_wildcard_hour_skips_the_gap_instead_of_firing_at_its_end() -> None:
    trigger = CronTrigger.from_crontab("30 * * * *", timezone=BERLIN)
    assert walls(trigger, datetime(2026, 3, 29, 1, tzinfo=BERLIN), 3, BERLIN) == [
        "03-29 01:30+0100",
        "03-29 03:30+0200",  # one real hour later; 02:30 never showed on a clock
        "03-29 04:30+0200",
    ]


def test_santiago_skips_midnight_so_the_daily_midnight_run_is_at_one() -> None:
    trigger = CronTrigger.from_crontab("@daily", timezone=SANTIAGO)
    assert walls(trigger, datetime(2026, 9, 5, 12, tzinfo=SANTIAGO), 2, SANTIAGO) == [
        "09-06 01:00-0300",
        "09-07 00:00-0300",
    ]


def test_lord_howe_half_hour_gap() -> None:
    trigger = CronTrigger(hour=2, minute=15, timezone=LORD_HOWE)  # 02:00 jumps to 02:30
    assert walls(trigger, datetime(2026, 10, 3, 12, tzinfo=LORD_HOWE), 2, LORD_HOWE) == [
        "10-04 02:30+1100",
        "10-05 02:15+1100",
    ]


# -- repeated hours ----------------------------------------------------------------------


def test_lord_howe_half_hour_repeat() -> None:
    # 02:00 (+11) falls back to 01:30 (+10:30): 01:30-01:59 happen twice.
    fixed = CronTrigger(hour=1, minute=45, timezone=LORD_HOWE)
    assert walls(fixed, datetime(2026, 4, 4, 12, tzinfo=LORD_HOWE), 2, LORD_HOWE) == [
        "04-05 01:45+1100",
        "04-06 01:45+1030",
    ]
    wildcard = CronTrigger.from_crontab("*/15 * * * *", timezone=LORD_HOWE)
    assert walls(wildcard, datetime(2026, 4, 5, 1, 20, tzinfo=LORD_HOWE), 5, LORD_HOWE) == [
        "04-05 01:30+1100",
        "04-05 01:45+1100",
        "04-05 01:30+1030",
        "04-05 01:45+1030",
        "04-05 02:00+1030",
    ]


def test_santiago_repeats_the_last_hour_of_saturday() -> None:
    fixed = CronTrigger.from_crontab("30 23 * * *", timezone=SANTIAGO)
    assert walls(fixed, datetime(2026, 4, 4, 12, tzinfo=SANTIAGO), 2, SANTIAGO) == [
        "04-04 23:30-0300",
        "04-05 23:30-0400",
    ]


def test_fixed_hour_with_many_minutes_runs_through_the_first_pass_only() -> None:
    trigger = CronTrigger.from_crontab("*/20 1 * * *", timezone=NEW_YORK)
    assert walls(trigger, datetime(2026, 11, 1, tzinfo=NEW_YORK), 4, NEW_YORK) == [
        "11-01 01:00-0400",
        "11-01 01:20-0400",
        "11-01 01:40-0400",
        "11-02 01:00-0500",
    ]


def test_asking_from_inside_the_second_pass() -> None:
    second_pass = datetime(2026, 11, 1, 1, 10, fold=1, tzinfo=NEW_YORK)  # 01:10 EST
    fixed = CronTrigger(hour=1, minute=30, timezone=NEW_YORK)
    assert fixed.get_next_trigger_time(UTC, None, second_pass) == datetime(
        2026, 11, 2, 1, 30, tzinfo=NEW_YORK
    )
    wildcard = CronTrigger(minute=30, timezone=NEW_YORK)
    fire = wildcard.get_next_trigger_time(UTC, None, second_pass)
    assert fire is not None
    assert fire.astimezone(UTC) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST
    assert fire.fold == 1


def test_previous_time_from_the_second_pass_in_any_zone() -> None:
    trigger = CronTrigger(minute="*/30", timezone=NEW_YORK)
    est = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)  # 01:00 EST, the second 01:00
    for previous in (est, est.astimezone(NEW_YORK), est.astimezone(BERLIN)):
        fire = trigger.get_next_trigger_time(UTC, previous, est)
        assert fire is not None
        assert fire.astimezone(UTC) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)


# -- intervals -------------------------------------------------------------------------


def test_interval_is_elapsed_time_through_spring_forward() -> None:
    start = datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN)
    trigger = IntervalTrigger(minutes=30, start_at=start)
    times: list[datetime] = []
    previous = None
    for _ in range(4):
        previous = trigger.get_next_trigger_time(BERLIN, previous, start)
        assert previous is not None
        times.append(previous)
    assert {(b.astimezone(UTC) - a.astimezone(UTC)) for a, b in pairwise(times)} == {
        timedelta(minutes=30)
    }
    assert [t.astimezone(BERLIN).strftime("%H:%M") for t in times] == [
        "01:30",
        "03:00",
        "03:30",
        "04:00",
    ]
